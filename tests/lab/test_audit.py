"""`goldstone audit`: a planted change gets exactly its transition; a killed audit resumes to the
same rows; duplicates are measured once; unreadable checkpoints are skipped with their reason; a
Trainer output folder, a goldstone run folder and bad input through the command line."""

import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from typer.testing import CliRunner

import goldstone
from goldstone.cli import app
from goldstone.core.errors import GoldstoneError

pytest.importorskip("ruptures")
STEPS = list(range(0, 1100, 100))
DEAD_FROM = 600


def planted_series(folder):
    """Checkpoints of a ReLU MLP that differ by small independent noise, where four hidden units of
    the second layer die (incoming and outgoing weights zero) from step 600 on."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    paths = []
    for step in STEPS:
        state = {k: v + 1e-3 * torch.randn(v.shape, generator=g) for k, v in base.items()}
        if step >= DEAD_FROM:
            state["2.weight"][:4], state["2.bias"][:4], state["4.weight"][:, :4] = 0, 0, 0
        save_file(state, str(folder / f"step_{step}.safetensors"))
        paths.append(folder / f"step_{step}.safetensors")
    return model, paths


def run_audit(model, paths, out, **options):
    torch.manual_seed(2)
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    return goldstone.audit(model, paths, (x, y), loss_fn=nn.functional.cross_entropy, out=out, quiet=True, **options)


def test_a_planted_change_is_the_only_transition_and_the_audit_resumes(tmp_path):
    model, paths = planted_series(tmp_path)
    result = run_audit(model, paths, tmp_path / "audit")
    table = result.transitions
    dead = table[(table.observable == "neuron_census") & (table.metric == "dead")]
    assert dead[["layer", "step", "before", "after"]].values.tolist() == [["2 → 4", DEAD_FROM, 0.0, 4.0]]
    assert set(table.step) == {DEAD_FROM}  # what changes, changes then; nothing else anywhere
    assert {"weight_statistics", "neuron_census", "noether_charges", "loss_curvature", "representation_alignment"} <= set(result.frame.observable)
    assert (result.checkpoints.status == "measured").all() and result.checkpoints.step.tolist() == STEPS
    assert "at step 600: neuron census dead (layer 2 → 4) rises from 0 to 4" in (tmp_path / "audit" / "report.html").read_text()
    # killed after some checkpoints: their files stay, the rest is measured again, to the same rows
    for late in sorted((tmp_path / "audit" / "checkpoints").glob("step_0000[5-9]*.parquet")):
        late.unlink()
    (tmp_path / "audit" / "frame.parquet").unlink()
    again = run_audit(model, paths, tmp_path / "audit")
    pd.testing.assert_frame_equal(again.frame, result.frame)
    pd.testing.assert_frame_equal(again.transitions, result.transitions)


def test_worker_processes_give_the_rows_of_a_serial_audit(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as every worker runs
    try:
        model, paths = planted_series(tmp_path)
        serial = run_audit(model, paths, tmp_path / "serial")
        parallel = run_audit(model, paths, tmp_path / "parallel", workers=2)
    finally:
        torch.set_num_threads(threads)
    pd.testing.assert_frame_equal(parallel.frame, serial.frame)
    pd.testing.assert_frame_equal(parallel.transitions, serial.transitions)
    assert not (tmp_path / "parallel" / "context.pt").exists()


def test_duplicates_are_measured_once_and_unreadable_checkpoints_skipped(tmp_path):
    model, paths = planted_series(tmp_path)
    shutil.copy(paths[3], tmp_path / "step_1100.safetensors")
    (tmp_path / "step_1200.safetensors").write_bytes(paths[4].read_bytes()[:100])  # truncated
    result = run_audit(model, paths + [tmp_path / "step_1100.safetensors", tmp_path / "step_1200.safetensors"],
                       tmp_path / "audit")
    status = dict(zip(result.checkpoints.step, result.checkpoints.status))
    assert status[1100] == f"duplicate of {paths[3]}"
    assert status[1200].startswith("skipped: ") and "not a readable safetensors file" in status[1200]
    assert set(result.frame.step) == set(STEPS)
    with pytest.raises(GoldstoneError, match="holds an audit of 'Sequential' over other checkpoints"):
        run_audit(model, paths[:5], tmp_path / "audit")


def trainer_output(tmp_path):
    """A tiny BERT classifier trained by the Hugging Face Trainer, a checkpoint every 2 steps."""
    transformers = pytest.importorskip("transformers")
    from tests.test_cli import tiny_classifier_folder

    start = tiny_classifier_folder(tmp_path / "start")
    model = transformers.BertForSequenceClassification.from_pretrained(start, attn_implementation="eager")
    tokenizer = transformers.AutoTokenizer.from_pretrained(start)
    ids = torch.randint(5, 10, (32, 8), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": ids[i], "labels": int(ids[i, 0] % 3)} for i in range(32)]
    args = transformers.TrainingArguments(str(tmp_path / "trained"), max_steps=10, per_device_train_batch_size=8,
                                          learning_rate=1e-2, report_to=[], use_cpu=True, logging_strategy="no",
                                          save_strategy="steps", save_steps=2, seed=0)
    transformers.Trainer(model=model, args=args, train_dataset=data, processing_class=tokenizer).train()
    return tmp_path / "trained"


def test_audit_of_a_trainer_output_folder_from_the_command_line(tmp_path):
    import json
    import random

    folder = trainer_output(tmp_path)
    words, rng = "the cat sat on mat".split(), random.Random(0)
    lines = [" ".join(rng.choice(words) for _ in range(5)) for _ in range(60)]
    (tmp_path / "labelled.jsonl").write_text("".join(json.dumps({"text": t, "label": t.split()[0]}) + "\n" for t in lines))
    result = CliRunner().invoke(app, ["audit", str(folder), "--out", str(tmp_path / "audit"), "--data",
                                      str(tmp_path / "labelled.jsonl"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'audit' / 'report.html'}" in result.output
    frame = pd.read_parquet(tmp_path / "audit" / "frame.parquet")
    assert sorted(frame.step.unique()) == [2, 4, 6, 8, 10]
    assert {"weight_statistics", "attention_patterns", "noether_charges", "loss_curvature",
            "representation_drift", "head_specialisation"} <= set(frame.observable)
    heads = frame[(frame.observable == "head_specialisation") & (frame.metric == "accuracy")]
    assert sorted(heads["head"].unique()) == [0, 1, 2, 3] and heads.value.between(0, 1).all()
    nodes = frame[(frame.observable == "head_specialisation") & (frame.metric == "node_labels")]
    assert len(nodes) == 5 * 32 and nodes.value.between(0, 5).all()  # 32 nodes of the last block, 5 labels at most
    plan = pd.read_parquet(tmp_path / "audit" / "plan.parquet")
    assert dict(zip(plan.observable, plan.applies))["order_parameter"] is False
    report = (tmp_path / "audit" / "report.html").read_text()
    assert "<h2>Timeline</h2>" in report and "cross-entropy on random labels" in report


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    runner = CliRunner()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    folder = trainer_output(tmp_path)
    for args, message in ((["audit", str(tmp_path / "absent")], "no such folder"),
                          (["audit", str(folder), "--out", str(tmp_path / "notes")],
                           "is not empty and holds no goldstone audit; refusing to write there"),
                          (["audit", str(folder), "--checkpoints", str(tmp_path / "nothing-*")], "matches no file or folder")):
        result = runner.invoke(app, [*args, "--quiet"])
        assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["thesis.tex"]


def test_audit_of_a_goldstone_run_folder_joins_the_runs_own_curves(tmp_path):
    """A tiny mlm_syntax run on the synthetic language, every checkpoint kept: the audit reads its
    checkpoints/, its model/ and tokenizer/, and its own metrics at the checkpoints' steps."""
    pytest.importorskip("transformers")
    run = goldstone.run("mlm_syntax", out=tmp_path / "run", corpus="synthetic", sentences=400, hidden=16, layers=1,
                        heads=2, steps=40, batch_size=8, eval_every=10, eval_sentences=32, minimal_pairs=4,
                        keep_checkpoints=0)
    result = goldstone.audit(run.folder, out=tmp_path / "audit", treebank=run.folder / "dev.conllu", quiet=True)
    assert result.checkpoints.step.tolist() == [10, 20, 30, 40]
    assert (result.checkpoints.status == "measured").all()
    observed = set(result.frame.observable)
    assert {"weight_statistics", "head_uas", "attention_patterns", "loss_curvature", "run:mlm", "run:syntax"} <= observed
    own = result.frame[(result.frame.observable == "run:mlm") & (result.frame.metric == "dev_loss")]
    logged = run.metrics[(run.metrics.observable == "mlm") & (run.metrics.metric == "dev_loss")]
    assert own.set_index("step").value.to_dict() == logged[logged.step > 0].set_index("step").value.to_dict()
    assert "the masked-LM loss, 15 % of the tokens masked (seeded)" in (tmp_path / "audit" / "report.html").read_text()


