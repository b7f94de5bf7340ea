"""The batched multi-adapter engine gives what N separate single-adapter runs give, and leaves the base alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seal.config import ModelConfig
from seal.errors import SealError
from seal.inner_loop import (NonFiniteLoss, attach_lora, lora_parameters, reset_adapter, run_trial,
                             run_trials_batched, tokenize_sequences, train_adapter)
from seal.knowledge.fictional import generate_passages
from seal.knowledge.grading import Grader
from seal.knowledge.prompts import training_sequences
from seal.models import load_model
from seal.multi_lora import AdapterJob, MultiLoRA, _passes


@pytest.fixture
def tiny64(tiny_model_path):
    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu", dtype="float32"))
    loaded.model.to(torch.float64)  # equality up to reordering, checked tightly
    return loaded


def jobs_for(tokenizer, cfg, n: int) -> list[AdapterJob]:
    """n trials of different lengths, seeds, learning rates and epochs (one with a loss mask)."""
    jobs = []
    for i, p in enumerate(generate_passages(n, seed=5)):
        sequences = training_sequences(p, f"1. {p.questions[0].question} {p.questions[0].answer}.")[: 1 + i % 3]
        ids = tokenize_sequences(tokenizer, sequences, cfg.max_seq_len)
        labels = [[-100] * 4 + s[4:] for s in ids] if i == 1 else None
        jobs.append(AdapterJob(ids, seed=10 + i, lr=[5e-2, 2e-2, 1e-1][i % 3], epochs=2 + i % 2, labels=labels))
    return jobs


def peft_state(model) -> dict[str, torch.Tensor]:
    return {n.replace("base_model.model.", "").replace(".default", ""): p.detach().clone()
            for n, p in lora_parameters(model)}


@pytest.mark.parametrize("max_grad_norm", [None, 0.05])  # 0.05: every step's gradient is clipped
def test_batched_training_gives_the_weights_of_separate_runs(tiny64, fast_inner, max_grad_norm):
    cfg = dataclasses.replace(fast_inner, pass_tokens=64, max_grad_norm=max_grad_norm)  # small passes: several per step
    jobs = jobs_for(tiny64.tokenizer, cfg, 4)

    single = attach_lora(tiny64.model, cfg)
    expected, expected_stats = [], []
    for job in jobs:
        reset_adapter(single, job.seed)
        expected_stats.append(train_adapter(tiny64, single, job.token_ids, cfg, job.seed, lr=job.lr,
                                            epochs=job.epochs, labels=job.labels))
        expected.append(peft_state(single))
    base = single.unload()

    multi = MultiLoRA(base, cfg, slots=4)
    stats = multi.train(jobs, pad_id=tiny64.tokenizer.pad_token_id)
    for slot, (want, want_stats) in enumerate(zip(expected, expected_stats)):
        got = multi.adapter_state(slot)
        assert got.keys() == want.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-9, atol=1e-11, msg=name)
        assert stats[slot].steps == want_stats.steps and stats[slot].tokens == want_stats.tokens
        assert stats[slot].epoch_losses == pytest.approx(want_stats.epoch_losses, rel=1e-6)  # float32 losses
        assert not torch.equal(got[next(n for n in got if "lora_B" in n)], torch.zeros(1))  # it learned


def test_batched_answers_equal_one_by_one_answers(tiny, fast_inner):
    passages = generate_passages(3, seed=9)
    trials = [(p, "1. " + p.questions[0].answer + " matters.", s, "implications") for p in passages for s in (0, 1)]
    grader = Grader("contains")
    single = attach_lora(tiny.model, fast_inner)
    expected = [run_trial(tiny, single, p, edit, seed, fast_inner, grader, family) for p, edit, seed, family in trials]
    base = single.unload()

    multi = MultiLoRA(base, dataclasses.replace(fast_inner, adapters_per_pass=4))
    got = dict(run_trials_batched(tiny, multi, trials, fast_inner, grader, desc=None))
    assert sorted(got) == list(range(len(trials)))
    for t, want in enumerate(expected):
        assert [a["answer"] for a in got[t]["answers"]] == [a["answer"] for a in want["answers"]]
        assert got[t]["accuracy"] == want["accuracy"]
        assert got[t]["train"]["epoch_losses"] == pytest.approx(want["train"]["epoch_losses"], rel=1e-4)


def test_base_slot_is_the_base_model_and_unload_restores_it(tiny, fast_inner):
    ids = torch.tensor([tiny.tokenizer("The bridge of the old town")["input_ids"]] * 2)
    with torch.no_grad():
        before = tiny.model(input_ids=ids).logits
    base_weights = {n: p.detach().clone() for n, p in tiny.model.named_parameters()}
    multi = MultiLoRA(tiny.model, fast_inner, slots=2)
    multi.train(jobs_for(tiny.tokenizer, fast_inner, 2), pad_id=tiny.tokenizer.pad_token_id)
    with torch.no_grad():
        with multi.route([None, 0]):
            mixed = tiny.model(input_ids=ids).logits
        with multi.disable_adapter():
            off = tiny.model(input_ids=ids).logits
    assert torch.equal(mixed[0], before[0])  # the base slot (B = 0) is exactly the base model
    assert not torch.allclose(mixed[1], before[1])  # slot 0 learned something
    assert torch.equal(off, before)
    model = multi.unload()
    assert all(torch.equal(p, base_weights[n]) for n, p in model.named_parameters()), "base weights changed"
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before)


def test_nan_loss_names_the_job(tiny, fast_inner):
    multi = MultiLoRA(tiny.model, fast_inner, slots=2)
    jobs = jobs_for(tiny.tokenizer, fast_inner, 2)
    jobs[1].lr = 1e6  # a huge step: the loss blows up
    with pytest.raises(NonFiniteLoss, match="trial 1 of a batched pass"):
        multi.train([dataclasses.replace(j, epochs=30) for j in jobs], pad_id=tiny.tokenizer.pad_token_id)


def test_passes_respect_the_memory_cap():
    width = {j: 100 - 5 * j for j in range(6)}
    passes = _passes(list(range(6)), width, dict.fromkeys(range(6), 1), pass_tokens=250)
    assert [j for p in passes for j in p] == list(range(6))
    assert all(len(p) * width[p[0]] <= 250 for p in passes)
    assert passes == [[0, 1], [2, 3], [4, 5]]
    # a long sequence does not pad short ones to its length
    assert _passes([0, 1, 2], {0: 200, 1: 30, 2: 28}, dict.fromkeys(range(3), 1), pass_tokens=4096) == [[0], [1, 2]]


def test_too_many_jobs_and_foreign_adapters_are_refused(tiny, fast_inner):
    single = attach_lora(tiny.model, fast_inner)
    with pytest.raises(SealError, match="not a Linear"):
        MultiLoRA(single.base_model.model, fast_inner, slots=1)
    multi = MultiLoRA(single.unload(), fast_inner, slots=1)
    with pytest.raises(SealError, match="2 jobs for 1 adapter slots"):
        multi.train(jobs_for(tiny.tokenizer, fast_inner, 2), pad_id=0)
