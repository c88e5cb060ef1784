from goldstone.cli import app

app()