@pytest.mark.slow
def test_audit_of_minilm(tmp_path):
    """The packaged MiniLM, one checkpoint: every observable of a bare encoder applies but the
    Goldstone-mode ones; it has no translation symmetry (no softmax head) and a previous-token head."""
    pytest.importorskip("transformers")
    result = goldstone.audit("minilm", out=tmp_path / "audit", quiet=True)
    applies = dict(zip(result.plan.observable, result.plan.applies))
    assert all(applies[o] for o in ("weight_statistics", "neuron_census", "noether_charges", "loss_curvature",
                                    "representation_drift", "attention_patterns"))
    assert not applies["order_parameter"] and not applies["head_uas"]
    summary = result.frame[result.frame.observable == "noether_summary"]
    assert "translation" not in set(summary.kind) and {"rescale", "scale"} & set(summary.kind)
    scores = result.frame[(result.frame.observable == "attention_patterns") & (result.frame.metric == "previous_token")]
    assert scores.value.max() > 0.9 and len(scores) == 6 * 12
    assert result.transitions.empty  # one checkpoint: nothing to line up


def test_an_equivariant_mlp_gets_the_goldstone_mode_observables(tmp_path):
    from goldstone.models import DeepMLP

    torch.manual_seed(0)
    model = DeepMLP(6, 3, "ok", k=2, width=8, depth=4, sigma_w=1.5)
    paths = []
    for step in (0, 10):
        save_file(model.state_dict(), str(tmp_path / f"step_{step}.safetensors"))
        paths.append(tmp_path / f"step_{step}.safetensors")
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.1)
    x = torch.randn(16, 6)
    result = goldstone.audit(model, paths, (x, torch.randint(0, 3, (16,))), loss_fn=nn.functional.cross_entropy,
                             out=tmp_path / "audit", quiet=True)
    assert {"order_parameter", "protected_jacobian"} <= set(result.frame.observable)
    ratio = result.frame[(result.frame.observable == "protected_jacobian") & (result.frame.metric == "ratio")]
    assert ratio.value.to_numpy() == pytest.approx(1.0, abs=1e-9)  # the protected direction of an O(2) trunk


