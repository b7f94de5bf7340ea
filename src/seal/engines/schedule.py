"""The job schedule both engines follow, so that one job gives one adapter whichever engine trains it.

- initialisation: A ~ kaiming-uniform (peft's default bound, 1/sqrt(fan_in)) drawn on the CPU from
  a generator seeded by the job's seed, module by module in the model's order; B = 0, so a fresh
  adapter is exactly the base model;
- data order: each epoch shuffles the sequences with `random.Random(seed)`, then batches of
  `batch_size` in that order;
- learning rate: linear decay from the job's lr to 0 over its steps (step s uses lr * (1 - s / total));
- clipping: each adapter's gradient scaled by min(1, max_norm / (norm + 1e-6)), as torch's
  clip_grad_norm_ does (off by default);
- loss: mean cross-entropy over the batch's target tokens (labels shifted by one, -100 ignored),
  logits computed only where a target is.

AdamW (torch's, weight decay 0, betas 0.9/0.999, eps 1e-8) is the optimiser of both.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from torch import nn

from seal.engines.base import Job, NonFiniteLoss
from seal.errors import SealError

BETAS = (0.9, 0.999)
EPS = 1e-8


def check_target_modules(model: nn.Module, target_modules: list[str]) -> None:
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in target_modules if m not in present]
    if missing:
        raise SealError(f"target modules {missing} are not in this model (it has e.g. "
                        f"{sorted(n for n in present if 'proj' in n or 'fc' in n)[:8]})")


def init_generator(seed: int) -> torch.Generator:
    """The CPU generator a job's LoRA A factors are drawn from (device-independent values)."""
    return torch.Generator().manual_seed(seed)


def lora_a_init(generator: torch.Generator, shape: tuple[int, int]) -> torch.Tensor:
    """kaiming_uniform_(a=sqrt(5)) for a weight of shape (r, fan_in), as peft initialises A."""
    bound = 1.0 / math.sqrt(shape[1])
    return torch.empty(shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)


def job_plan(job: Job, batch_size: int, default_epochs: int) -> list[tuple[int, list[int]]]:
    """(epoch, sequence indices) of every optimiser step of `job`, in order.

    >>> job_plan(Job([[1], [2], [3]], seed=0), batch_size=2, default_epochs=2)
    [(0, [0, 2]), (0, [1]), (1, [2, 1]), (1, [0])]
    """
    epochs = default_epochs if job.epochs is None else job.epochs
    order_rng = random.Random(job.seed)
    steps = []
    for epoch in range(epochs):
        order = list(range(len(job.token_ids)))
        order_rng.shuffle(order)
        steps += [(epoch, order[b:b + batch_size]) for b in range(0, len(order), batch_size)]
    return steps


def step_lr(lr: float, step: int, total: int) -> float:
    """Linear decay to 0: the learning rate of step `step` (from 0) of `total`.

    >>> [step_lr(1.0, s, 4) for s in range(4)]
    [1.0, 0.75, 0.5, 0.25]
    """
    return lr * (1.0 - step / total)


def clip_factors(squared_norms: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Per-adapter gradient scale from each adapter's squared gradient norm (as clip_grad_norm_).

    >>> [round(x, 4) for x in clip_factors(torch.tensor([4.0, 0.25]), 1.0).tolist()]
    [0.5, 1.0]
    """
    return (max_norm / (squared_norms.sqrt() + 1e-6)).clamp(max=1.0)


def tokenize_sequences(tokenizer, sequences: list[str], max_len: int) -> list[list[int]]:
    """Token ids of each training sequence, ending with EOS, cut to `max_len`."""
    out = []
    for text in sequences:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_len - 1]
        out.append(ids + [tokenizer.eos_token_id])
    return out


def pad_batch(sequences: list[list[int]], targets: list[list[int]] | None, pad_id: int,
              device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, attention mask and labels (-100 on padding; `targets` None: every real token)."""
    width = max(len(s) for s in sequences)
    input_ids = torch.tensor([s + [pad_id] * (width - len(s)) for s in sequences], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device)
    if targets is None:
        labels = input_ids.masked_fill(mask == 0, -100)
    else:
        labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets], device=device)
    return input_ids, mask, labels


