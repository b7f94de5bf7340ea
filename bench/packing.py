"""Would packing rows without padding make the batched engine's training passes faster?

    .venv/bin/python bench/packing.py                                     # SmolLM2-135M, CPU, float32
    .venv/bin/python bench/packing.py --model PATH --device cuda --dtype bfloat16

The batched engine pads the rows of a pass to the pass's longest and cuts a pass where the next
row is more than 20 % shorter (`seal.engines.schedule.plan_passes`), so one step of 16 trials whose
rows are a passage (~200-300 tokens) and self-edit lines (~10-60) runs as several small passes.
Packing would put all of them in one pass: rows laid end to end in bins of at most `--bins`
tokens, positions restarting at each row, so that attention stays within a row (transformers
builds that block-diagonal mask from the position ids when no attention mask is given, from
4.53 on). This times the forward and backward of the bare model (gradients to the input
embeddings, so that the backward runs through every layer; the adapters' cost scales with the
same tokens) over one such step's rows, each way, alternated in one run:

- the engine's rule (padded passes, cut at 20 % padding), the reference;
- one padded pass of every row;
- packed bins of at most C tokens for each C of `--bins` (0: one bin of every row).

It also checks that a packed pass gives each row the loss it gets alone (max difference printed).
The engine does not pack: on the project's 2-core CPU packed bins ran these rows at 0.72-0.87x
the speed of the engine's padded passes (the masked attention over a whole bin costs more than
the padding it saves; docs/inner-loop.md). On a GPU, where small passes leave it idle, it is open.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from flops import matmul_peak, timed
from seal.config import ModelConfig
from seal.engines.schedule import plan_passes
from seal.models import load_model

LENGTHS = [305, 200, 180, 60, 45, 40, 38, 35, 35, 30, 28, 25, 22, 20, 15, 12]
"""One step of 16 knowledge trials: three on their passage row, the rest on self-edit lines (tokens)."""


def bins_of(lengths: list[int], capacity: int) -> list[list[int]]:
    """Rows (indices) packed first-fit, longest first, into bins of at most `capacity` tokens (0: one bin)."""
    capacity = capacity or sum(lengths)
    bins: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for b in bins:
            if sum(lengths[j] for j in b) + lengths[i] <= max(capacity, lengths[i]):
                b.append(i)
                break
        else:
            bins.append([i])
    return bins


def row_losses(model, ids, mask=None, positions=None, starts=None) -> torch.Tensor:
    """Forward (and graph for backward) of the bare model: each token's next-token loss, [rows, width - 1].

    `starts` (packed): positions where a row begins, whose previous token predicts nothing of its row."""
    embed = model.get_input_embeddings()
    x = embed(ids).detach().requires_grad_()
    hidden = getattr(model, model.base_model_prefix)(inputs_embeds=x, attention_mask=mask, position_ids=positions,
                                                     use_cache=False).last_hidden_state[:, :-1]
    logits = model.get_output_embeddings()(hidden)
    losses = F.cross_entropy(logits.float().transpose(1, 2), ids[:, 1:], reduction="none")
    keep = torch.ones_like(losses, dtype=torch.bool) if mask is None else mask[:, 1:].bool()
    if starts is not None:
        keep &= ~starts[:, 1:]
    return losses * keep


def padded(model, seqs, groups, device):
    out = []
    for group in groups:
        width = max(len(seqs[i]) for i in group)
        ids = torch.zeros(len(group), width, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(group):
            ids[r, :len(seqs[i])], mask[r, :len(seqs[i])] = seqs[i], 1
        losses = row_losses(model, ids, mask)
        losses.sum().backward()
        out += [(i, losses[r, :len(seqs[i]) - 1].detach()) for r, i in enumerate(group)]
    return dict(out)


def packed(model, seqs, bins, device):
    width = max(sum(len(seqs[i]) for i in b) for b in bins)
    ids = torch.zeros(len(bins), width, dtype=torch.long, device=device)
    positions, starts, where = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool), {}
    for r, b in enumerate(bins):
        offset = 0
        for i in b:
            n = len(seqs[i])
            ids[r, offset:offset + n] = seqs[i]
            positions[r, offset:offset + n] = torch.arange(n, device=device)
            starts[r, offset] = True
            where[i] = (r, offset, n)
            offset += n
        positions[r, offset:] = torch.arange(width - offset, device=device)  # the tail: a row of its own
        starts[r, offset:] = True  # and no loss
    losses = row_losses(model, ids, positions=positions, starts=starts)
    losses.sum().backward()
    return {i: losses[r, o:o + n - 1].detach() for i, (r, o, n) in where.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="the step's row lengths in tokens")
    ap.add_argument("--bins", default="320,512,0", help="packed bin capacities in tokens (0: one bin)")
    ap.add_argument("--pass-tokens", type=int, default=2048, help="the engine's pass cap (inner.pass_tokens)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds after one warm-up round")
    args = ap.parse_args()

    model = load_model(ModelConfig(device=args.device, dtype=args.dtype,
                                   **({"name": args.model} if args.model else {}))).model
    model.train()
    for p in model.parameters():
        p.requires_grad_(False)
    device = args.device
    lengths = [int(n) for n in args.lengths.split(",")]
    vocab = model.get_output_embeddings().weight.shape[0]
    generator = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, vocab, (n,), generator=generator).to(device) for n in lengths]
    n_params = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    peak = matmul_peak(device, getattr(torch, args.dtype))
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rule = plan_passes(order, dict(enumerate(lengths)), {i: 1 for i in order}, args.pass_tokens)
    variants = {"engine rule (padded)": lambda: padded(model, seqs, rule, device),
                "one padded pass": lambda: padded(model, seqs, [order], device)}
    for capacity in (int(c) for c in args.bins.split(",")):
        bins = bins_of(lengths, capacity)
        variants[f"packed, bins <= {capacity or 'all'}"] = (lambda bins=bins: packed(model, seqs, bins, device))
    print(f"{args.model or 'SmolLM2-135M-Instruct'} {args.dtype} {device}, {torch.get_num_threads()} threads; "
          f"matmul peak {peak / 1e9:.1f} GFLOP/s; {len(lengths)} rows, {sum(lengths)} tokens; engine passes: "
          + " | ".join(",".join(str(lengths[i]) for i in p) for p in rule), flush=True)
    times: dict[str, list[float]] = {v: [] for v in variants}
    reference = None
    for repeat in range(args.repeats + 1):  # alternated, so that drift in the machine hits all alike
        for name, run in variants.items():
            losses, seconds = timed(device, run)
            if repeat:
                times[name].append(seconds)
            if reference is None:
                reference = losses
            elif repeat == 0:
                diff = max((losses[i] - reference[i]).abs().max().item() for i in reference)
                print(f"{name}: max |loss - engine rule's| over every token {diff:.2e}", flush=True)
    base = min(times["engine rule (padded)"])
    for name, ts in times.items():
        best = min(ts)
        print(f"{name:24s}: {best:7.3f} s  {sum(lengths) / best:7.0f} tokens/s  speed vs the engine rule "
              f"{base / best:.2f}x  MFU {100 * 4 * n_params * sum(lengths) / best / peak:.1f} %", flush=True)


if __name__ == "__main__":
    main()