def test_checkpoints_of_another_architecture_are_one_line(tmp_path):
    model, paths = planted_series(tmp_path)
    save_file({"other.weight": torch.zeros(2, 2)}, str(tmp_path / "step_2000.safetensors"))
    with pytest.raises(GoldstoneError, match=r"step_2000\.safetensors: weights do not fit Sequential"):
        run_audit(model, paths + [tmp_path / "step_2000.safetensors"], tmp_path / "audit")


def test_a_refused_audit_writes_nothing_and_the_corrected_one_runs_in_its_folder(tmp_path):
    """Another architecture, a probe the model cannot take: one line each, no folder left to block the
    corrected call; checkpoints may be a glob and `layers` names what the representation drift compares."""
    model, paths = planted_series(tmp_path)
    with pytest.raises(GoldstoneError, match="weights do not fit Sequential"):
        run_audit(nn.Sequential(nn.Linear(10, 3)), paths[:2], tmp_path / "audit")
    with pytest.raises(GoldstoneError, match="Sequential cannot run on the probe: mat1 and mat2 shapes"):
        goldstone.audit(model, paths[:2], torch.randn(8, 7), out=tmp_path / "audit", quiet=True)
    assert not (tmp_path / "audit").exists()
    result = run_audit(model, str(tmp_path / "step_1*.safetensors"), tmp_path / "audit", layers=["1", "3"])
    assert result.checkpoints.step.tolist() == [100, 1000]
    drift = result.frame[result.frame.observable == "representation_drift"]
    assert set(drift.layer) == {"0", "1"} and drift[drift.step == 1000].value.between(0.9, 1).all()  # the two named
    with pytest.raises(GoldstoneError, match="a batch is inputs or a pair \\(inputs, targets\\); got a tuple of 1"):
        goldstone.measure(model, [goldstone.RepresentationDrift(layers=["1"])], [(torch.randn(4, 10),)])