def target_losses(model: nn.Module, input_ids: torch.Tensor, mask: torch.Tensor,
                  labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of every target token (labels shifted by one, as causal LMs are trained), and its row.

    The output layer is applied only at the positions that predict a target (the language model
    head of a small model is a large share of its FLOPs); models whose logits need more than the
    head (soft-capping, scaling) go through their full forward.
    """
    shifted = labels[:, 1:]
    where = shifted != -100
    head = model.get_output_embeddings()
    backbone = getattr(model, model.base_model_prefix, None)
    plain_head = (head is not None and backbone is not None and
                  getattr(model.config, "final_logit_softcapping", None) is None and
                  getattr(model.config, "logit_scale", None) is None)
    if plain_head:
        hidden = backbone(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state[:, :-1]
        logits = head(hidden[where])
    else:
        logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits[:, :-1][where]
    losses = F.cross_entropy(logits.float(), shifted[where], reduction="none")  # float32, as transformers' loss
    return losses, where.nonzero()[:, 0]


def check_finite(value: float, where: str, lr: float) -> None:
    if not math.isfinite(value):
        raise NonFiniteLoss(f"training loss became {value} {where} (lr={lr:.3g}); lower the learning rate")


def plan_passes(pending: list[int], width: dict[int, int], rows: dict[int, int], pass_tokens: int,
                max_padding: float = 0.2) -> list[list[int]]:
    """Split jobs (sorted by width, widest first) into passes of at most `pass_tokens` padded tokens.

    A pass also ends where the next job is more than `max_padding` shorter than the pass's
    widest, so that little of a pass is padding (one long passage sequence among short
    self-edit lines would otherwise pad them all to its length).

    >>> plan_passes([0, 1, 2, 3], {0: 100, 1: 90, 2: 85, 3: 40}, {0: 1, 1: 1, 2: 1, 3: 1}, 200)
    [[0, 1], [2], [3]]
    """
    out, current, current_rows = [], [], 0
    for j in pending:
        # The first job of a pass is the widest, so the pass's padded size is its width x rows.
        pass_width = width[current[0]] if current else width[j]
        if current and ((current_rows + rows[j]) * pass_width > pass_tokens or
                        width[j] < (1 - max_padding) * pass_width):
            out.append(current)
            current, current_rows = [], 0
        current.append(j)
        current_rows += rows[j]
    if current:
        out.append(current)
    return out


def next_pass(pending: list[int], width: dict[int, int], rows: dict[int, int], steps_left: dict[int, int],
              pass_tokens: int, max_padding: float = 0.2) -> list[int]:
    """The jobs of the batched engine's next training pass, from the pending jobs' next micro-batches.

    Candidate passes are `plan_passes` over the jobs sorted widest first. Jobs are independent, so any
    may wait: the candidate whose jobs have the most steps left runs (the critical path, so that no
    long job runs alone at the end), ties to the wider pass.

    >>> next_pass([0, 1, 2], {0: 40, 1: 200, 2: 38}, {0: 1, 1: 1, 2: 1}, {0: 5, 1: 2, 2: 5}, 2048)
    [0, 2]
    """
    order = sorted(pending, key=lambda j: width[j], reverse=True)
    candidates = plan_passes(order, width, rows, pass_tokens, max_padding)
    return max(candidates, key=lambda c: (sum(steps_left[j] for j in c), sum(width[j] for j in c)))


def micro_batches(rows: list[int], lengths: list[int], pass_tokens: int, max_padding: float = 0.2) -> list[list[int]]:
    """One optimiser step's rows (sequence indices) cut into micro-batches of alike length.

    The batched engine accumulates a step's gradient over its micro-batches, so that a long row
    (a passage) does not pad the short ones (self-edit lines) of its step to its length, and a
    step larger than `pass_tokens` padded tokens is not one pass. A step that needs no cut keeps
    its rows in their order (batch size 1: always). The loss stays the mean over the step's targets.

    >>> micro_batches([0, 1, 2, 3], [40, 200, 38, 35], pass_tokens=2048)
    [[1], [0, 2, 3]]
    >>> micro_batches([2, 0], [40, 200, 38], pass_tokens=2048), micro_batches([0, 1, 2], [50] * 3, pass_tokens=100)
    ([[2, 0]], [[0, 1], [2]])
    """
    out: list[list[int]] = []
    current: list[int] = []
    for i in sorted(rows, key=lambda i: -lengths[i]):
        width = lengths[current[0]] if current else lengths[i]
        if current and ((len(current) + 1) * width > pass_tokens or lengths[i] < (1 - max_padding) * width):
            out.append(current)
            current = []
        current.append(i)
    out.append(current)
    return out if len(out) > 1 else [list(rows)]
