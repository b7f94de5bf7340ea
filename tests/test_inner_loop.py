"""The inner loop on a tiny random Llama: learning happens, only LoRA moves, the base is restored."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seal.inner_loop import (NonFiniteLoss, attach_lora, lora_parameters, reset_adapter, run_trial,
                             tokenize_sequences, train_adapter)
from seal.knowledge.grading import Grader
from seal.knowledge.prompts import training_sequences


def base_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}


def lora_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in lora_parameters(model)}


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_trial_trains_only_lora_lowers_loss_and_restores_base(tiny, fast_inner, passage):
    model = attach_lora(tiny.model, fast_inner)
    probe = torch.tensor([tiny.tokenizer(passage.context)["input_ids"][:20]])
    before_base, before_logits = base_state(model), logits(model, probe)
    with model.disable_adapter():
        assert torch.equal(logits(model, probe), before_logits)  # a reset adapter is exactly the base model

    record = run_trial(tiny, model, passage, "1. The town is old.\n2. It has bridges.", seed=0,
                       cfg=fast_inner, grader=Grader("contains"))

    assert record["status"] == "ok"
    losses = record["train"]["epoch_losses"]
    assert len(losses) == fast_inner.epochs and losses[-1] < 0.7 * losses[0]
    assert record["n_sequences"] == 3 and record["train"]["steps"] == 3 * fast_inner.epochs
    assert len(record["answers"]) == len(passage.questions)
    after_base = base_state(model)
    assert after_base.keys() == before_base.keys()
    assert all(torch.equal(after_base[n], before_base[n]) for n in before_base), "base weights changed"
    assert torch.equal(logits(model, probe), before_logits), "the model was not restored to the base"


def test_training_changes_lora_weights_and_reset_restores_them(tiny, fast_inner, passage):
    model = attach_lora(tiny.model, fast_inner)
    reset_adapter(model, seed=3)
    initial = lora_state(model)
    ids = tokenize_sequences(tiny.tokenizer, training_sequences(passage, None), fast_inner.max_seq_len)
    train_adapter(tiny, model, ids, fast_inner, seed=3)
    trained = lora_state(model)
    changed = [n for n in initial if not torch.equal(initial[n], trained[n])]
    assert {n.split("lora_")[1].split(".")[0] for n in changed} == {"A", "B"}
    assert len(changed) == len(initial)  # every adapted projection learned something
    reset_adapter(model, seed=3)
    assert all(torch.equal(initial[n], p) for n, p in lora_parameters(model))


def test_reset_is_seeded(tiny, fast_inner):
    model = attach_lora(tiny.model, fast_inner)
    reset_adapter(model, seed=1)
    a = lora_state(model)
    reset_adapter(model, seed=2)
    b = lora_state(model)
    reset_adapter(model, seed=1)
    c = lora_state(model)
    a_names = [n for n in a if "lora_A" in n]
    assert all(torch.equal(a[n], c[n]) for n in a)
    assert not any(torch.equal(a[n], b[n]) for n in a_names)
    assert all(not p.any() for n, p in lora_parameters(model) if "lora_B" in n)


def test_same_seed_same_trial(tiny, fast_inner, passage):
    model = attach_lora(tiny.model, fast_inner)
    grader = Grader("contains")
    first = run_trial(tiny, model, passage, "It is old.", seed=5, cfg=fast_inner, grader=grader)
    second = run_trial(tiny, model, passage, "It is old.", seed=5, cfg=fast_inner, grader=grader)
    assert first["train"]["epoch_losses"] == second["train"]["epoch_losses"]
    assert [a["answer"] for a in first["answers"]] == [a["answer"] for a in second["answers"]]


def test_loss_ignores_padding(tiny, fast_inner):
    """A padded batch's loss equals the token-weighted mean of each sequence's own loss."""
    model = tiny.model.double()
    seqs = tokenize_sequences(tiny.tokenizer, ["Vesu is a town by a river.", "Short."], 64)
    pad = tiny.tokenizer.pad_token_id
    width = max(map(len, seqs))
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        singles = [model(input_ids=torch.tensor([s]), labels=torch.tensor([s])).loss for s in seqs]
    weights = [len(s) - 1 for s in seqs]
    expected = sum(l * w for l, w in zip(singles, weights)) / sum(weights)
    assert torch.allclose(batched, expected, atol=1e-10)


def test_empty_self_edit_is_not_trained_and_scores_zero(tiny, fast_inner, passage):
    model = attach_lora(tiny.model, fast_inner)
    before = lora_state(model)
    record = run_trial(tiny, model, passage, "**Implications:**\n\n", seed=0, cfg=fast_inner, grader=Grader("contains"))
    assert record["status"] == "empty_self_edit" and record["accuracy"] == 0.0
    assert all(torch.equal(before[n], p) for n, p in lora_parameters(model))


def test_non_finite_loss_stops_the_trial_and_resets(tiny, fast_inner, passage):
    model = attach_lora(tiny.model, fast_inner)
    before_base = base_state(model)
    absurd = dataclasses.replace(fast_inner, lr=1e30, epochs=5)  # past validation, as a corrupted run might be
    with pytest.raises(NonFiniteLoss, match="lower the learning rate"):
        run_trial(tiny, model, passage, "It is old.", seed=0, cfg=absurd, grader=Grader("contains"))
    assert all(not p.any() for n, p in lora_parameters(model) if "lora_B" in n)
    assert all(torch.equal(p, before_base[n]) for n, p in base_state(model).items())


def test_unknown_target_module_is_a_clear_error(tiny, fast_inner):
    from seal.errors import SealError

    with pytest.raises(SealError, match="not in this model"):
        attach_lora(tiny.model, dataclasses.replace(fast_inner, target_modules=["c_attn"]))


def test_local_judge_judges_with_the_adapter_off(tiny, tiny_model_path, fast_inner):
    from seal.config import ModelConfig
    from seal.knowledge.grading import LocalJudge
    from seal.models import load_model

    model = attach_lora(tiny.model, fast_inner)
    with torch.no_grad():  # an adapter mid-trial: far from the base model
        for name, p in lora_parameters(model):
            p.normal_(0, 1.0, generator=torch.Generator().manual_seed(len(name)))
    triples = (["Which river?", "When?"], ["Besheidoux", "1310"], ["the Besheidoux", "in 1290"])
    fresh = LocalJudge(load_model(ModelConfig(name=str(tiny_model_path), device="cpu")))
    assert LocalJudge(tiny, model).replies(*triples) == fresh.replies(*triples)
    assert LocalJudge(tiny).replies(*triples) != fresh.replies(*triples)  # the perturbed adapter does matter
