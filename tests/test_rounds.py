"""seal.reporting.rounds: each ReST-EM round against its bar, and two runs' rounds against each other.

The runs here are written by hand (round.json, trials.jsonl), so every figure can be checked against
arithmetic done in the test; tests/test_report.py covers pages of runs that the tiny model made.
"""

from __future__ import annotations

import json

import pytest
import yaml

from seal.cli import main
from seal.reporting.read import RunView
from seal.reporting.rounds import across_rows, round_figures

# per input: the bar (passage-twice trial accuracy) and each self-edit's rewards over seeds
ROUND = {"p0": (0.3, [[0.4, 0.2], [0.6]]),  # (0.4 + 0.2) / 2 is 0.30000000000000004: a tie with 0.3, not a win
         "p1": (0.1, [[0.0], [0.0]]),
         "p2": (0.3, [[0.5], [0.7]])}


def write_run(path, rounds: list[dict], reused: dict[int, str] | None = None, finished: bool = True):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"command": "train", "model": {"name": "tiny"},
                                                      "train": {"rounds": len(rounds)}}))
    for r, spec in enumerate(rounds):
        d = path / f"round-{r}"
        d.mkdir()
        trials, means = [], {}
        for pid, (bar, edits) in spec.items():
            trials.append({"condition": "passage-twice", "passage_id": pid, "self_edit_index": 0, "seed": 0,
                           "accuracy": bar})
            for e, seeds in enumerate(edits):
                trials += [{"condition": "model", "passage_id": pid, "self_edit_index": e, "seed": s, "accuracy": a}
                           for s, a in enumerate(seeds)]
            means[pid] = sum(sum(s) / len(s) for s in edits) / len(edits)
        (d / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
        if finished or r < len(rounds) - 1:
            (d / "round.json").write_text(json.dumps({
                "round": r, "inputs": len(spec), "self_edits": sum(len(e) for _, e in spec.values()),
                "mean_reward": sum(means.values()) / len(means), "reward_stderr": 0.0, "input_rewards": means,
                "baseline": "passage-twice", "mean_baseline": sum(b for b, _ in spec.values()) / len(spec),
                "kept": 2, "copied_share": 0.25, "sft": None, "timings": {"trials_s": 1.0},
                "generator_out": f"round-{r}/generator", "reused_from": (reused or {}).get(r)}))
    return path


def test_a_round_against_its_bar_is_the_arithmetic_of_its_records(tmp_path):
    run = write_run(tmp_path / "a", [ROUND])
    f = round_figures(RunView(run), run / "round-0")
    assert (f["inputs"], f["k"], f["bar_name"], f["kept"], f["copied"]) == (3, 2, "passage-twice", 2, 0.25)
    means = {"p0": 0.45, "p1": 0.0, "p2": 0.6}
    assert f["means"] == pytest.approx(means)
    assert f["mean"][0] == pytest.approx(1.05 / 3) and f["bar"][0] == pytest.approx(0.7 / 3)
    margins = [0.45 - 0.3, 0.0 - 0.1, 0.6 - 0.3]
    assert f["margin"][0] == pytest.approx(sum(margins) / 3) and f["margin"][2] == 3
    assert f["best"][0] == pytest.approx((0.6 + 0.0 + 0.7) / 3)
    assert f["best_margin"][0] == pytest.approx((0.3 - 0.1 + 0.4) / 3)
    assert (f["winners"], f["winning_inputs"]) == (3, 2)  # p0's 0.6, p2's 0.5 and 0.7; p0's seed mean ties its bar


def test_a_round_in_progress_counts_the_inputs_it_finished(tmp_path, capsys):
    unfinished = {**ROUND, "p3": (0.2, [[0.9]])}  # one of its two self-edits has run so far
    run = write_run(tmp_path / "a", [ROUND, unfinished], finished=False)
    f = round_figures(RunView(run), run / "round-1")
    assert f["inputs"] == 3 and "p3" not in f["means"] and not f["finished"]
    assert main(["report", "--markdown", str(run)]) == 0
    out = capsys.readouterr().out
    assert "| 1 (in progress) | 3 | passage-twice |" in out and "| 0 | 3 | passage-twice |" in out


def test_round_0_in_progress_has_its_bar_table_before_any_round_finished(tmp_path, capsys):
    run = write_run(tmp_path / "a", [{**ROUND, "p3": (0.2, [[0.9]])}], finished=False)
    assert main(["report", "--markdown", str(run)]) == 0
    out = capsys.readouterr().out
    assert "No ReST-EM round has finished yet." in out
    assert "| 0 (in progress) | 3 | passage-twice | 23.3 % | 35.0 % ± 18.0 | +11.7 ± 11.7 |" in out


def test_without_baseline_trials_the_bar_is_the_no_adaptation_score(tmp_path):
    run = write_run(tmp_path / "a", [ROUND])
    trials = [json.loads(line) for line in (run / "round-0" / "trials.jsonl").read_text().splitlines()]
    (run / "round-0" / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials
                                                          if t["condition"] == "model"))
    (run / "round-0" / "baselines.jsonl").write_text("".join(
        json.dumps({"passage_id": p, "accuracy": 0.5}) + "\n" for p in ROUND))
    round_json = json.loads((run / "round-0" / "round.json").read_text())
    (run / "round-0" / "round.json").write_text(json.dumps({**round_json, "baseline": None}))
    f = round_figures(RunView(run), run / "round-0")
    assert f["bar_name"] == "no adaptation" and f["bar"][0] == pytest.approx(0.5)
    assert (f["winners"], f["winning_inputs"]) == (2, 2)  # p0's 0.6 and p2's 0.7


