"""The papers behind each experiment and observable, as BibTeX: `goldstone cite`.

`REFERENCES` holds one BibTeX entry per paper, keyed by its BibTeX key; `EXPERIMENT_REFERENCES`
names the keys each built-in experiment relies on, `OBSERVABLE_REFERENCES` those of each observable
(an audit cites the observables it ran). Goldstone's own entry is built from ``CITATION.cff`` at
the root of a checkout, else from the same fields kept here. `cite(target)` gives the BibTeX of a
run folder, a sweep folder, an audit folder or an experiment name; `cite()` every reference.

Where the entries were checked: titles, authors, years and arXiv identifiers against the
project's research notes (goldstone.md, noether.md, paramsym.md, entanglement.md, sudden_drop.md,
audit.md) and the papers' arXiv, OpenReview, proceedings or ACL Anthology pages. A venue
(booktitle, volume, pages) is given only where a research note states it; an author list that
could not be checked in full ends in "and others".
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from goldstone.core.errors import GoldstoneError

GOLDSTONE = "goldstone"
"""The key of Goldstone's own entry (from CITATION.cff), cited with every target."""

MARKER = "% goldstone cite"
"""The first line of every text `cite` returns: how `goldstone cite --out` recognises a file it wrote."""

# The files that mark a folder (the same names as the run, sweep and audit modules use; a test checks).
RUN_CONFIG, SWEEP_SPEC, AUDIT_MARKER, AUDIT_PLAN = "config.json", "sweep.json", "audit.json", "plan.parquet"

ICLR = "International Conference on Learning Representations"
NEURIPS = "Advances in Neural Information Processing Systems"
ICML = "International Conference on Machine Learning"

