import re

import goldstone
from goldstone.core.report import write_report


def test_report_is_self_contained_and_escaped(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "r", data_dir="<script>alert(1)</script>", **tiny_overrides)
    text = run.report().read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert re.findall(r'src="([^"]+)"', text) and all(s.startswith("data:image/png;base64,")
                                                     for s in re.findall(r'src="([^"]+)"', text))
    assert "http://" not in text and "https://" not in text
    for caption in ("Training of the 4-layer ok MLP", "Order parameter per layer"):
        assert caption in text
    assert "final_test_accuracy" in text


def test_sweep_report_has_phase_diagram_with_critical_line(tmp_path, tiny_overrides):
    sweep = goldstone.sweep("deep_mlp", {"sigma_w": [0.5, 1.5], "depth": [2, 3]}, out=tmp_path / "s",
                            **{k: v for k, v in tiny_overrides.items() if k != "depth"})
    text = write_report(sweep.folder).read_text()
    assert "Phase diagram of final_test_accuracy" in text and "critical sigma_w = 1.0" in text
    assert (sweep.folder / "figures" / "phase_diagram.svg").exists()