def test_two_runs_compare_round_by_round_and_a_copied_round_is_named(tmp_path, capsys):
    first = write_run(tmp_path / "first", [ROUND, ROUND])
    better = {"p0": (0.3, [[0.6], [0.8]]), "p1": (0.2, [[0.2], [0.2]]), "p2": (0.3, [[0.7], [0.9]])}  # p1's bar moved
    second = write_run(tmp_path / "second", [ROUND, better], reused={0: str(first / "round-0")})
    rows = {r[0]: r for r in across_rows([RunView(first), RunView(second)])}
    assert rows["0"][2:4] == ["3", "same records (copied)"]
    # round 1, self-edits: p0 0.45 -> 0.7, p1 0.0 -> 0.2, p2 0.6 -> 0.8: +0.25, +0.2, +0.2 (s.d. 0.0289, s.e. 0.0167);
    # bars: p1 0.1 -> 0.2, so the margins move by +0.25, +0.1, +0.2 (s.d. 0.0764, s.e. 0.0441)
    assert rows["1"][2:] == ["3", "+21.7 ± 1.7", "+3.3 ± 3.3", "+11.7 ± 11.7 → +30.0 ± 15.3", "+18.3 ± 4.4", "above"]
    in_progress = {**better, "p2": (0.3, [[0.7]])}  # p2's second self-edit has not run: p0 and p1 are compared
    third = write_run(tmp_path / "third", [ROUND, in_progress], reused={0: str(first / "round-0")}, finished=False)
    [row] = [r for r in across_rows([RunView(first), RunView(third)]) if r[0] == "1"]
    # margins over p0, p1: first run 0.15, -0.1; this one 0.4, 0.0; changes 0.25, 0.1
    assert row[2:] == ["2", "+22.5 ± 2.5", "+5.0 ± 5.0", "+2.5 ± 12.5 → +20.0 ± 20.0", "+17.5 ± 7.5", "above"]
    assert main(["report", "--markdown", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert out.index("# second") < out.index("# Rounds against first") and "| 1 | second | 3 | +21.7 ± 1.7 |" in out
    page = tmp_path / "page.html"
    assert main(["report", str(first), str(second), "-o", str(page)]) == 0
    text = page.read_text()
    assert "Rounds against first" in text and text.count("Each round against its bar") == 2


def test_what_the_self_edits_look_like_per_round_sampled_and_kept(tmp_path):
    """The markdown's form table: median words, sequences, copied share and coverage of every sampled self-edit,
    and the kept pairs' median words and copied share; a round without round.json has no kept pairs yet."""
    from seal.domains.knowledge.passages import Passage, Question
    from seal.reporting.train import form_markdown

    context = "Vesu is a small town in Sashon by the sea and it was founded in 1310 by traders"
    passage = Passage("Vesu", context, [Question("When was Vesu founded?", "1310")])
    copy = "Vesu is a small town in Sashon by the sea"  # 10 words, all 6 of its 5-grams in the passage
    own = "Implication: traders settle where boats can land safely\nImplication: Sashon trades by sea since 1310"
    run = tmp_path / "run"
    for r in (0, 1):
        d = run / f"round-{r}"
        d.mkdir(parents=True)
        (d / "passages.json").write_text(json.dumps([{"title": passage.title, "context": context,
                                                       "questions": [{"question": "When was Vesu founded?",
                                                                      "answer": "1310"}]}]))
        (d / "self_edits.jsonl").write_text(json.dumps({"passage_id": passage.id, "passage_index": 0,
                                                        "prompt": "implications", "self_edits": [copy, own, own]}) + "\n")
    (run / "round-0" / "kept.jsonl").write_text(json.dumps({"item_id": passage.id, "self_edit_index": 0,
                                                            "copied": 1.0, "self_edit": copy}) + "\n")
    (run / "round-0" / "round.json").write_text(json.dumps({"round": 0, "mean_reward": 0.5}))
    (run / "config.yaml").write_text(yaml.safe_dump({"command": "train", "domain": "knowledge",
                                                     "model": {"name": "tiny"}, "train": {"rounds": 2}}))
    rows = [line.split(" | ") for line in form_markdown(RunView(run)).splitlines() if line.startswith(("| 0", "| 1"))]
    own_copied = 0.0  # none of its 5-grams is in the passage
    assert rows[0] == ["| 0", "3", "15", "1.67", f"{(1.0 + 2 * own_copied) / 3:.2f}", f"{2 / 3:.2f}", "1", "10", "1.00 |"]
    assert rows[1][6:] == ["- (in progress)", "-", "- |"]
