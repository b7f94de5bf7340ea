"""What every engine does: train independent LoRA fine-tunes on one frozen base model, answer with them.

    engine = make_engine(loaded, cfg)                     # once per process; the base model is loaded once
    stats  = engine.train([Job(token_ids, seed=0), ...])  # job i -> adapter slot i, from a fresh initialisation
    texts  = engine.answer(prompts, adapters=[0, 0, None, 1], max_new_tokens=32)   # None: the base model
    engine.reset()                                        # every slot back to the base model (B = 0)

Two implementations (`seal.engines.peft_single`: one peft adapter, one job at a time;
`seal.engines.multi_lora`: many adapters, every row of a pass with its own) share one job
schedule (`seal.engines.schedule`: seeded initialisation, data order, linear decay, clipping,
the loss), so the same job gives the same adapter on either, and `tests/test_engines.py`
checks it. Loops use nothing else: `engine.slots` jobs are trained at a time, then answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from seal.config import InnerLoopConfig
from seal.errors import SealError


def group_by_budget(max_new_tokens: int | list[int], n: int) -> dict[int, list[int]]:
    """Prompt indices per answer budget (a budget per prompt, or one for all).

    >>> group_by_budget([5, 9, 5], 3)
    {5: [0, 2], 9: [1]}
    """
    budgets = [max_new_tokens] * n if isinstance(max_new_tokens, int) else list(max_new_tokens)
    out: dict[int, list[int]] = {}
    for i, b in enumerate(budgets):
        out.setdefault(b, []).append(i)
    return out


@torch.no_grad()
def merge_adapter(model: nn.Module, state: dict[str, torch.Tensor], scaling: float) -> None:
    """Add a LoRA adapter's `scaling * B A` into the weights of the plain `model` it was trained on.

    `state` names factors as the engines' `adapter_state` does (`<module>.lora_A.weight`, `.lora_B.weight`).
    """
    for name in [n for n in state if n.endswith(".lora_A.weight")]:
        module = model.get_submodule(name.removesuffix(".lora_A.weight"))
        b = state[name.replace(".lora_A.", ".lora_B.")]
        dtype = torch.promote_types(module.weight.dtype, torch.float32)  # half-precision weights: add in float32
        delta = scaling * (b.to(dtype) @ state[name].to(dtype))
        module.weight.add_(delta.to(module.weight.device, module.weight.dtype))


def answer_with_backend(engine, prompts: list[str], slots: list[int | None], *, max_new_tokens, chat: bool = True,
                        stop: list[str] | None = None) -> list[str]:
    """An engine's `answer` through its model's backend: each used slot's adapter handed over once."""
    from seal.generation import encode_prompts

    backend = engine.loaded.backend
    handles = {s: backend.adapter(engine.adapter_state(s), engine.cfg.rank, engine.cfg.alpha)
               for s in sorted({s for s in slots if s is not None})}
    encoded = encode_prompts(engine.loaded.tokenizer, prompts, chat)
    out = [""] * len(prompts)
    try:
        for budget, indices in group_by_budget(max_new_tokens, len(prompts)).items():
            texts = backend.generate([encoded[i] for i in indices], max_new_tokens=budget, stop=stop,
                                     adapters=[None if slots[i] is None else handles[slots[i]] for i in indices])
            for i, text in zip(indices, texts):
                out[i] = text[0]
    finally:
        for handle in handles.values():
            backend.drop(handle)
    return out


class NonFiniteLoss(SealError):
    """The training loss became NaN or infinite (usually a learning rate far too high)."""


@dataclass
class Job:
    """One independent fine-tune: its sequences, optional labels (-100 = no loss), seed, lr and epochs.

    `lr` and `epochs` default to the engine's config (`inner.lr`, `inner.epochs`).
    """

    token_ids: list[list[int]]
    seed: int
    lr: float | None = None
    epochs: int | None = None
    labels: list[list[int]] | None = None


@dataclass
class TrainStats:
    steps: int
    tokens: int
    seconds: float
    epoch_losses: list[float] = field(default_factory=list)


class Engine(Protocol):
    """Independent LoRA fine-tunes on a frozen base model (see the module docstring)."""

    slots: int
    """How many jobs one `train` call takes (their adapters are held until the next call)."""
    cfg: InnerLoopConfig
    """LoRA shape, schedule defaults (lr, epochs, batch size, clipping) and answer batch size."""

    def train(self, jobs: list[Job], desc: str | None = None) -> list[TrainStats]:
        """Fine-tune job i into slot i from its seed's fresh initialisation; one TrainStats per job."""

    def answer(self, prompts: list[str], adapters: list[int | None], *, max_new_tokens: int | list[int],
               batch_size: int = 16, chat: bool = True, stop: list[str] | None = None) -> list[str]:
        """One greedy completion per prompt, prompt i with the adapter in slot `adapters[i]` (None: the base)."""

    def reset(self) -> None:
        """Every slot back to the base model (B = 0); the base weights were never written."""

    def adapter_state(self, slot: int = 0) -> dict[str, torch.Tensor]:
        """Slot `slot`'s LoRA factors, named `<module>.lora_A.weight` / `.lora_B.weight`."""

    def merge_and_unload(self, slot: int = 0) -> nn.Module:
        """Add slot `slot`'s adapter into the base weights and return the plain model (the generator SFT)."""

    def unload(self) -> nn.Module:
        """Remove the adapters and return the untouched base model."""
