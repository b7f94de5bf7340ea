"""Rounds shared with an earlier `seal train` run (train.reuse_from, `--reuse-from`): E-step and M-step ablations.

Two ReST-EM runs that differ only in what the E-step keeps (train.selection, train.max_copy) or in how
the M-step fine-tunes (train.sft_from, train.sft) sample the same round 0, since both start from the base
model. A later round r is the same in both as well when round r-1 was shared, kept the same pairs, and
fine-tuned the same model with the same SFT settings: the generators that sample round r are then the same.
Such a round's draw, self-edits and trials are copied from the earlier run instead of run again. On the
embedded default a SQuAD round of 144 trials takes one to two hours of a core. The round's E-step and
M-step always run under this run's own config. A copied round says where it came from in
round-R/reused.json and in its round.json.

The settings that decide those stages must match, and `mismatch` names the first one that does not:

- the domain, the model and its dtype;
- the data (or the ARC tasks), sampling;
- the inner loop's training and answering settings;
- train.passages_per_round, train.baseline and train.seed.

Settings that only schedule the work (engine, pass sizes, device, executor) may differ, and so may the
E-step's and M-step's own settings. Departure from the paper: the paper runs no ablations of its E-step.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from seal.config import INNER_SCHEDULING, RunConfig
from seal.errors import SealError
from seal.runs import load_run_config, write_atomic

STAGE_FILES = ("passages.json", "tasks.json", "self_edits.jsonl", "baselines.jsonl", "trials.jsonl")
"""What a round's draw, generate and trials stages write (seal.loops.rest_em), in both domains."""


def decisive(config: RunConfig) -> dict[str, object]:
    """The settings a round's draw, self-edits and trials follow, by dotted name."""
    d = config.to_dict()
    out: dict[str, object] = {"domain": d["domain"], "model.name": d["model"]["name"], "model.dtype": d["model"]["dtype"]}
    source = "arc" if d["domain"] == "arc" else "data"
    for section, skip in ((source, frozenset()), ("sampling", frozenset()), ("inner", INNER_SCHEDULING)):
        out.update({f"{section}.{k}": v for k, v in d[section].items() if k not in skip})
    out.update({f"train.{k}": d["train"][k] for k in ("passages_per_round", "baseline", "seed")})
    return out


def mismatch(config: RunConfig, other: RunConfig) -> str | None:
    """The first deciding setting in which `config` differs from `other`, as a phrase; None when they agree."""
    mine, theirs = decisive(config), decisive(other)
    for key, value in mine.items():
        if theirs.get(key) != value:
            return f"{key} is {value!r} here and {theirs.get(key)!r} there"
    return None


def check_reuse(config: RunConfig) -> None:
    """Before the run directory exists: train.reuse_from is a `seal train` run with a finished round 0 that this
    config would repeat."""
    source = Path(config.train.reuse_from)
    other = load_run_config(source)
    if other.command != "train":
        raise SealError(f"train.reuse_from: {source} is a `seal {other.command}` run, not a `seal train` run")
    why = mismatch(config, other)
    if why is not None:
        raise SealError(f"train.reuse_from: {source} ran other rounds than this config would: {why}")
    if finished(source / "round-0") is None:
        raise SealError(f"train.reuse_from: {source} has no finished round 0 to reuse yet")


def finished(round_dir: Path) -> dict | None:
    try:
        return json.loads((round_dir / "round.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def kept_pairs(round_dir: Path) -> list[tuple]:
    with open(round_dir / "kept.jsonl", encoding="utf-8") as f:
        return [(k["item_id"], k["self_edit_index"], k["self_edit"]) for k in map(json.loads, f)]


def why_not(config: RunConfig, run_dir: Path, r: int) -> str | None:
    """Why round r of `run_dir` is not the source run's round r (None: it is, and can be copied)."""
    source = Path(config.train.reuse_from)
    if finished(source / f"round-{r}") is None:
        return f"its round {r} has not finished"
    if r == 0:
        return None
    if not (run_dir / f"round-{r - 1}" / "reused.json").exists():
        return f"round {r - 1} was not shared, so the generators differ"
    mine, theirs = finished(run_dir / f"round-{r - 1}"), finished(source / f"round-{r - 1}")
    if kept_pairs(run_dir / f"round-{r - 1}") != kept_pairs(source / f"round-{r - 1}"):
        return f"round {r - 1} kept other pairs"
    if mine["kept"] and mine["sft_from"] != theirs["sft_from"]:
        return f"round {r - 1} fine-tuned {mine['sft_from']}, that run {theirs['sft_from']}"
    if mine["kept"] and load_run_config(source).train.sft != config.train.sft:
        return "the SFT settings differ"
    return None


def reuse_round(config: RunConfig, run_dir: Path, r: int) -> bool:
    """Copy round r's stage records from train.reuse_from into run_dir/round-r when the round is shared; True if
    they are there (copied now or before). A round this run has started on its own is left alone."""
    source = Path(config.train.reuse_from)
    src, dst = source / f"round-{r}", run_dir / f"round-{r}"
    note = dst / "reused.json"
    if not note.exists():
        if any((dst / name).exists() for name in STAGE_FILES):
            return False
        why = why_not(config, run_dir, r)
        if why is not None:
            print(f"round {r}: run here, not copied from {source}: {why}")
            return False
        names = [name for name in STAGE_FILES if (src / name).exists()]
        # The note first: a copy cut off by a kill is finished on resume, and the round still says where it came from.
        write_atomic(note, json.dumps({"from": str(src.resolve()), "files": names}, indent=1) + "\n")
    names = json.loads(note.read_text())["files"]
    for name in names:
        if not (dst / name).exists():
            if not (src / name).is_file():
                raise SealError(f"round {r} is being copied from {src}, which no longer has {name}; restore it, "
                                f"or delete {dst} to run the round here")
            shutil.copyfile(src / name, dst / f"{name}.copying.tmp")  # a kill leaves a *.tmp: runs.clean_temporaries
            (dst / f"{name}.copying.tmp").replace(dst / name)
    print(f"round {r}: draw, self-edits and trials copied from {src}")
    return True


def reused_from(round_dir: Path) -> str | None:
    """The source round a round's records were copied from (its reused.json), or None."""
    try:
        return json.loads((round_dir / "reused.json").read_text())["from"]
    except (OSError, json.JSONDecodeError, KeyError):
        return None
