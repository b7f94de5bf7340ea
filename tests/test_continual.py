"""Continual learning on a tiny model: the matrix's bookkeeping, weights that change only by the merged edits,
a killed sequence resuming without repeating a step, bad input as one line."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from seal.cli import main
from seal.config import ContinualConfig, DataConfig, InnerLoopConfig, ModelConfig, RunConfig, SamplingConfig
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.trials import KnowledgeTrials, passages_for
from seal.engines.base import merge_adapter
from seal.loops.continual import answer_and_score, load_state, run_continual
from seal.models import load_model
from seal.report import summarise_continual
from test_cli import assert_one_clear_line, run_cli, tiny_flags


def length_grader(questions, golds, predictions):
    return [float(len(p) % 2 == 0) for p in predictions]


def tiny_continual(model_path, **continual) -> RunConfig:
    return RunConfig(
        command="continual", conditions=["model", "passage"],
        model=ModelConfig(name=str(model_path), device="cpu"),
        data=DataConfig(source="fictional", num_passages=6),
        sampling=SamplingConfig(max_new_tokens=12, temperature=1.0),
        inner=InnerLoopConfig(rank=4, alpha=8, lr=0.05, epochs=2, answer_max_new_tokens=6, target_modules=["q_proj", "v_proj"]),
        continual=ContinualConfig(sequences=2, sequence_length=3, **continual)).validate()


def run(config, run_dir, grader=length_grader):
    def make_domain(loaded):
        return KnowledgeTrials(loaded.tokenizer, config.inner, Grader("judge", grader), sampling=config.sampling)

    return run_continual(config, run_dir, passages_for(config), make_domain)


def test_the_matrix_is_measured_after_each_step_and_the_weights_move_only_by_the_merged_edits(tmp_path, tiny_model_path):
    config = tiny_continual(tiny_model_path)
    results = run(config, tmp_path)
    assert set(results) == {"model", "passage"} and all(len(v) == 2 for v in results.values())
    for sequence in results["model"]:
        assert len(sequence["base"]) == 3
        assert [len(row) for row in sequence["rows"]] == [2, 3, 3]  # passages 0..t+1 after step t
    seq_dir = tmp_path / "model" / "sequence-1"
    steps = [json.loads(line) for line in (seq_dir / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [0, 1, 2] and all(s["train"]["steps"] > 0 for s in steps)
    # the base model plus the saved edits, merged in order, is the model that answered the last step
    loaded = load_model(config.model)
    base = {n: p.clone() for n, p in loaded.model.named_parameters()}
    for t in range(3):
        merge_adapter(loaded.model, load_state(seq_dir / f"step-{t}.safetensors"), config.inner.alpha / config.inner.rank)
    changed = {n for n, p in loaded.model.named_parameters() if not torch.equal(p, base[n])}
    assert changed and all(n.split(".")[-2] in ("q_proj", "v_proj") for n in changed)
    from seal.domains.base import Trial

    passages = passages_for(config)[3:6]
    domain = KnowledgeTrials(loaded.tokenizer, config.inner, Grader("judge", length_grader))
    scored = answer_and_score(loaded, domain, [Trial("model", p, j, 0, 0) for j, p in enumerate(passages)], config.inner)
    assert [x["accuracy"] for x in scored] == steps[-1]["accuracies"]
    summary = summarise_continual(results)["conditions"]["model"]
    assert len(summary["matrix"]) == 3 and summary["backward_transfer"] is not None


def test_a_killed_sequence_resumes_without_repeating_a_step(tmp_path, tiny_model_path):
    config = tiny_continual(tiny_model_path, replay=True, lr_scale=0.5)
    config = replace(config, conditions=["model"], continual=replace(config.continual, sequences=1))
    calls = {"n": 0}

    def dies_at_the_third_step(questions, golds, predictions):
        calls["n"] += 1
        if calls["n"] == 3 + 2 * 3:  # 3 base passages, 2 + 3 after steps 0 and 1, killed during step 2's answers
            raise KeyboardInterrupt
        return length_grader(questions, golds, predictions)

    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "killed", dies_at_the_third_step)
    log = tmp_path / "killed" / "model" / "sequence-0" / "steps.jsonl"
    assert len(log.read_text().splitlines()) == 2
    resumed = run(config, tmp_path / "killed")
    steps = [json.loads(line) for line in log.read_text().splitlines()]
    assert [s["step"] for s in steps] == [0, 1, 2]  # nothing repeated
    assert steps[2]["train"]["lr"] == pytest.approx(0.05 * 0.25) and steps[2]["train"]["sequences"] > steps[0]["train"]["sequences"]
    fresh = run(config, tmp_path / "fresh")
    assert resumed == fresh  # the same matrix as an uninterrupted sequence


def test_continual_command_writes_the_table_and_heat_map(tmp_path, capsys, tiny_model_path):
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["continual", *tiny_flags(tiny_model_path, runs), "--sequences", "1",
                                 "--sequence-length", "2", "--condition", "passage", "--num-passages", "2"])
    assert code == 0, err
    [run_dir] = list(runs.iterdir())
    assert (run_dir / "forgetting.png").stat().st_size > 0
    assert "| after step | p0 | p1 |" in (run_dir / "report.md").read_text()
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    assert "backward transfer" in page and 'src="data:image/png;base64,' in page and "step 1: accuracy" in page
    from seal.reporting.listing import list_runs

    assert "finished  2 of 2 steps" in list_runs(runs)
    code, err = run_cli(capsys, ["continual", *tiny_flags(tiny_model_path, tmp_path / "r2"), "--sequences", "3",
                                 "--num-passages", "4"])
    assert code == 2
    assert_one_clear_line(err, "3 sequences of 8 passages need 24 passages; the data gives 4")
    assert not (tmp_path / "r2").exists() or not any((tmp_path / "r2").iterdir())


def test_stacked_adapters_are_the_merged_model_without_writing_the_weights(tmp_path, tiny_model_path):
    from seal.loops.continual import Stack

    merged_cfg = replace(tiny_continual(tiny_model_path), conditions=["passage"],
                         continual=ContinualConfig(sequences=1, sequence_length=3))
    stacked_cfg = replace(merged_cfg, continual=replace(merged_cfg.continual, merge=False))
    merged, stacked = run(merged_cfg, tmp_path / "merged"), run(stacked_cfg, tmp_path / "stacked")
    assert stacked["passage"][0]["rows"][0] == merged["passage"][0]["rows"][0]  # step 0: nothing stacked yet
    states = [load_state(tmp_path / "stacked" / "passage" / "sequence-0" / f"step-{t}.safetensors") for t in range(3)]
    ids = torch.tensor([[3, 5, 7, 11, 13, 17]])
    a, b = load_model(merged_cfg.model), load_model(merged_cfg.model)
    base = {n: p.clone() for n, p in a.model.named_parameters()}
    stack = Stack(a.model, merged_cfg.inner.alpha / merged_cfg.inner.rank)
    for state in states:
        stack.add(state)
        merge_adapter(b.model, state, merged_cfg.inner.alpha / merged_cfg.inner.rank)
    with torch.no_grad():
        torch.testing.assert_close(a.model(input_ids=ids).logits, b.model(input_ids=ids).logits, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(a.model(input_ids=ids).logits, load_model(merged_cfg.model).model(input_ids=ids).logits)
    assert all(torch.equal(p, base[n]) for n, p in a.model.named_parameters())  # stacking writes no weight