REFERENCES: dict[str, dict[str, str]] = {
    # Finding 1: Goldstone modes (goldstone.md: arXiv 2605.14685, preprint, no venue).
    "iqbal2026goldstone": {
        "type": "misc",
        "title": "Spontaneous symmetry breaking and {G}oldstone modes for deep information propagation",
        "author": "Iqbal, Nabil and Keller, T. Anderson and Song, Yue and Miyato, Takeru and Welling, Max",
        "year": "2026", "eprint": "2605.14685", "archiveprefix": "arXiv", "primaryclass": "cs.LG"},
    # Finding 2: single-node symmetry breaking (docs/single_node.md; arXiv listing 2601.20582).
    "rosner2026single": {
        "type": "misc",
        "title": "Single-Nodal Spontaneous Symmetry Breaking in {NLP} Models",
        "author": "Rosner, Shalom and Gross, Ronit D. and Koresh, Ella and Kanter, Ido",
        "year": "2026", "eprint": "2601.20582", "archiveprefix": "arXiv"},
    # Finding 3: sudden drops (sudden_drop.md: ICLR 2024; arXiv 2309.07311).
    "chen2024sudden": {
        "type": "inproceedings",
        "title": "Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and Simplicity Bias in {MLMs}",
        "author": "Chen, Angelica and Shwartz-Ziv, Ravid and Cho, Kyunghyun and Leavitt, Matthew L. and Saphra, Naomi",
        "booktitle": ICLR, "year": "2024", "eprint": "2309.07311", "archiveprefix": "arXiv"},
    # Finding 4: Noether's learning dynamics (noether.md: NM ICLR 2021, NLD NeurIPS 2021 vol. 34).
    "kunin2021neural": {
        "type": "inproceedings",
        "title": "Neural Mechanics: Symmetry and Broken Conservation Laws in Deep Learning Dynamics",
        "author": "Kunin, Daniel and Sagastuy-Brena, Javier and Ganguli, Surya and Yamins, Daniel L. K. and "
                  "Tanaka, Hidenori",
        "booktitle": ICLR, "year": "2021", "eprint": "2012.04728", "archiveprefix": "arXiv"},
    "tanaka2021noether": {
        "type": "inproceedings",
        "title": "{N}oether's Learning Dynamics: Role of Symmetry Breaking in Neural Networks",
        "author": "Tanaka, Hidenori and Kunin, Daniel",
        "booktitle": NEURIPS, "volume": "34", "pages": "25646--25660", "year": "2021", "eprint": "2105.02716",
        "archiveprefix": "arXiv"},
    # Finding 5: artificial entanglement (entanglement.md: arXiv 2601.06788; the author order differs
    # between sources, so only the first author is given).
    "chen2026artificial": {
        "type": "misc",
        "title": "Artificial Entanglement in the Fine-Tuning of Large Language Models",
        "author": "Chen, Min and others",
        "year": "2026", "eprint": "2601.06788", "archiveprefix": "arXiv"},
    "hu2021lora": {
        "type": "misc",
        "title": "{LoRA}: Low-Rank Adaptation of Large Language Models",
        "author": "Hu, Edward J. and Shen, Yelong and Wallis, Phillip and Allen-Zhu, Zeyuan and Li, Yuanzhi and "
                  "Wang, Shean and Wang, Lu and Chen, Weizhu",
        "year": "2021", "eprint": "2106.09685", "archiveprefix": "arXiv"},
    # Finding 6: parameter symmetry (paramsym.md: the arXiv ids and the venues it states).
    "ziyin2025parameter": {
        "type": "misc",
        "title": "Parameter Symmetry Breaking and Restoration Determines the Hierarchical Learning in {AI} Systems",
        "author": "Ziyin, Liu and Xu, Yizhou and Poggio, Tomaso and Chuang, Isaac",
        "year": "2025", "eprint": "2502.05300", "archiveprefix": "arXiv",
        "note": "Version 2 is titled ``Parameter Symmetry Potentially Unifies Deep Learning Theory''"},
    "ziyin2024symmetry": {
        "type": "inproceedings",
        "title": "Symmetry Induces Structure and Constraint of Learning",
        "author": "Ziyin, Liu",
        "booktitle": ICML, "year": "2024", "eprint": "2309.16932", "archiveprefix": "arXiv"},
    "ziyin2025remove": {
        "type": "inproceedings",
        "title": "Remove Symmetries to Control Model Expressivity and Improve Optimization",
        "author": "Ziyin, Liu and Xu, Yizhou and Chuang, Isaac",
        "booktitle": ICLR, "year": "2025", "eprint": "2408.15495", "archiveprefix": "arXiv"},
    "ziyin2024noise": {
        "type": "inproceedings",
        "title": "Parameter Symmetry and Noise Equilibrium of Stochastic Gradient Descent",
        "author": "Ziyin, Liu and others",
        "booktitle": NEURIPS, "year": "2024", "eprint": "2402.07193", "archiveprefix": "arXiv"},
    "ziyin2024formation": {
        "type": "misc",
        "title": "Formation of Representations in Neural Networks",
        "author": "Ziyin, Liu and Chuang, Isaac and Galanti, Tomer and Poggio, Tomaso",
        "year": "2024", "eprint": "2410.03006", "archiveprefix": "arXiv"},
    "chen2023stochastic": {
        "type": "inproceedings",
        "title": "Stochastic Collapse: How Gradient Noise Attracts {SGD} Dynamics Towards Simpler Subnetworks",
        "author": "Chen, Feng and Kunin, Daniel and Yamamura, Atsushi and Ganguli, Surya",
        "booktitle": NEURIPS, "year": "2023", "eprint": "2306.04251", "archiveprefix": "arXiv"},
    "papyan2020prevalence": {
        "type": "misc",
        "title": "Prevalence of Neural Collapse during the terminal phase of deep learning training",
        "author": "Papyan, Vardan and Han, X. Y. and Donoho, David L.",
        "year": "2020", "eprint": "2008.08186", "archiveprefix": "arXiv"},
    "jacot2021saddle": {
        "type": "misc",
        "title": "Saddle-to-Saddle Dynamics in Deep Linear Networks: Small Initialization Training, Symmetry, "
                 "and Sparsity",
        "author": "Jacot, Arthur and Ged, Fran{\\c{c}}ois and {\\c{S}}im{\\c{s}}ek, Berfin and Hongler, Cl{\\'e}ment "
                  "and Gabriel, Franck",
        "year": "2021", "eprint": "2106.15933", "archiveprefix": "arXiv"},
    # Measurements the observables follow (audit.md names Olsson et al. and Kornblith et al.; the
    # others are named in the observables' own docstrings).
    "kornblith2019similarity": {
        "type": "misc",
        "title": "Similarity of Neural Network Representations Revisited",
        "author": "Kornblith, Simon and Norouzi, Mohammad and Lee, Honglak and Hinton, Geoffrey",
        "year": "2019", "eprint": "1905.00414", "archiveprefix": "arXiv"},
    "olsson2022context": {
        "type": "misc",
        "title": "In-context Learning and Induction Heads",
        "author": "Olsson, Catherine and Elhage, Nelson and Nanda, Neel and others",
        "year": "2022", "eprint": "2209.11895", "archiveprefix": "arXiv"},
    "cohen2021gradient": {
        "type": "misc",
        "title": "Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability",
        "author": "Cohen, Jeremy M. and Kaur, Simran and Li, Yuanzhi and Kolter, J. Zico and Talwalkar, Ameet",
        "year": "2021", "eprint": "2103.00065", "archiveprefix": "arXiv"},
    "clark2019what": {
        "type": "misc",
        "title": "What Does {BERT} Look At? An Analysis of {BERT}'s Attention",
        "author": "Clark, Kevin and Khandelwal, Urvashi and Levy, Omer and Manning, Christopher D.",
        "year": "2019", "eprint": "1906.04341", "archiveprefix": "arXiv"},
    "salazar2020masked": {
        "type": "misc",
        "title": "Masked Language Model Scoring",
        "author": "Salazar, Julian and Liang, Davis and Nguyen, Toan Q. and Kirchhoff, Katrin",
        "year": "2020", "eprint": "1910.14659", "archiveprefix": "arXiv"},
    "roy2007effective": {
        "type": "misc",
        "title": "The effective rank: A measure of effective dimensionality",
        "author": "Roy, Olivier and Vetterli, Martin",
        "year": "2007"},
}

