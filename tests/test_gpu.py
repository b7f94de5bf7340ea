"""The engines in bfloat16 on a GPU: the batched engine against peft's, base weights untouched, factors in float32.

Skipped without CUDA (the CI); `SEAL_TEST_DEVICE=cpu` runs them on the CPU in bfloat16, a check of
the tests themselves. scripts/gpu-check.sh runs them on a GPU machine with bench/round.py.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from seal.config import ModelConfig
from seal.engines.multi_lora import MultiLoRAEngine
from seal.engines.peft_single import PeftEngine
from seal.models import load_model
from test_engines import jobs_for, peft_as_multi_names

DEVICE = os.environ.get("SEAL_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = pytest.mark.skipif(DEVICE is None, reason="no CUDA device (SEAL_TEST_DEVICE=cpu runs these on the CPU)")


def bf16(path):
    return load_model(ModelConfig(name=str(path), device=DEVICE, dtype="bfloat16"))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


@pytest.mark.parametrize("fuse", [False, True])
def test_batched_bf16_trains_the_adapters_peft_trains(tiny_model_path, fast_inner, fuse):
    cfg = dataclasses.replace(fast_inner, pass_tokens=64, lr=1e-2)
    single_model = bf16(tiny_model_path)
    jobs = [dataclasses.replace(j, lr=1e-2) for j in jobs_for(single_model.tokenizer, cfg, 3)]  # a bf16-sized lr
    single = PeftEngine(single_model, cfg)
    expected, expected_stats = [], []
    for job in jobs:
        expected_stats += single.train([job])
        expected.append({n: p.detach().clone() for n, p in peft_as_multi_names(single).items()})
    single.unload()

    loaded = bf16(tiny_model_path)
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    multi = MultiLoRAEngine(loaded, cfg, slots=3, fuse=fuse)
    stats = multi.train(jobs)
    for slot, want in enumerate(expected):
        got = multi.adapter_state(slot)
        assert all(t.dtype == torch.float32 for t in got.values())  # factors in float32 over a bf16 base
        for name in want:  # bf16 rounding, amplified where Adam's steps follow a near-zero gradient's sign
            w, g = want[name].float(), got[name]
            assert cosine(g, w) > 0.99 and (g - w).norm() < 0.05 * w.norm(), name
            if "lora_B" in name:
                assert w.abs().sum() > 0, name  # it trained
        assert stats[slot].epoch_losses == pytest.approx(expected_stats[slot].epoch_losses, rel=2e-2)
        assert stats[slot].epoch_losses[-1] < stats[slot].epoch_losses[0]  # it learned
    base = multi.unload()
    for name, p in base.named_parameters():
        assert p.dtype == torch.bfloat16
        assert torch.equal(p, before[name]), name  # the base weights were never written


def test_batched_bf16_answers_route_each_row_to_its_adapter(tiny_model_path, fast_inner):
    loaded = bf16(tiny_model_path)
    multi = MultiLoRAEngine(loaded, fast_inner, slots=2)
    multi.train(jobs_for(loaded.tokenizer, fast_inner, 2))
    if DEVICE == "cuda":  # the pass size was fitted to free memory (a probe pass), never below the config's
        assert multi.fitted_pass_tokens >= fast_inner.pass_tokens
    prompts = ["Where is Brask Mill?"] * 3
    together = multi.answer(prompts, [0, 1, None], max_new_tokens=8)
    alone = [multi.answer(prompts[:1], [slot], max_new_tokens=8)[0] for slot in (0, 1, None)]
    assert together == alone
