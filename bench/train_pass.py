"""Where one batched training pass spends its time, against the same pass without LoRA and the matmul peak.

    .venv/bin/python bench/train_pass.py                                   # SmolLM2-135M, CPU, float32
    .venv/bin/python bench/train_pass.py --model PATH --device cuda --dtype bfloat16 --rows 8,64,256
    .venv/bin/python bench/train_pass.py --compile                         # also the compiled blocks (inner.compile)

For each pass size (rows of one adapter each, `--tokens` tokens per row, the length of a
typical self-edit line), it times the stages of `seal.engines.multi_lora.MultiLoRAEngine`'s pass: copying the
pass's adapters out of their slots (gather), the forward with the loss, the backward, and the
AdamW update (fused, one call per adapter). The reference is the same forward and backward on
the bare model (no adapters, gradients to the input embeddings only, so that the backward
through every layer still runs): the ratio says what the adapters cost. The model FLOP/s of
the pass (4 x matmul parameters per token, as in bench/inner_loop.py) is shown as a share of a
dense matmul peak measured in the same run, and the share of the pass spent in the output
layer's log-softmax (memory-bound: a vocabulary-wide row per target token) is profiled.
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as F

from flops import matmul_peak, timed
from seal.config import InnerLoopConfig, ModelConfig
from seal.models import load_model
from seal.engines.compiled import CompiledBlocks
from seal.engines.multi_lora import MultiLoRAEngine
from seal.engines.schedule import target_losses


def lora_pass(multi: MultiLoRAEngine, model, ids, mask, device, compiled: CompiledBlocks | None = None) -> dict[str, float]:
    slots = torch.arange(ids.shape[0], device=ids.device)
    out = {}

    _, out["gather"] = timed(device, lambda: multi.activate(slots))
    with multi.route(None), (compiled.active() if compiled else contextlib.nullcontext()):
        (losses, _), out["forward"] = timed(device, lambda: target_losses(model, ids, mask, ids))
    _, out["backward"] = timed(device, lambda: losses.sum().backward())
    lrs = torch.full((ids.shape[0],), 1e-3, dtype=torch.float64)
    _, out["adamw"] = timed(device, lambda: multi._adamw_step(slots, lrs))
    for _, _, layer in multi.layers:
        layer.active = None
    return out


def bare_pass(model, ids, mask, device) -> dict[str, float]:
    embed = model.get_input_embeddings()
    backbone = getattr(model, model.base_model_prefix)

    def forward():
        x = embed(ids).detach().requires_grad_()
        hidden = backbone(inputs_embeds=x, attention_mask=mask).last_hidden_state[:, :-1]
        logits = model.get_output_embeddings()(hidden.reshape(-1, hidden.shape[-1]))
        return F.cross_entropy(logits.float(), ids[:, 1:].reshape(-1))

    loss, fwd = timed(device, forward)
    _, bwd = timed(device, loss.backward)
    return {"forward": fwd, "backward": bwd}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--rows", default="1,8,32", help="pass sizes: rows (adapters) per pass")
    ap.add_argument("--tokens", type=int, default=40, help="tokens per row")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per size, after 2 warm-up passes")
    ap.add_argument("--compile", action="store_true",
                    help="also time the pass with the model's blocks compiled (inner.compile; separate A)")
    args = ap.parse_args()

    mc = ModelConfig(device=args.device, dtype=args.dtype, **({"name": args.model} if args.model else {}))
    loaded = load_model(mc)
    model, device = loaded.model, args.device
    n_params = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    peak = matmul_peak(device, getattr(torch, args.dtype))
    sizes = [int(r) for r in args.rows.split(",")]
    print(f"{mc.name} {args.dtype} {device}, {torch.get_num_threads()} threads; matmul peak {peak / 1e9:.1f} "
          f"GFLOP/s; {n_params / 1e6:.1f} M matmul parameters; {args.tokens} tokens per row")
    vocab = model.get_output_embeddings().weight.shape[0]
    compiled = CompiledBlocks(model) if args.compile else None  # one compiled graph for every size (dynamic shapes)
    for rows in sizes:
        ids = torch.randint(0, vocab, (rows, args.tokens), device=model.device)
        mask = torch.ones_like(ids)
        multi = MultiLoRAEngine(loaded, InnerLoopConfig(), slots=max(sizes), fuse=True)
        groups = {id(layer): layer.shared for _, _, layer in multi.layers}

        def layout(fuse: bool) -> None:  # each projection's A alone, or q/k/v and gate/up in one matmul
            for _, _, layer in multi.layers:
                layer.shared = groups[id(layer)] if fuse else None

        variants = ["separate A", "fused A"] + (["compiled"] if args.compile else [])
        runs = {v: [] for v in variants}
        for repeat in range(args.repeats + 2):  # alternated, so that drift in the machine hits all alike
            for variant in variants:
                layout(variant == "fused A")
                timing = lora_pass(multi, model, ids, mask, device, compiled if variant == "compiled" else None)
                if repeat >= 2:  # two warm-up passes each (the first compiled one compiles)
                    runs[variant].append(timing)
                elif variant == "compiled" and repeat == 0:
                    print(f"rows {rows:4d}: compiling and the first compiled pass took {sum(timing.values()):.1f} s",
                          flush=True)
        with_lora = {v: {k: min(r[k] for r in rs) for k in rs[0]} for v, rs in runs.items()}
        with multi.disable_adapter():
            bare_runs = [bare_pass(model, ids, mask, device) for _ in range(args.repeats + 1)][1:]
        multi.unload()
        bare_total = sum(min(r[k] for r in bare_runs) for k in bare_runs[0])
        tokens = rows * args.tokens
        for variant, lora in with_lora.items():
            total = sum(lora.values())
            print(f"rows {rows:4d} {variant:10s}: pass {total:.3f} s = gather "
                  f"{lora['gather']:.3f} + forward {lora['forward']:.3f} + backward {lora['backward']:.3f} + adamw "
                  f"{lora['adamw']:.3f}; without LoRA {bare_total:.3f} s (ratio {total / bare_total:.2f}); "
                  f"{tokens / total:.0f} tokens/s; model FLOP/s {100 * 4 * n_params * tokens / total / peak:.1f} % "
                  f"of peak (without LoRA {100 * 4 * n_params * tokens / bare_total / peak:.1f} %)", flush=True)
        separate, fused = (sum(with_lora[v].values()) for v in ("separate A", "fused A"))
        print(f"rows {rows:4d}: fused / separate A: {separate / fused:.2f}x", flush=True)
        if args.compile:
            print(f"rows {rows:4d}: compiled / eager speed (separate A): {separate / sum(with_lora['compiled'].values()):.2f}x",
                  flush=True)

    multi = MultiLoRAEngine(loaded, InnerLoopConfig(), slots=max(sizes))
    rows = sizes[-1]
    ids = torch.randint(0, vocab, (rows, args.tokens), device=model.device)
    mask = torch.ones_like(ids)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        lora_pass(multi, model, ids, mask, device)
    by_op = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    all_ops = sum(by_op.values())
    shares = sorted(by_op.items(), key=lambda kv: -kv[1])[:8]
    print(f"profile of one {rows}-row pass (self CPU time by op): " +
          ", ".join(f"{k} {100 * v / all_ops:.1f} %" for k, v in shares))


if __name__ == "__main__":
    main()
