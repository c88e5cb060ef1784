"""Property-based fuzzing of the three parsers a user's input meets first: the CoNLL-U reader, the
config parser and the grid parser. Each input ends in a correct parse or in one clean
`GoldstoneError` that names the file and line, or the key; never in any other exception."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goldstone.core.config import resolve_config
from goldstone.core.errors import ConfigError, GoldstoneError
from goldstone.lab.sweep import parse_grid
from goldstone.experiments.deep_mlp import DeepMLPConfig

pytest.importorskip("conllu")
from goldstone.data.treebank import read_conllu  # noqa: E402

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
VALID = ["# text = the dog barks", "1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_", "2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_",
         "3\tbarks\tbark\tVERB\t_\t_\t0\troot\t_\t_", ""]
PIECES = st.sampled_from(["\t", " ", "  ", "_", "0", "1", "2", "3", "-1", "99", "1-2", "2.1", "root", "#", "\n",
                          "\x00", "\ufeff", "é", "x", "=", "|", "999999999999999999999999"])


@st.composite
def mutated_conllu(draw):
    lines = list(VALID * draw(st.integers(1, 2)))
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        cut = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["field", "insert", "delete", "replace", "drop", "duplicate"]))
        if action == "field":  # one whole column replaced
            fields = line.split("\t")
            column = draw(st.sampled_from([0, 1, 6, 6, 6, 7, 9]))  # mostly ID, FORM and HEAD
            fields[min(column, len(fields) - 1)] = draw(st.one_of(PIECES, st.integers(-10**25, 10**25).map(str)))
            line = "\t".join(fields)
        elif action == "insert":
            line = line[:cut] + draw(PIECES) + line[cut:]
        elif action == "delete":
            line = line[:cut] + line[cut + draw(st.integers(1, 4)):]
        elif action == "replace":
            line = line[:cut] + draw(PIECES) + line[cut + 1:]
        if action == "drop":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, line)
        else:
            lines[i] = line
    return "\n".join(lines)


@settings(FUZZ, max_examples=400)
@given(text=mutated_conllu())
def test_conllu_reader_parses_or_names_file_and_line(tmp_path, text):
    path = tmp_path / "fuzz.conllu"
    path.write_text(text, encoding="utf-8")
    try:
        sentences = read_conllu(path)
    except GoldstoneError as err:
        message = str(err)
        assert message.startswith(str(path)) and "\n" not in message, message
        assert re.match(re.escape(str(path)) + r"(:\d+)?: ", message), message
        return
    for sentence in sentences:  # a correct parse: every sentence a tree with one root
        n = len(sentence.words)
        assert len(sentence.heads) == n and ((sentence.heads >= 0) & (sentence.heads <= n)).all()
        assert int((sentence.heads == 0).sum()) == 1
        node, seen = 1, set()
        for node in range(1, n + 1):  # walking up from any word reaches the root
            seen = set()
            while node != 0:
                assert node not in seen
                seen.add(node)
                node = int(sentence.heads[node - 1])


KEYS = st.sampled_from(["depth", "width", "sigma_w", "group", "k", "dataset", "lr", "steps", "dpth", "", "[/x]"])
VALUES = st.one_of(st.text(max_size=12), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                   st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


@FUZZ
@given(key=KEYS, value=VALUES)
def test_config_parser_accepts_or_names_the_key(key, value):
    try:
        config = resolve_config(DeepMLPConfig, {key: value}, experiment="deep_mlp")
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and any(name in message for name in (repr(key), "'width'", "'data_dir'")), message
        return
    assert getattr(config, key) is not None and config.width % config.block == 0


@FUZZ
@given(items=st.lists(st.text(alphabet="sigma_wdepth=,:0123456789.-einfa ", max_size=20), min_size=1, max_size=3))
def test_grid_parser_gives_values_or_names_the_item(items):
    try:
        grid = parse_grid(items)
    except ConfigError as err:
        assert str(err).startswith("--grid") and "\n" not in str(err)
        return
    assert grid and all(key and values for key, values in grid.items())
    for values in grid.values():
        numeric = [v for v in values if re.fullmatch(r"-?[0-9.e+-]+", v)]
        assert all(np.isfinite(float(v)) for v in numeric if _is_float(v))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
