"""The lab, on top of the foundation: the experiment registry, runs (folders, checkpoints, resume),
read-only views of run and sweep folders, sweeps (worker processes, Ray), the HTML report and
the demo."""
