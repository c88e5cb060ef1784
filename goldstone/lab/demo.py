"""`goldstone demo`, the main job: a small version of the Goldstone-modes study.

1. the order-parameter transition of random U(1) networks at sigma_W = 1, against theory;
2. 100-layer U(1), O(4) and generic MLPs trained on 8x8 digits across sigma_W, as a phase
   diagram of test accuracy with the critical line, and their training curves;
3. with the `hf` extra, a sudden drop in the loss: a small BERT on the synthetic agreement language,
   its loss drop and the rise of the best head's UAS on the agreement arcs together.
Everything resumes: run it again after an interruption and finished parts are kept.
"""

from __future__ import annotations

from pathlib import Path

from goldstone.core.atomic import write_json
from goldstone.core.errors import RunFolderError
from goldstone.core.extras import install_hint, missing
from goldstone.core.progress import log, stage
from goldstone.lab.report import write_combined_report
from goldstone.lab.run import execute
from goldstone.lab.sweep import execute_sweep
from goldstone.lab.views import CONFIG, Run, SweepSpec

DEMO_GRID = {"group": ["u1", "ok", "generic"], "sigma_w": [0.8, 1.2, 2.0]}
DEMO_TRAINING = {"depth": 100, "width": 64, "steps": 240, "dataset": "digits"}
DEMO_ORDER_PARAMETER = {"width": 512, "depth": 40, "tail": 15}
DEMO_SYNTAX = {"corpus": "synthetic", "lr": 2e-3, "steps": 1500, "eval_every": 50, "eval_sentences": 128,
               "minimal_pairs": 0, "sentences": 20_000, "transition_from": 500}
"""lr 2e-3 reaches the plateau by step 500 and drops at about 1200 (docs/syntax.md)."""
MARKER = "demo.json"
"""Written first into a demo folder: a rerun continues there; any other non-empty folder is refused."""


def run_demo(out: str | Path = "goldstone-demo", workers: int = 2, quiet: bool = False) -> Path:
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise RunFolderError(f"{out} is not empty and holds no goldstone demo; refusing to write there")
    write_json(out / MARKER, {"grid": DEMO_GRID, "training": DEMO_TRAINING, "order_parameter": DEMO_ORDER_PARAMETER,
                              "syntax": DEMO_SYNTAX})
    order = out / "order_parameter"
    with stage("demo 1/4: order parameter of random U(1) networks against mean-field theory", quiet):
        execute("order_parameter", DEMO_ORDER_PARAMETER, out=order, resume=(order / CONFIG).exists(), quiet=quiet)
    spec = SweepSpec("deep_mlp", DEMO_GRID, seeds=1, overrides=DEMO_TRAINING)
    with stage(f"demo 2/4: deep MLP sweep ({len(spec.points())} points: 100-layer U(1), O(4) and generic MLPs "
               f"on 8x8 digits)", quiet):
        sweep = execute_sweep(spec, out / "deep_mlp", workers=workers, quiet=quiet)
    folders = [sweep, Run(order)]
    intro = ("Deep equivariant MLPs (no skips, no normalisation) train in the broken phase sigma_W > 1, generic ones "
             "do not; the mean-field order parameter c* becomes non-zero at sigma_W = 1. ")
    if missing("hf"):
        skipped = f"The sudden drop in the loss was skipped: it needs the hf extra ({install_hint('hf')})."
        log(f"demo 3/4: sudden drop in the loss skipped (needs the hf extra: {install_hint('hf')})", quiet)
        title, intro = "Goldstone demo: symmetry breaking in deep MLPs", intro + skipped
    else:
        syntax = out / "sudden_drop"
        with stage("demo 3/4: sudden drop in the loss (small BERT on a synthetic agreement language)", quiet):
            execute("mlm_syntax", DEMO_SYNTAX, out=syntax, resume=(syntax / CONFIG).exists(), quiet=quiet)
        folders.append(Run(syntax))
        title = "Goldstone demo: symmetry breaking in deep MLPs and a sudden drop in the loss"
        intro += ("A small BERT's masked-LM loss drops suddenly when its attention heads lock onto the agreement "
                  "controllers of a synthetic language.")
    with stage("demo 4/4: HTML report", quiet):
        return write_combined_report(folders, out / "report.html", title, intro)