GOLDSTONE_MODES = ("iqbal2026goldstone",)
NOETHER = ("kunin2021neural", "tanaka2021noether")

EXPERIMENT_REFERENCES: dict[str, tuple[str, ...]] = {
    "conv_rnn_vortices": GOLDSTONE_MODES,
    "copy_task": GOLDSTONE_MODES,
    "deep_mlp": GOLDSTONE_MODES,
    "ksb": ("tanaka2021noether", "kunin2021neural"),
    "lora_entanglement": ("chen2026artificial", "hu2021lora"),
    "mlm_syntax": ("chen2024sudden", "clark2019what", "salazar2020masked"),
    "neural_collapse": ("papyan2020prevalence", "ziyin2025parameter"),
    "noether": NOETHER,
    "order_parameter": GOLDSTONE_MODES,
    "representation_formation": ("ziyin2024formation",),
    "saddle_to_saddle": ("jacot2021saddle", "ziyin2025parameter"),
    "seq_pixels": GOLDSTONE_MODES,
    "sgd_collapse": ("chen2023stochastic", "ziyin2024noise"),
    "single_node": ("rosner2026single",),
    "syre": ("ziyin2025remove",),
    "weight_decay_transition": ("ziyin2024symmetry",),
}
"""The keys each built-in experiment relies on (its module docstring names the same papers)."""

