"""The E-step re-test (seal.reporting.retest): an evaluation of a ReST-EM round's own self-edits on its own passages."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from seal.cli import main
from seal.reporting.read import RunView
from seal.reporting.retest import retest_figures, round_rows
from test_cli import tiny_flags


def test_the_round_s_own_trials_come_out_the_same_at_its_seed(tmp_path, tiny_model_path, capsys):
    """Seed 0 again: every self-edit trains the same adapter and gives the same answers as in the round."""
    runs = tmp_path / "runs"
    flags = tiny_flags(tiny_model_path, runs)
    assert main(["train", "--data", "fictional", "--num-passages", "4", "--rounds", "1", "--passages-per-round", "2",
                 "-k", "3", "--max-new-tokens", "8", "--baseline", "passage-twice", "--seeds", "0", "--name", "t",
                 *flags]) == 0
    [train_run] = list(runs.iterdir())
    r0 = train_run / "round-0"
    assert main(["eval", "--data", str(r0 / "passages.json"), "--condition", str(r0 / "self_edits.jsonl"),
                 "--condition", "passage-twice", "--seeds", "0", "--name", "retest", *flags]) == 0
    [eval_run] = [p for p in runs.iterdir() if p != train_run]
    answers = lambda path: {(t["condition"] == "passage-twice", t["passage_id"], t["self_edit_index"]):  # noqa: E731
                            [a["answer"] for a in t["answers"]] for t in map(json.loads, path.read_text().splitlines())}
    round_answers, eval_answers = answers(r0 / "trials.jsonl"), answers(eval_run / "trials.jsonl")
    assert len(round_answers) == 2 * 3 + 2 and eval_answers == round_answers
    view = RunView(eval_run)
    assert round_rows(view) == [(str(r0 / "self_edits.jsonl"), r0)]
    figures = retest_figures(view, str(r0 / "self_edits.jsonl"), r0)
    assert figures["self_edits"] == 6 and figures["differ"] == []
    capsys.readouterr()
    assert main(["report", "--markdown", str(eval_run)]) == 0
    assert f"## Re-test of {train_run.name} round-0" in capsys.readouterr().out
    assert main(["report", str(eval_run)]) == 0
    assert f"Re-test of {train_run.name} round-0" in (eval_run / "report.html").read_text()


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def made_up(tmp_path):
    """A round of 3 passages x 3 self-edits whose rewards at seed 0 are known, and a re-test at seed 1."""
    train_run, eval_run = tmp_path / "train", tmp_path / "eval"
    r0 = train_run / "round-0"
    r0.mkdir(parents=True)
    eval_run.mkdir()
    config = {"command": "train", "model": {"name": "m", "dtype": "float32"}, "inner": {"lr": 1e-3, "seeds": [0]},
              "train": {"baseline": "passage-twice"}}
    (train_run / "config.yaml").write_text(yaml.safe_dump(config))
    (r0 / "round.json").write_text("{}")
    there = {"a": [1.0, 0.2, 0.0], "b": [0.4, 0.6, 0.2], "c": [0.0, 0.0, 0.5]}
    here = {"a": [0.4, 0.2, 0.0], "b": [0.2, 0.6, 0.2], "c": [0.1, 0.0, 0.3]}
    trial = lambda c, p, i, acc, seed: {"condition": c, "passage_id": p, "self_edit_index": i, "accuracy": acc,  # noqa: E731
                                        "seed": seed, "status": "ok", "timings": {"train_s": 1.0, "eval_s": 1.0}}
    _write(r0 / "trials.jsonl", [trial("model", p, i, r, 0) for p, rs in there.items() for i, r in enumerate(rs)]
           + [trial("passage-twice", p, 0, 0.3, 0) for p in there])
    _write(r0 / "kept.jsonl", [{"item_id": "a", "self_edit_index": 0}, {"item_id": "b", "self_edit_index": 1},
                               {"item_id": "c", "self_edit_index": 2}])
    row = str(r0 / "self_edits.jsonl")
    _write(r0 / "self_edits.jsonl", [{"passage_id": p, "self_edits": ["x", "y", "z"]} for p in there])
    _write(eval_run / "trials.jsonl", [trial(row, p, i, r, 1) for p, rs in here.items() for i, r in enumerate(rs)]
           + [trial("passage-twice", p, 0, b, 1) for p, b in (("a", 0.3), ("b", 0.6), ("c", 0.1))])
    (eval_run / "config.yaml").write_text(yaml.safe_dump({**config, "command": "eval", "conditions": [row, "passage-twice"],
                                                          "inner": {"lr": 1e-4, "seeds": [1]}}))
    return eval_run, row, r0, there, here


def test_the_retest_figures_are_the_correlations_and_advantages_of_the_records(made_up):
    eval_run, row, r0, there, here = made_up
    f = retest_figures(RunView(eval_run), row, r0)
    xs = [r for p in "abc" for r in there[p]]
    ys = [r for p in "abc" for r in here[p]]
    mx, my = sum(xs) / 9, sum(ys) / 9
    r = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(sum((x - mx) ** 2 for x in xs)
                                                                       * sum((y - my) ** 2 for y in ys))
    assert f["self_edits"] == 9 and f["passages"] == 3 and f["r"] == pytest.approx(r)
    kept, top = f["choices"]
    # kept a0, b1, c2: in the round 1.0-0.1, 0.6-0.3, 0.5-0.0; here 0.4-0.1, 0.6-0.2, 0.3-0.05
    assert kept["in_round"] == pytest.approx([0.9, 0.3, 0.5]) and kept["here"] == pytest.approx([0.3, 0.4, 0.25])
    assert top["passages"] == 3 and top["here"] == pytest.approx(kept["here"])  # the top rewards are the kept ones
    # kept minus passage twice here: 0.4-0.3, 0.6-0.6, 0.3-0.1
    assert f["baseline_row"] == "passage-twice" and f["kept_vs_baseline"] == pytest.approx([0.1, 0.0, 0.2])
    assert f["differ"] == ["inner.lr"]  # seeds may differ; the learning rate may not, and is named
    within = f["r_within"]
    assert -1 <= within <= 1 and within != pytest.approx(f["r"])


def test_a_retest_with_a_tied_passage_leaves_it_out_of_the_top_rewards(made_up):
    eval_run, row, r0, _, _ = made_up
    records = [json.loads(line) for line in (r0 / "trials.jsonl").read_text().splitlines()]
    for t in records:
        if t["passage_id"] == "c" and t["condition"] == "model":
            t["accuracy"] = 0.5  # every self-edit of c ties: nothing to choose
    _write(r0 / "trials.jsonl", records)
    kept, top = retest_figures(RunView(eval_run), row, r0)["choices"]
    assert kept["passages"] == 3 and top["passages"] == 2


def test_a_passage_the_retest_has_not_finished_is_left_out(made_up):
    eval_run, row, r0, _, _ = made_up
    lines = (eval_run / "trials.jsonl").read_text().splitlines()
    (eval_run / "trials.jsonl").write_text("\n".join(line for line in lines if '"c", "self_edit_index": 2' not in line) + "\n")
    f = retest_figures(RunView(eval_run), row, r0)
    assert f["self_edits"] == 6 and f["passages"] == 2 and [c["passages"] for c in f["choices"]] == [2, 2]
