"""train.reuse_from: an E-step or M-step ablation copies the rounds it shares with an earlier run, and only those."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import yaml

from seal.domains.knowledge.domain import KnowledgeDomain
from seal.domains.knowledge.grading import Grader
from seal.errors import SealError
from seal.loops.rest_em import train
from seal.loops.reuse import check_reuse, reuse_round
from seal.report import train_report
from test_cli import assert_one_clear_line, run_cli
from test_rest_em import length_grader, tiny_train_config, weights


def counting_grader(calls: list):
    def grade(questions, golds, predictions):
        calls.append(len(predictions))
        return length_grader(questions, golds, predictions)
    return Grader("judge", grade)


def finished_run(path, config):
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    return train(config, path, KnowledgeDomain(Grader("judge", length_grader)))


def test_an_sft_from_base_ablation_copies_rounds_0_and_1_and_runs_round_2(tmp_path, tiny_model_path):
    """sft_from base and current fine-tune the same model in round 0 (the base model samples it), so both
    runs' round 1 is sampled by the same generator; round 1's M-step differs, so round 2 is run again."""
    first = tiny_train_config(tiny_model_path, rounds=3)
    history = finished_run(tmp_path / "a", first)
    assert [h["kept"] > 0 for h in history] == [True, True, True]

    ablation = replace(first, train=replace(first.train, sft_from="base", reuse_from=str(tmp_path / "a"))).validate()
    check_reuse(ablation)
    calls: list[int] = []
    mine = train(ablation, tmp_path / "b", KnowledgeDomain(counting_grader(calls)))
    a, b = tmp_path / "a", tmp_path / "b"
    for r in (0, 1):
        for name in ("passages.json", "self_edits.jsonl", "baselines.jsonl", "trials.jsonl"):
            assert (b / f"round-{r}" / name).read_bytes() == (a / f"round-{r}" / name).read_bytes()
        assert mine[r]["reused_from"] == str((a / f"round-{r}").resolve())
        assert mine[r]["mean_reward"] == history[r]["mean_reward"] and mine[r]["kept"] == history[r]["kept"]
    # Round 0's M-step is the same in both (the base model is the generator that sampled it) ...
    base, theirs, ours = weights(tiny_model_path), weights(a / "round-0" / "generator"), weights(b / "round-0" / "generator")
    assert all(torch.equal(theirs[n], ours[n]) for n in base) and any(not torch.equal(base[n], ours[n]) for n in base)
    # ... round 1's is not (base against round 0's generator), so round 2 ran here: its 3 baselines and 18 trials.
    assert mine[1]["sft_from"] == str(tiny_model_path) and history[1]["sft_from"] == "round-0/generator"
    assert mine[2]["reused_from"] is None and not (b / "round-2" / "reused.json").exists()
    assert len(calls) == 3 + 3 * 3 * 2
    assert (b / "round-2" / "self_edits.jsonl").read_bytes() != (a / "round-2" / "self_edits.jsonl").read_bytes()

    report = train_report(mine, "b")
    assert f"round 0 from `{(a / 'round-0').resolve()}`, round 1 from `{(a / 'round-1').resolve()}`." in report

    # A copy a kill cut short is finished on resume from the note it wrote first.
    (b / "round-0" / "trials.jsonl").unlink()
    assert reuse_round(ablation, b, 0)
    assert (b / "round-0" / "trials.jsonl").read_bytes() == (a / "round-0" / "trials.jsonl").read_bytes()
    (b / "round-0" / "trials.jsonl").unlink()  # ... and names what is missing when the source lost it
    (a / "round-0" / "trials.jsonl").rename(a / "round-0" / "moved.jsonl")
    with pytest.raises(SealError, match="no longer has trials.jsonl"):
        reuse_round(ablation, b, 0)
    # A round this run started on its own is never overwritten by a copy.
    assert not reuse_round(ablation, b, 2)


def test_reuse_from_refuses_a_run_of_other_rounds_in_one_line(tmp_path, tiny_model_path, capsys):
    config = tiny_train_config(tiny_model_path, rounds=1)
    finished_run(tmp_path / "a", config)
    source = str(tmp_path / "a")
    check_reuse(replace(config, train=replace(config.train, reuse_from=source, max_copy=0.5, selection="beats-baseline"),
                        inner=replace(config.inner, engine="single", adapters_per_pass=2)))  # E-step and scheduling: fine
    for change, needle in ((dict(sampling=replace(config.sampling, temperature=0.5)), "sampling.temperature is 0.5 here"),
                           (dict(inner=replace(config.inner, lr=0.01)), "inner.lr"),
                           (dict(train=replace(config.train, baseline="passage-twice")), "train.baseline")):
        ablation = replace(config, **change)
        with pytest.raises(SealError, match=needle):
            check_reuse(replace(ablation, train=replace(ablation.train, reuse_from=source)))
    (tmp_path / "a" / "round-0" / "round.json").unlink()  # as if still running its round 0
    with pytest.raises(SealError, match="no finished round 0"):
        check_reuse(replace(config, train=replace(config.train, reuse_from=source)))

    code, err = run_cli(capsys, ["train", "--model", str(tiny_model_path), "--data", "fictional",
                                 "--runs-root", str(tmp_path / "runs"), "--reuse-from", str(tmp_path / "nowhere")])
    assert code == 2
    assert_one_clear_line(err, "nowhere")
    assert not (tmp_path / "runs").exists()  # nothing made before the check