OBSERVABLE_REFERENCES: dict[str, tuple[str, ...]] = {
    "attention_patterns": ("olsson2022context",),
    "gradient_norms": (),
    "head_specialisation": ("rosner2026single",),
    "head_uas": ("clark2019what", "chen2024sudden"),
    "jacobian_spectrum": GOLDSTONE_MODES + ("roy2007effective",),
    "loss_curvature": ("cohen2021gradient",),
    "minimal_pairs": ("salazar2020masked", "chen2024sudden"),
    "neuron_census": ("ziyin2025parameter", "ziyin2024symmetry", "chen2023stochastic"),
    "noether_charges": NOETHER,
    "order_parameter": GOLDSTONE_MODES,
    "overlap": GOLDSTONE_MODES,
    "protected_jacobian": GOLDSTONE_MODES,
    "representation_alignment": ("ziyin2024formation",),
    "representation_drift": ("kornblith2019similarity",),
    "unit_activations": ("rosner2026single",),
    "unit_performance": ("rosner2026single",),
    "weight_norms": (),
    "weight_statistics": ("roy2007effective", "chen2026artificial"),
}
"""The keys each observable (by its `name`) relies on; generic measurements rely on none."""

CITATION_FIELDS = {"title": "Goldstone: a laboratory for symmetry breaking and phase transitions in neural-network "
                            "learning",
                   "authors": [{"name": "The Goldstone contributors"}], "version": "0.1.0", "date-released": "2026-12-07",
                   "license": "MIT"}
"""What CITATION.cff at the root of the repository says, kept here for installed packages (a test
keeps the two equal)."""


def goldstone_entry() -> dict[str, str]:
    """Goldstone's own entry (type software), from CITATION.cff's fields."""
    cff = CITATION_FIELDS
    # a `name` (a group, as "The Goldstone contributors") is kept whole in braces; a person is "Family, Given"
    author = " and ".join(f"{{{a['name']}}}" if "name" in a else
                          ", ".join(p for p in (a.get("family-names"), a.get("given-names")) if p)
                          for a in cff.get("authors", []))
    entry = {"type": "software", "title": str(cff["title"]).replace("Goldstone", "{G}oldstone", 1), "author": author,
             "year": str(cff.get("date-released", ""))[:4], "version": str(cff.get("version", "")),
             "license": str(cff.get("license", ""))}
    return {key: value for key, value in entry.items() if value}


def bibtex(key: str, entry: dict[str, str]) -> str:
    """One BibTeX entry: ``@type{key,`` then a field per line."""
    fields = [(name, value) for name, value in entry.items() if name != "type"]
    names = {"archiveprefix": "archivePrefix", "primaryclass": "primaryClass"}
    width = max(len(names.get(name, name)) for name, _ in fields)
    lines = [f"  {names.get(name, name):<{width}} = {{{value}}}" for name, value in fields]
    return f"@{entry['type']}{{{key},\n" + ",\n".join(lines) + "\n}\n"


def entries(keys: list[str]) -> str:
    """Goldstone's entry, then those of `keys` in order (each once)."""
    unique = [GOLDSTONE] + [k for i, k in enumerate(keys) if k not in keys[:i] and k != GOLDSTONE]
    return "\n".join(bibtex(k, goldstone_entry() if k == GOLDSTONE else REFERENCES[k]) for k in unique)


def _comment(text: str) -> str:
    """A BibTeX comment line: outside entries BibTeX skips text up to the next "@", so none is left in."""
    return "% " + text.replace("@", "(at)").replace("\n", " ")


def experiment_keys(name: str) -> list[str]:
    """The keys experiment `name` relies on ([] for an experiment registered elsewhere)."""
    return list(EXPERIMENT_REFERENCES.get(name, ()))


def observable_keys(names: list[str]) -> list[str]:
    """The keys of the observables `names` (names without references are skipped), each once."""
    return list(dict.fromkeys(k for name in names for k in OBSERVABLE_REFERENCES.get(name, ())))


