"""The HTML report and the documentation site, opened in headless Chromium (Debian's `chromium`
and `chromium-driver`, driven by selenium): every image and GIF loads, the console stays free of
errors, no request leaves the machine, every internal link resolves, and a phone's width needs no
sideways scrolling. Skipped, with the reason, where Chromium, its driver or selenium is absent."""

from __future__ import annotations

import functools
import http.server
import importlib
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

import goldstone
from goldstone.lab.report import write_combined_report

ROOT = Path(__file__).resolve().parents[1]
PHONE = (390, 844)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def open_page(driver, url: str) -> dict:
    """Load `url` and report what the checks need: the images that did not load, console errors,
    every URL requested, every link's target, and whether a phone's width scrolls sideways."""
    driver.set_window_size(1280, 900)
    driver.get_log("performance"), driver.get_log("browser")  # forget the previous page's entries
    driver.get(url)
    broken = driver.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt || i.src)")
    links = driver.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
    images = driver.execute_script("return document.images.length")
    driver.set_window_size(*PHONE)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    requests = [message["params"]["request"]["url"] for entry in driver.get_log("performance")
                if (message := json.loads(entry["message"])["message"])["method"] == "Network.requestWillBeSent"]
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return {"broken": broken, "links": links, "images": images, "overflow": overflow, "requests": requests,
            "errors": errors}


def outside(requests: list[str], origin: str) -> list[str]:
    return [url for url in requests if not url.startswith((origin, "data:", "blob:", "about:"))]


@pytest.fixture
def report(tmp_path, tiny_overrides) -> Path:
    """A demo report at a tiny size: a deep-MLP sweep's phase diagram and curves, the order parameter
    against theory, and a conv RNN's vortex GIF."""
    folder = tmp_path
    sweep = goldstone.sweep("deep_mlp", {"group": ["u1", "generic"], "sigma_w": [0.8, 1.5]}, out=folder / "sweep",
                            **tiny_overrides)
    order = goldstone.run("order_parameter", out=folder / "op", width=16, depth=3, tail=1, num_sigma=3, networks=1)
    vortices = goldstone.run("conv_rnn_vortices", out=folder / "vortices", channels=2, size=6, input_grid=3,
                             max_delay=4, length=3, alphabet=3, steps=4, eval_every=2, checkpoint_every=2,
                             eval_size=8, probe_size=4, batch_size=4)
    views = [sweep, order, vortices]
    return write_combined_report(views, folder / "report.html", "Goldstone demo, tiny", "A test of the report.")


def test_the_report_loads_whole_offline_and_reads_on_a_phone(browser, report):
    page = open_page(browser, report.as_uri())
    assert page["images"] >= 4 and not page["broken"]
    assert "image/gif" in report.read_text() and not page["errors"]
    assert not outside(page["requests"], "file://"), outside(page["requests"], "file://")
    assert page["overflow"] <= 0


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, str]:
    """The documentation site, built with --strict (examples executed), served on localhost."""
    pytest.importorskip("mkdocs", reason="needs the docs extra (pip install -e '.[docs]')")
    folder = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
                           cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_the_site_builds_strict_with_every_public_name_observable_command_and_example(site):
    """The generated reference is complete: every public name, every registered observable, every
    command and every example has its page or section (the build itself ran with --strict)."""
    from goldstone.cli import app
    from goldstone.core.observable import OBSERVABLES
    from typer.main import get_command

    importlib.import_module("goldstone.observables")
    folder, _ = site
    api, observables, cli = (_anchors(folder / "reference" / f"{name}.html") for name in ("api", "observables", "cli"))
    assert {n for n, home in goldstone._HOMES.items() if f"{home}.{n}" not in api} == set()
    assert set(OBSERVABLES) <= observables
    assert {f"goldstone-{c}" for c in get_command(app).list_commands(None)} <= cli
    assert {p.stem for p in (ROOT / "examples").glob("*.py")} == {p.stem for p in (folder / "examples").glob("*.html")}
    assert "output" in (folder / "examples" / "goldstone_modes.html").read_text()


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))


def test_every_page_of_the_site_loads_offline_with_its_links_and_reads_on_a_phone(browser, site):
    folder, origin = site
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html") if p.name != "404.html")
    assert {"index.html", "getting_started.html", "reference/api.html", "reference/observables.html",
            "reference/cli.html", "examples/goldstone_modes.html"} <= set(pages)
    problems = []
    for name in pages:
        page = open_page(browser, origin + name)
        problems += [f"{name}: image {b} did not load" for b in page["broken"]]
        problems += [f"{name}: console error {e}" for e in page["errors"]]
        problems += [f"{name}: request to {u}" for u in outside(page["requests"], origin)]
        if page["overflow"] > 0:
            problems.append(f"{name}: {page['overflow']} px wider than a phone")
        for link in page["links"]:
            if not link.startswith(origin):
                continue
            target, fragment = urldefrag(link)
            path = folder / unquote(urlparse(target).path).lstrip("/")
            path = path / "index.html" if path.is_dir() else path
            if not path.is_file():
                problems.append(f"{name}: link to missing {link}")
            elif fragment and path.suffix == ".html" and unquote(fragment) not in _anchors(path):
                problems.append(f"{name}: link to missing anchor {link}")
    assert not problems, "\n".join(problems[:40])
