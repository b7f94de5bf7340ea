"""The layer of the batched engine: a frozen Linear plus many LoRA adapters, each row of a batch with its own.

`MultiLoRALinear` holds the frozen base layer and the stacked LoRA factors of every slot,
A: [slots + 1, r, in] and B: [slots + 1, out, r]. A forward gathers each row's factors and adds
`scaling * x A_row^T B_row^T` with two batched matmuls, so the base model's forward and
backward are shared by all rows while every adapter gets only its own rows' gradients.

Projections that read the same input (attention's q/k/v, the MLP's gate/up in Llama-like
models) share one `SharedInput`: the first of them to see an input computes `x A^T` for all of
them in one matmul against their A factors side by side ([batch, r x 3, in] for q/k/v), and the
others take their slice: one wide matmul in place of three thin ones (inner dimension r), forward
and backward. It is off by default (`MultiLoRAEngine(..., fuse=True)` turns it on) because it did
not measure faster on the project's 2-core CPU: 0.89-1.05x the separate products per training
pass in bench/train_pass.py (docs/inner-loop.md); the bench measures both on any device. The result is the same product with
the same factors; only the summation order inside the matmul may differ (float rounding). A
group whose members turn out to be called with different inputs switches itself off, and
dropout > 0 (each projection its own mask, as peft draws them) never fuses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seal.errors import SealError

IDENTITY = torch.empty(0, dtype=torch.long)
"""Router rows meaning: row i of the batch uses adapter i of the active set, ungathered."""

SHARED_INPUTS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
"""Names of projections that Llama-like blocks (Llama, Qwen2, Mistral, SmolLM2) call on one input tensor."""


class Router:
    """The adapter slot of each row of the next forward passes (None: adapters off), and while
    training with dropout, each job's (dropout generator, rows, length) in row order."""

    def __init__(self):
        self.rows: torch.Tensor | None = None
        self.dropout_segments: list[tuple[torch.Generator, int, int]] | None = None

    def dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Inverted dropout on x [batch, seq, in] with each job's rows masked from its own generator."""
        if p == 0 or self.dropout_segments is None:
            return x
        masks = []
        for generator, rows, length in self.dropout_segments:
            keep = torch.empty(rows, length, x.shape[-1]).bernoulli_(1 - p, generator=generator)
            masks.append(F.pad(keep, (0, 0, 0, x.shape[1] - length), value=1.0))
        return x * torch.cat(masks).to(x.device, x.dtype) / (1 - p)


class MultiLoRALinear(nn.Module):
    """A frozen Linear plus `slots` LoRA adapters, picked per row by the shared router."""

    def __init__(self, base: nn.Linear, slots: int, rank: int, alpha: float, dropout: float, router: Router):
        super().__init__()
        self.base, self.router, self.scaling = base, router, alpha / rank
        device, dtype = base.weight.device, base.weight.dtype
        # Half-precision bases keep float32 factors (as peft does), cast at use.
        dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        self.lora_A = nn.Parameter(torch.zeros(slots, rank, base.in_features, device=device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(slots, base.out_features, rank, device=device, dtype=dtype))
        self.dropout = dropout
        self.active: tuple[torch.Tensor, torch.Tensor] | None = None
        """While training: leaf copies of the pass's slots; router rows then index into them."""
        self.shared: SharedInput | None = None
        """The group of projections that read this layer's input, if any (their A factors in one matmul)."""

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This forward's A [batch, r, in] and B [batch, out, r], one per row."""
        source_a, source_b = self.active or (self.lora_A, self.lora_B)
        rows = self.router.rows
        if rows is IDENTITY:
            return source_a, source_b
        return source_a.index_select(0, rows), source_b.index_select(0, rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.router.rows is None:
            return out
        a, b = self.factors()
        if a.shape[0] != x.shape[0]:
            raise SealError(f"router has {a.shape[0]} rows for a batch of {x.shape[0]}")
        h = (self.router.dropout(x, self.dropout) if self.training else x).to(a.dtype).reshape(x.shape[0], -1, x.shape[-1])
        if self.shared is not None and not (self.training and self.dropout > 0):
            down = self.shared.down(self, x, h)  # h A^T, computed with the group's other projections
        else:
            down = torch.bmm(h, a.transpose(1, 2))
        if out.dtype == a.dtype:  # out + scaling * (h A^T) B^T in one fused call
            return torch.baddbmm(out.reshape(h.shape[0], h.shape[1], -1), down, b.transpose(1, 2),
                                 alpha=self.scaling).reshape(out.shape)
        delta = torch.bmm(down, b.transpose(1, 2)) * self.scaling
        return out + delta.reshape(out.shape).to(out.dtype)


class SharedInput:
    """Projections called on one input tensor: `h A^T` of all of them in one batched matmul.

    The first member to see an input computes every member's product and keeps the slices for
    the others until each has taken its own; the next input starts over. If a member is called
    with an input the group did not see while slices are still waiting (the model does not
    call them on one tensor), the group stops fusing for good and each layer computes its own.
    """

    def __init__(self, members: list[MultiLoRALinear]):
        self.members = members
        self.enabled = True
        self._key: tuple | None = None
        self._waiting: dict[int, torch.Tensor] = {}

    def down(self, layer: MultiLoRALinear, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        key = (x, self.members[0].active, layer.router.rows)
        if self._waiting and self._key is not None and all(k is c for k, c in zip(key, self._key)):
            part = self._waiting.pop(id(layer), None)
            if part is not None:
                if not self._waiting:
                    self._key = None
                return part
        if self._waiting:  # a new input while another's slices wait: the members do not share inputs
            self.enabled, self._waiting, self._key = False, {}, None
            for member in self.members:
                member.shared = None
        if not self.enabled:
            return torch.bmm(h, layer.factors()[0].transpose(1, 2))
        a = torch.cat([m.factors()[0] for m in self.members], dim=1)  # [batch, r x members, in]
        parts = torch.bmm(h, a.transpose(1, 2)).split([m.lora_A.shape[1] for m in self.members], dim=-1)
        self._waiting = {id(m): p for m, p in zip(self.members, parts) if m is not layer}
        self._key = key if self._waiting else None
        return parts[self.members.index(layer)]


def share_inputs(layers: list[tuple[nn.Module, str, MultiLoRALinear]]) -> int:
    """Group the wrapped projections of each block that read one input (SHARED_INPUTS); the number of groups."""
    by_parent: dict[int, dict[str, MultiLoRALinear]] = {}
    for parent, attr, layer in layers:
        by_parent.setdefault(id(parent), {})[attr] = layer
    groups = 0
    for named in by_parent.values():
        for names in SHARED_INPUTS:
            members = [named[n] for n in names if n in named]
            if len(members) > 1 and len({m.base.in_features for m in members}) == 1:
                group = SharedInput(members)
                for m in members:
                    m.shared = group
                groups += 1
    return groups
