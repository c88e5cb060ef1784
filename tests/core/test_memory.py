"""Memory estimates: a config the machine cannot hold is refused in one line before anything is
built (the estimate and the keys that drive it named), `--force` lets it through, and every
experiment's defaults fit comfortably."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from goldstone.cli import app
from goldstone.core.config import resolve_config
from goldstone.core.errors import ConfigError
from goldstone.core.memory import available_memory, check_memory, human_bytes
from goldstone.lab.registry import load_all

runner = CliRunner()
CPU = torch.device("cpu")

BOMBS = [  # (experiment, overrides, the keys the refusal must name)
    ("deep_mlp", {"width": 10**9}, "width"),
    ("deep_mlp", {"probe_size": 10**9}, "probe_size"),
    ("order_parameter", {"width": 10**6}, "width"),
    ("copy_task", {"batch_size": 10**9}, "batch_size"),
    ("seq_pixels", {"width": 10**6}, "width"),
    ("conv_rnn_vortices", {"batch_size": 10**9}, "batch_size"),
    ("noether", {"steps": 10**9}, "steps"),
    ("ksb", {"width": 10**7}, "width"),
    ("neural_collapse", {"width": 10**7}, "width"),
    ("saddle_to_saddle", {"dim": 10**5, "width": 10**5}, "dim, width"),
    ("weight_decay_transition", {"dim": 10**5, "width": 10**5}, "dim, width"),
    ("syre", {"examples": 10**12}, "examples"),
    ("single_node", {"batch_size": 10**9}, "batch_size"),
    ("lora_entanglement", {"method": "mps", "chi": 10**9}, "chi"),
    ("mlm_syntax", {"corpus": "synthetic", "sentences": 10**9}, "sentences"),
    ("mlm_syntax", {"hidden": 10**6, "heads": 1}, "hidden"),
    ("mlm_syntax", {"eval_sentences": 10**8}, "eval_sentences"),
]


@pytest.mark.parametrize("experiment,overrides,keys", BOMBS, ids=[f"{b[0]}-{next(iter(b[1]))}" for b in BOMBS])
def test_a_config_the_machine_cannot_hold_is_one_line_and_leaves_nothing(tmp_path, experiment, overrides, keys):
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    result = runner.invoke(app, ["run", experiment, *sets, "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "needs about" in line and "--force" in line
    named = re.search(r"\(keys? ([^)]*)\)", line).group(1).split(", ")
    assert set(keys.split(", ")) <= set(named), line
    assert not (tmp_path / "r").exists()


def test_every_experiments_defaults_fit_in_a_gigabyte():
    """Every experiment whose memory grows with its keys states an estimate, and its defaults stay
    far from any machine's limit (the check never refuses a default run)."""
    estimated = []
    for name, exp in load_all().items():
        config = resolve_config(exp.config, {}, None, name)
        if hasattr(config, "memory"):
            estimated.append(name)
            assert 0 < sum(config.memory().values()) < 2**30, name
    assert set(estimated) >= {b[0] for b in BOMBS}


def test_force_lets_a_refused_config_through_and_the_check_counts_side_by_side_runs():
    class Config:
        def __init__(self, size: int):
            self.size = size

        def memory(self) -> dict[str, int]:
            return {"the table (key size)": self.size}

    have = available_memory(CPU)
    with pytest.raises(ConfigError, match=r"the table \(key size\)"):
        check_memory(Config(2 * have), CPU)
    check_memory(Config(2 * have), CPU, force=True)
    check_memory(Config(have // 4), CPU)
    with pytest.raises(ConfigError, match="for 8 runs side by side"):
        check_memory(Config(have // 4), CPU, copies=8)


def test_a_sweep_is_checked_for_its_workers_side_by_side_before_any_point_runs(tmp_path):
    """Each point needs about a third of the free memory (deep_mlp's 16 layers of weights with Adam's
    state, 16 x N^2 x 16 bytes): alone it fits; eight local workers at once do not, so the sweep
    refuses before making its folder."""
    width = int((available_memory(CPU) / 3 / 16 / 16) ** 0.5) // 4 * 4
    result = runner.invoke(app, ["sweep", "deep_mlp", "--grid", f"width={width},{width - 4}", "--set", "depth=16",
                                 "--seeds", "4", "--workers", "8", "--out", str(tmp_path / "s"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "for 8 runs side by side" in result.output and not (tmp_path / "s").exists()


def test_human_bytes():
    assert [human_bytes(n) for n in (512, 1536, 3 * 2**30, 2**60)] == ["512 B", "1.5 KiB", "3.0 GiB", "1024.0 PiB"]


PEAK = """
import json, sys, tempfile
import torch
import goldstone


def high_water() -> int:  # this process's peak resident memory (ru_maxrss would include the forking parent's)
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


torch.set_num_threads(1)
before = high_water()
with tempfile.TemporaryDirectory() as folder:
    goldstone.run(sys.argv[1], out=folder + "/r", **json.loads(sys.argv[2]))
print(high_water() - before)
"""


def peak_growth(experiment: str, overrides: dict) -> int:
    """Bytes the process's peak resident memory grows by over one run, in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", PEAK, experiment, json.dumps(overrides)], capture_output=True,
                          text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak resident memory from /proc")
@pytest.mark.parametrize("experiment,tiny,large", [
    ("deep_mlp", {"width": 16, "depth": 2}, {"width": 1024, "depth": 8}),
    ("weight_decay_transition", {"dim": 12, "width": 12}, {"dim": 1500, "width": 1500}),
    ("noether", {"steps": 20, "width": 16}, {"steps": 2000, "width": 256}),
])
def test_estimates_are_within_a_factor_of_two_of_the_measured_peak(experiment, tiny, large):
    """The key-driven part of the peak (a large config's growth less a tiny one's: the fixed cost of
    imports, figures and the report) against the difference of the two estimates."""
    short = {"deep_mlp": {"steps": 2, "eval_every": 1, "observe_every": 2, "checkpoint_every": 2},
             "weight_decay_transition": {"steps": 3}, "noether": {}}[experiment]
    exp = load_all()[experiment]
    estimate = [sum(resolve_config(exp.config, {**c, **short}, None, experiment).memory().values()) for c in (tiny, large)]
    measured = [peak_growth(experiment, {**c, **short}) for c in (tiny, large)]
    ratio = (measured[1] - measured[0]) / (estimate[1] - estimate[0])
    assert 0.5 <= ratio <= 2, f"measured {measured}, estimated {estimate}: ratio {ratio:.2f}"
