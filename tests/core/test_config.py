import pytest

from goldstone.core.config import parse_assignments, resolve_config
from goldstone.core.errors import ConfigError
from goldstone.experiments.deep_mlp import DeepMLPConfig


def test_overrides_are_typed():
    cfg = resolve_config(DeepMLPConfig, {"depth": "12", "sigma_w": "1.5", "group": "u1"})
    assert (cfg.depth, cfg.sigma_w, cfg.group) == (12, 1.5, "u1")


def test_unknown_key_names_the_closest():
    with pytest.raises(ConfigError, match=r"unknown key 'dpeth'.*closest valid key: 'depth'"):
        resolve_config(DeepMLPConfig, {"dpeth": "3"}, experiment="deep_mlp")


def test_wrong_type_names_key_and_type():
    with pytest.raises(ConfigError, match=r"key 'depth' expects int, got 'abc'"):
        resolve_config(DeepMLPConfig, {"depth": "abc"})
    with pytest.raises(ConfigError, match=r"key 'depth' expects int"):
        resolve_config(DeepMLPConfig, {"depth": 2.5})


@pytest.mark.parametrize("key,value,message", [
    ("sigma_w", "0", "must be >= 0.001"), ("sigma_w", "-1", "must be >= 0.001"), ("k", "1", "must be >= 2"),
    ("group", "so3", "must be one of u1, ok, generic"), ("width", "30", "not divisible by the block size 4"),
])
def test_out_of_range_values(key, value, message):
    with pytest.raises(ConfigError, match=f"'{key}'.*{message}|{message}"):
        resolve_config(DeepMLPConfig, {key: value})


def test_u1_width_must_be_even():
    with pytest.raises(ConfigError, match="not divisible by the block size 2"):
        resolve_config(DeepMLPConfig, {"group": "u1", "width": "33"})


def test_toml_file_and_precedence(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('depth = 7\ngroup = "u1"\n')
    cfg = resolve_config(DeepMLPConfig, {"depth": "9"}, path)
    assert (cfg.depth, cfg.group) == (9, "u1")


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('depth = 7\ngroup = "u1\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: TOML syntax error.*line 2"):
        resolve_config(DeepMLPConfig, {}, path)


def test_assignments_need_equals():
    assert parse_assignments(["a=1", "b = x"]) == {"a": "1", "b": "x"}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignments(["depth"])


def test_device_and_dtype_resolution():
    import torch

    from goldstone.core.device import resolve_device, resolve_dtype

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ConfigError, match="--device must be"):
        resolve_device("cuda:x")
    with pytest.raises(ConfigError, match="--dtype must be one of float32, bfloat16, float64"):
        resolve_dtype("half")