def _known_experiments() -> list[str]:
    """The installed experiments' names (read from the package metadata, importing none) and the
    built-in ones."""
    from goldstone.lab.registry import EXPERIMENTS, ENTRY_POINTS
    from importlib import metadata

    installed = {ep.name for ep in metadata.entry_points(group=ENTRY_POINTS)}
    return sorted(installed | set(EXPERIMENTS) | set(EXPERIMENT_REFERENCES))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise GoldstoneError(f"{path}: cannot be read as JSON ({err})") from err
    if not isinstance(data, dict):
        raise GoldstoneError(f"{path}: not a goldstone file (expected a JSON object)")
    return data


def _audit_observables(folder: Path) -> list[str]:
    """The observables an audit folder ran: its plan (those that applied), else, for an audit
    still running, those in the rows of its checkpoints so far."""
    import pyarrow.parquet as pq

    try:
        if (folder / AUDIT_PLAN).is_file():
            plan = pq.read_table(folder / AUDIT_PLAN, columns=["observable", "applies"]).to_pydict()
            return [o for o, applies in zip(plan["observable"], plan["applies"]) if applies]
        names: list[str] = []
        for path in sorted((folder / "checkpoints").glob("step_*.parquet")):
            names += pq.read_table(path, columns=["observable"]).column("observable").to_pylist()
        return list(dict.fromkeys(names))
    except Exception as err:  # pyarrow raises several types for a damaged or foreign file
        raise GoldstoneError(f"{folder}: the audit's tables cannot be read ({str(err).splitlines()[0]})") from err


def _folder(folder: Path) -> tuple[str, list[str]]:
    """What a run, sweep or audit folder used: (a line saying what it is, its keys)."""
    if (folder / AUDIT_MARKER).is_file():
        used = _audit_observables(folder)
        named = ", ".join(used) if used else "none measured yet"
        return f"audit folder {folder} (observables: {named})", observable_keys(used)
    for name, what in ((SWEEP_SPEC, "sweep"), (RUN_CONFIG, "run")):
        if (folder / name).is_file():
            experiment = _read_json(folder / name).get("experiment")
            if not isinstance(experiment, str):
                raise GoldstoneError(f"{folder / name}: names no experiment; {folder} is not a goldstone {what} folder")
            return f"{what} folder {folder} (experiment {experiment})", experiment_keys(experiment)
    raise GoldstoneError(f"{folder}: not a goldstone run ({RUN_CONFIG}), sweep ({SWEEP_SPEC}) or audit "
                         f"({AUDIT_MARKER}) folder")


def resolve(target: str | Path | None) -> tuple[str, list[str]]:
    """(what `target` is, in words; the keys it relies on, Goldstone's not included)."""
    if target is None:
        return "every reference goldstone uses", list(REFERENCES)
    path = Path(target)
    if path.is_dir():
        return _folder(path)
    if path.exists():
        raise GoldstoneError(f"{target}: a file; give a run, sweep or audit folder, or an experiment name")
    name = str(target)
    known = _known_experiments()
    if name in known:
        return f"experiment {name}", experiment_keys(name)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise GoldstoneError(f"{name!r}: no such folder and no such experiment{hint} (give a run, sweep or audit folder, "
                         "or an experiment name: goldstone list)")


def cite(target: str | Path | None = None) -> str:
    """The BibTeX of the papers `target` used, with Goldstone's own entry first: a run folder, a
    sweep folder, an audit folder or an experiment name; None gives every reference."""
    what, keys = resolve(target)
    header = [_comment(f"{MARKER[2:]}: {what}")]
    if target is not None and not keys:
        header.append(_comment("no paper is recorded for it beyond goldstone itself"))
    return "\n".join(header) + "\n\n" + entries(keys)


def written_by_cite(path: Path) -> bool:
    """Whether `path` is a .bib file that `goldstone cite --out` wrote (its first line)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().startswith(MARKER)
    except (OSError, UnicodeDecodeError):
        return False
