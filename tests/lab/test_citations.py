"""`goldstone cite`: every experiment and observable has its references, every key exists, the
BibTeX is well formed, and runs, sweeps, audits and experiment names give theirs; bad targets are
one line with exit code 2."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import goldstone
from goldstone.cli import app
from goldstone.core.errors import GoldstoneError
from goldstone.lab import citations
from goldstone.lab.citations import EXPERIMENT_REFERENCES, GOLDSTONE, OBSERVABLE_REFERENCES, REFERENCES, cite

runner = CliRunner()
ENTRY = re.compile(r"@(\w+)\{([^,\s{}]+),\n")


def parse_bibtex(text: str) -> dict[str, dict[str, str]]:
    """A small BibTeX reader, strict enough to catch broken entries: each entry opens with
    ``@type{key,``, its braces balance, and outside entries only comment lines and blank lines
    stand; returns key -> {"type": ..., field: value}."""
    found, position = {}, 0
    while True:
        start = text.find("@", position)
        outside = text[position:] if start < 0 else text[position:start]
        assert all(not line.strip() or line.startswith("%") for line in outside.splitlines()), outside
        if start < 0:
            return found
        header = ENTRY.match(text, start)
        assert header, f"bad entry header at: {text[start:start + 60]!r}"
        depth, i = 1, text.index("{", start) + 1
        while depth:
            assert i < len(text), f"unbalanced braces in {header.group(2)}"
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[header.end():i - 1]
        fields = {"type": header.group(1)}
        for name, value in re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", body, flags=re.M):
            assert value.count("{") == value.count("}"), (header.group(2), name)
            fields[name.lower()] = value
        assert header.group(2) not in found, f"duplicate key {header.group(2)}"
        found[header.group(2)] = fields
        position = i


def test_every_experiment_and_observable_has_its_references_and_every_key_exists():
    from goldstone.catalogue import experiments, observables
    from goldstone.lab.registry import load_all

    names = set(load_all())
    assert names == set(experiments()) == set(EXPERIMENT_REFERENCES)
    assert all(EXPERIMENT_REFERENCES[name] for name in names), [n for n in names if not EXPERIMENT_REFERENCES[n]]
    assert set(observables()) <= set(OBSERVABLE_REFERENCES)
    used = {k for keys in (*EXPERIMENT_REFERENCES.values(), *OBSERVABLE_REFERENCES.values()) for k in keys}
    assert used <= set(REFERENCES), used - set(REFERENCES)
    assert set(REFERENCES) <= used, f"references nothing uses: {set(REFERENCES) - used}"
    assert GOLDSTONE not in REFERENCES


def test_the_bibtex_of_every_reference_parses_with_its_required_fields():
    parsed = parse_bibtex(cite())
    assert list(parsed) == [GOLDSTONE, *REFERENCES]
    for key, fields in parsed.items():
        assert {"title", "author", "year"} <= set(fields), key
        assert re.fullmatch(r"(19|20)\d\d", fields["year"]), key
        assert ("eprint" in fields) == (fields.get("archiveprefix") == "arXiv"), key
        if "eprint" in fields:
            assert re.fullmatch(r"\d{4}\.\d{4,5}", fields["eprint"]), key
        assert fields["type"] != "inproceedings" or "booktitle" in fields, key


def test_goldstone_entry_follows_citation_cff():
    yaml = pytest.importorskip("yaml", reason="reads CITATION.cff with PyYAML (a dependency of the docs extra)")
    cff = yaml.safe_load((Path(__file__).resolve().parents[2] / "CITATION.cff").read_text(encoding="utf-8"))
    assert {key: str(cff[key]) if key == "date-released" else cff[key] for key in citations.CITATION_FIELDS} \
        == citations.CITATION_FIELDS
    entry = citations.goldstone_entry()
    assert entry["version"] == goldstone.__version__ and entry["type"] == "software"
    assert entry["author"] == "{The Goldstone contributors}"


def test_folder_marker_names_match_the_run_sweep_and_audit_modules():
    from goldstone.lab import audit, views

    assert (citations.RUN_CONFIG, citations.SWEEP_SPEC, citations.AUDIT_MARKER) == (views.CONFIG, views.SPEC,
                                                                                    audit.MARKER)


def test_cite_deep_mlp_on_the_command_line_prints_iqbal_et_al_and_goldstone():
    result = runner.invoke(app, ["cite", "deep_mlp"])
    assert result.exit_code == 0, result.output
    parsed = parse_bibtex(result.output)
    assert list(parsed) == [GOLDSTONE, "iqbal2026goldstone"]
    assert parsed["iqbal2026goldstone"]["eprint"] == "2605.14685"
    assert parsed["iqbal2026goldstone"]["author"].startswith("Iqbal, Nabil and Keller, T. Anderson")


def test_a_run_folder_gives_its_experiments_references(tmp_path):
    run = goldstone.run("order_parameter", out=tmp_path / "op", width=8, depth=2, tail=1, num_sigma=1, networks=1,
                        inputs=1)
    assert list(parse_bibtex(cite(run.folder))) == [GOLDSTONE, *EXPERIMENT_REFERENCES["order_parameter"]]
    result = runner.invoke(app, ["cite", str(run.folder)])
    assert result.exit_code == 0 and "run folder" in result.output and "@misc{iqbal2026goldstone," in result.output


def test_sweep_and_audit_folders_give_their_references(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps({"experiment": "noether", "grid": {"lr": [0.1]}}))
    assert list(parse_bibtex(cite(sweep))) == [GOLDSTONE, "kunin2021neural", "tanaka2021noether"]
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "audit.json").write_text("{}")
    assert list(parse_bibtex(cite(audit))) == [GOLDSTONE]  # nothing measured yet
    (audit / "checkpoints").mkdir()
    pd.DataFrame({"step": [0], "observable": ["representation_drift"], "metric": ["cka"], "value": [1.0]}).to_parquet(
        audit / "checkpoints" / "step_00000000.parquet")
    assert list(parse_bibtex(cite(audit))) == [GOLDSTONE, "kornblith2019similarity"]
    pd.DataFrame({"observable": ["weight_statistics", "noether_charges", "head_uas", "neuron_census"],
                  "applies": [True, True, False, False], "reason": ["", "", "no treebank", "no layer"]}).to_parquet(
        audit / "plan.parquet")
    assert list(parse_bibtex(cite(audit))) == [GOLDSTONE, "roy2007effective", "chen2026artificial", "kunin2021neural",
                                               "tanaka2021noether"]


def test_out_writes_a_bib_file_and_replaces_only_its_own(tmp_path):
    out = tmp_path / "refs.bib"
    assert runner.invoke(app, ["cite", "syre", "--out", str(out)]).exit_code == 0
    assert "ziyin2025remove" in parse_bibtex(out.read_text())
    assert runner.invoke(app, ["cite", "ksb", "--out", str(out)]).exit_code == 0  # its own file: replaced
    assert "tanaka2021noether" in out.read_text()
    foreign = tmp_path / "mine.bib"
    foreign.write_text("@misc{mine, title={x}}\n")
    refused = runner.invoke(app, ["cite", "ksb", "--out", str(foreign)])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert foreign.read_text() == "@misc{mine, title={x}}\n"
    assert runner.invoke(app, ["cite", "ksb", "--out", str(foreign), "--force"]).exit_code == 0
    assert runner.invoke(app, ["cite", "ksb", "--out", str(tmp_path / "refs.txt")]).exit_code == 2


@pytest.mark.parametrize("target, message", [
    ("deep_mpl", "'deep_mpl': no such folder and no such experiment; did you mean 'deep_mlp'?"),
    ("{tmp}", "not a goldstone run (config.json), sweep (sweep.json) or audit (audit.json) folder"),
    ("{tmp}/file.txt", "a file; give a run, sweep or audit folder"),
])
def test_a_bad_target_is_one_line_and_exit_code_2(tmp_path, target, message):
    (tmp_path / "file.txt").write_text("x")
    result = runner.invoke(app, ["cite", target.format(tmp=tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    with pytest.raises(GoldstoneError):
        cite(target.format(tmp=tmp_path))


def test_a_run_config_naming_no_experiment_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))  # a Hugging Face folder
    with pytest.raises(GoldstoneError, match="names no experiment"):
        cite(tmp_path)
