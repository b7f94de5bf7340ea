"""`seal archive`: a run's records without its weights, readable and resumable where the run is gone."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import yaml

from seal.cli import main
from seal.commands.report import markdown_report
from seal.reporting.listing import list_runs
from seal.runs import lock_run, release_run
from test_cli import assert_one_clear_line, data_file, run_cli, tiny_flags


def tiny_train_run(tmp_path: Path, model_path) -> Path:
    from seal.domains.knowledge.domain import KnowledgeDomain
    from seal.domains.knowledge.grading import Grader
    from seal.loops.rest_em import train
    from test_rest_em import length_grader, tiny_train_config

    config = tiny_train_config(model_path, rounds=1)
    run = tmp_path / "runs" / "20261201-000000-train-tiny"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    train(config, run, KnowledgeDomain(Grader("judge", length_grader)))
    return run


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_an_archive_keeps_every_record_byte_for_byte_and_leaves_out_the_generator(tmp_path, tiny_model_path, capsys):
    run = tiny_train_run(tmp_path, tiny_model_path)
    weights = run / "round-0" / "generator" / "model.safetensors"
    assert weights.is_file()

    assert main(["archive", str(run), "--to", str(tmp_path / "results")]) == 0
    copy = tmp_path / "results" / run.name
    assert f"archive: {copy}" in capsys.readouterr().out
    source, archived = files(run), files(copy)
    records = {k: v for k, v in source.items() if not k.startswith("round-0/generator/") and k != ".lock"}
    assert records and {k: v for k, v in archived.items() if k != "archived.json"} == records
    assert not any(Path(k).suffix == ".safetensors" for k in archived)
    [model] = json.loads(archived["archived.json"])["left_out"]
    assert model["path"] == "round-0/generator"
    assert model["sha256"]["model.safetensors"] == hashlib.sha256(weights.read_bytes()).hexdigest()

    assert "archived" in list_runs(tmp_path / "results") and "--resume" not in list_runs(tmp_path / "results")
    original = markdown_report([str(run)]).replace(str(run), "RUN")
    shutil.rmtree(run)  # the machine is gone; the copy still reads as the run did
    assert "round 0" in original and markdown_report([str(copy)]).replace(str(copy), "RUN") == original


def test_a_row_added_to_an_archived_table_pairs_with_its_records_and_repeats_none(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    assert main(["eval", "--data", data_file(tmp_path), "--condition", "passage", *tiny_flags(tiny_model_path, runs),
                 "-k", "1", "--max-new-tokens", "8", "--name", "table"]) == 0
    [run] = list(runs.iterdir())
    assert main(["archive", str(run), "--to", str(tmp_path / "results")]) == 0
    before = (run / "trials.jsonl").read_text().splitlines()
    shutil.rmtree(run)

    copy = tmp_path / "results" / run.name
    assert main(["eval", "--resume", str(copy), "--condition", "passage-twice"]) == 0
    after = (copy / "trials.jsonl").read_text().splitlines()
    assert after[:len(before)] == before
    added = [json.loads(line) for line in after[len(before):]]
    assert [t["condition"] for t in added] == ["passage-twice"] * 2
    assert {t["passage_id"] for t in added} == {json.loads(line)["passage_id"] for line in before}
    assert "passage-twice" in markdown_report([str(copy)])


def test_a_run_still_going_is_copied_without_its_torn_line_and_said_to_be_going(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    assert main(["eval", "--data", data_file(tmp_path), "--condition", "passage", *tiny_flags(tiny_model_path, runs),
                 "-k", "1", "--max-new-tokens", "8"]) == 0
    [run] = list(runs.iterdir())
    whole = (run / "trials.jsonl").read_text()
    with open(run / "trials.jsonl", "a") as f:
        f.write('{"condition": "pass')  # a writer killed mid-line, or one still writing
    lock_run(run)
    try:
        assert main(["archive", str(run), "--to", str(tmp_path / "results")]) == 0
    finally:
        release_run(run)
    copy = tmp_path / "results" / run.name
    assert (copy / "trials.jsonl").read_text() == whole
    assert json.loads((copy / "archived.json").read_text())["in_progress"] is True

    (copy / "summary.json").unlink()  # as it would be, taken before the table finished
    ran_at = max(p.stat().st_mtime for p in run.rglob("*") if p.is_file() and p.name != ".lock")
    for path in copy.rglob("*"):  # a clone: git gives every file the clone's time
        os.utime(path, (ran_at + 7200, ran_at + 7200))
    listing = list_runs(tmp_path / "results")
    assert " archived " in listing and f"seal eval --resume {copy}" in listing  # resumes from its self-edits
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(ran_at)) in listing  # the run's time, not the clone's

    assert main(["archive", str(run), "--to", str(tmp_path / "results")]) == 0  # again: the copy is updated
    assert json.loads((copy / "archived.json").read_text())["in_progress"] is False


def test_what_cannot_be_archived_is_one_line_and_touches_nothing(tmp_path, capsys):
    code, err = run_cli(capsys, ["archive", str(tmp_path), "--to", str(tmp_path / "results")])
    assert code == 2
    assert_one_clear_line(err, "is not a seal run directory")
    assert not (tmp_path / "results").exists()

    run = tmp_path / "runs" / "20261201-000000-adapt"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("command: adapt\n")
    taken = tmp_path / "results" / run.name
    taken.mkdir(parents=True)
    (taken / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, ["archive", str(run), "--to", str(tmp_path / "results")])
    assert code == 2
    assert_one_clear_line(err, "exists and is not an archive of")
    assert files(taken) == {"notes.txt": b"mine"}


def test_an_archived_generator_row_keeps_its_family_when_its_rest_em_run_is_gone(tmp_path, tiny_model_path):
    """A generator: row of a ReST-EM run that sampled rewrites: its self-edits are cut at blank lines (rewrite),
    not at every line (the table's implications), also when the table is resumed from its archive after the
    ReST-EM run's directory is gone (the family is read from the self-edit records, not the run's config)."""
    train_run = tmp_path / "20261201-000000-train-rewrite"
    shutil.copytree(tiny_model_path, train_run / "round-0" / "generator")
    (train_run / "config.yaml").write_text(f"command: train\nmodel:\n  name: {tiny_model_path}\n"
                                           "sampling:\n  prompt: rewrite\n  max_new_tokens: 6\n")
    row = f"generator:{train_run / 'round-0' / 'generator'}"
    runs = tmp_path / "runs"
    assert main(["eval", "--data", data_file(tmp_path, self_edits=False), "--condition", row, "-k", "1",
                 "--max-new-tokens", "3", *tiny_flags(tiny_model_path, runs)]) == 0
    [run] = list(runs.iterdir())
    [log] = run.glob("self_edits-*-round-0-generator.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["prompt"] for r in records} == {"rewrite"}
    # one paragraph of two lines: one training piece as a rewrite, two as implications
    log.write_text("".join(json.dumps({**r, "self_edits": ["Ab one.\nAb two."]}) + "\n" for r in records))
    for name in ("trials.jsonl", "trials.groups.jsonl", "trials.progress.json", "summary.json"):
        (run / name).unlink(missing_ok=True)
    assert main(["archive", str(run), "--to", str(tmp_path / "results")]) == 0
    shutil.rmtree(run)
    shutil.rmtree(train_run)

    copy = tmp_path / "results" / run.name
    assert main(["eval", "--resume", str(copy)]) == 0
    trials = [json.loads(line) for line in (copy / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 and {t["n_sequences"] for t in trials} == {2}  # the passage and one rewrite piece


def test_a_table_that_gains_rows_is_open_again_and_its_archive_says_so(tmp_path, tiny_model_path):
    """A finished table that gains a row (`seal eval --resume RUN --condition C`) is not finished until that row
    is: stopped before it ran, it lists as stopped with its resume command, and archiving it again drops the
    summary the copy had."""
    from seal.commands.generators import add_rows
    from seal.runs import load_run_config

    runs = tmp_path / "runs"
    assert main(["eval", "--data", data_file(tmp_path), "--condition", "passage", *tiny_flags(tiny_model_path, runs),
                 "-k", "1", "--max-new-tokens", "8"]) == 0
    [run] = list(runs.iterdir())
    assert main(["archive", str(run), "--to", str(tmp_path / "results")]) == 0
    copy = tmp_path / "results" / run.name
    assert (copy / "summary.json").is_file() and " finished " in list_runs(tmp_path / "results")

    add_rows(load_run_config(run), run, ["passage-twice"], [])  # the resume's first step; killed before a trial
    assert not (run / "summary.json").exists()
    assert " stopped " in list_runs(runs) and f"seal eval --resume {run}" in list_runs(runs)

    assert main(["archive", str(run), "--to", str(tmp_path / "results")]) == 0
    assert not (copy / "summary.json").exists() and (copy / "trials.jsonl").is_file()
    assert " archived " in list_runs(tmp_path / "results")
