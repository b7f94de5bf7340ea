"""One ReST-EM round of the paper's shape, stage by stage, three ways, on a model with random weights.

    python bench/round.py                                        # SmolLM2-135M's shape, CPU, float32
    python bench/round.py --shape qwen2.5-7b --device cuda --dtype bfloat16 --trials 64 --reference-trials 4

The paper's round: 50 SQuAD passages x 5 self-edits x 3 seeds = 750 trials (LoRA r=32, alpha 64 on
all projections, lr 1e-3, 10 epochs, batch 1; each trial answers its passage's questions without
the passage), then SFT of the generator on about 50 kept (prompt, self-edit) pairs. The model is
built from the published shape written below with random weights (nothing is downloaded; the
embedded SmolLM2's tokenizer supplies the token ids, which fit either vocabulary), so the answers
mean nothing but every matmul has the real size; a random model rarely ends a sequence, so
sampled and decoded lengths are their budgets (an upper bound on time).

Stages, each measured on a subset and extrapolated linearly to the full round:
  sample  k self-edits for `--sample-passages` passages with transformers `generate` (-> 50 passages);
  trials  (a) the paper's way: a new peft model and an HF Trainer per trial, one adapter at a time
          when answering (bench/inner_loop.py's path) on `--reference-trials` trials;
          (b) a competent single-adapter loop (`--engine single`) on the same trials;
          (c) this project's batched engine (`--engine batched`) on `--trials` trials (-> 750);
  sft     the generator's LoRA SFT (rank 64, 2 epochs) on `--sft-pairs` pairs (-> 50).
Prints per way the extrapolated minutes of each stage and of the round, trials per minute, the
ratios c/a and c/b, the training MFU of (c) against a dense matmul peak measured in the same run,
and peak memory (GPU: torch's peak allocation; CPU: resident set).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from flops import matmul_peak, timed
from inner_loop import PeakRSS, matmul_params, trial_paper_way
from seal.config import InnerLoopConfig, SFTConfig
from seal.domains.base import Trial
from seal.domains.knowledge.fictional import generate_passages
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.prompts import self_edit_prompt
from seal.domains.knowledge.sources import load_passages
from seal.domains.knowledge.trials import KnowledgeTrials
from seal.engines.multi_lora import MultiLoRAEngine
from seal.engines.peft_single import PeftEngine
from seal.generation import generate
from seal.loops.inner import run_trials
from seal.loops.sft import sft_generator
from seal.models import LoadedModel, embedded_model_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "eval200_gpt41_self_edits.json"
ROUND = {"passages": 50, "k": 5, "seeds": 3, "kept_pairs": 50}

SHAPES = {
    # Qwen2.5-7B(-Instruct)'s published config.json
    "qwen2.5-7b": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, vocab_size=152064, max_position_embeddings=32768,
                       rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False),
    # SmolLM2-135M(-Instruct)'s
    "smollm2-135m": dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192,
                         rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True),
    # a 2-layer Llama for the smoke test (tests/test_bench.py): every stage in seconds, on any tokenizer of <= 1,024 ids
    "tiny": dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1024, max_position_embeddings=2048, tie_word_embeddings=True),
}


def random_model(shape: str, device: str, dtype: str, tokenizer_path: str | None = None) -> LoadedModel:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    spec = dict(SHAPES[shape])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or embedded_model_path())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, device=torch.device(device), name=f"random {shape}")


def passages_with_self_edits(n: int):
    if DATA.exists():
        return load_passages(str(DATA), num_passages=n)
    out = []
    for p in generate_passages(n, seed=0):  # no shared data: fictional passages, their facts as self-edits
        out.append(dataclasses.replace(p, self_edits=[f"{i + 1}. {q.question} {q.answer}." for i, q in
                                                       enumerate(p.questions)]))
    return out


class Peak:
    """Peak memory of the block: torch's allocator on a GPU, the resident set on a CPU (GB)."""

    def __init__(self, device: str):
        self.device, self.gb = device, 0.0

    def __enter__(self):
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        else:
            self._rss = PeakRSS().__enter__()
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            self.gb = torch.cuda.max_memory_allocated() / 2 ** 30
        else:
            self._rss.__exit__(*exc)
            self.gb = self._rss.peak / 2 ** 30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-135m")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--trials", type=int, default=16, help="(c): trials measured (passages x self-edits x 1 seed)")
    ap.add_argument("--reference-trials", type=int, default=2, help="(a) and (b): trials measured")
    ap.add_argument("--sample-passages", type=int, default=2)
    ap.add_argument("--sample-tokens", type=int, default=256, help="self-edit budget (a random model uses it all)")
    ap.add_argument("--sft-pairs", type=int, default=4)
    ap.add_argument("--adapters-per-pass", type=int, default=16)
    ap.add_argument("--pass-tokens", type=int, default=8192)
    ap.add_argument("--max-padding", type=float, default=0.2, help="(c): inner.max_padding")
    ap.add_argument("--epochs", type=int, default=10, help="inner-loop epochs (the paper: 10; fewer for a smoke run)")
    ap.add_argument("--tokenizer", default=None, help="a tokenizer directory (default: the embedded SmolLM2's)")
    ap.add_argument("--skip", default="", help="comma-separated ways not to run: a, b")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    loaded = random_model(args.shape, args.device, args.dtype, args.tokenizer)
    n_params = matmul_params(loaded.model)
    peak = matmul_peak(args.device, getattr(torch, args.dtype))
    print(f"random {args.shape} ({n_params / 1e9:.2f} B matmul parameters), {args.dtype} on {args.device}, "
          f"{torch.get_num_threads()} threads; matmul peak {peak / 1e12:.2f} TFLOP/s")
    cfg = InnerLoopConfig(adapters_per_pass=args.adapters_per_pass, pass_tokens=args.pass_tokens, epochs=args.epochs,
                          max_padding=args.max_padding)
    passages = passages_with_self_edits(max(args.trials // ROUND["k"] + 1, args.sample_passages, 2))
    trials = [Trial("data", p, i, e, 0, edit) for i, p in enumerate(passages) for e, edit in
              enumerate(p.self_edits[: ROUND["k"]])][: args.trials]
    ref = trials[:: max(1, len(trials) // args.reference_trials)][: args.reference_trials]
    n_round = ROUND["passages"] * ROUND["k"] * ROUND["seeds"]
    figures: dict = {"shape": args.shape, "device": args.device, "dtype": args.dtype, "matmul_peak": peak,
                     "round_trials": n_round}
    skip = set(args.skip.split(","))
    grader = Grader("contains")

    prompts = [self_edit_prompt("implications", p) for p in passages[: args.sample_passages]]
    _, sample_s = timed(args.device, lambda: generate(loaded, prompts, max_new_tokens=args.sample_tokens,
                                                      temperature=1.0, num_return_sequences=ROUND["k"],
                                                      batch_size=len(prompts)))
    figures["sample_min"] = sample_s * ROUND["passages"] / len(prompts) / 60

    ways = {}
    if "a" not in skip:
        stages = dict.fromkeys(("setup", "train", "baseline", "eval"), 0.0)
        with Peak(args.device) as mem:
            _, seconds = timed(args.device, lambda: [trial_paper_way(loaded, t.item, t.self_edit, t.seed, cfg, grader,
                                                                     stages) for t in ref])
        ways["a"] = {"trials": len(ref), "seconds": seconds, "peak_gb": mem.gb}
    if "b" not in skip:
        with Peak(args.device) as mem:
            single = PeftEngine(loaded, dataclasses.replace(cfg, engine="single"))
            _, seconds = timed(args.device, lambda: list(run_trials(single, KnowledgeTrials(loaded.tokenizer, cfg, grader),
                                                                    ref, desc=None)))
            single.unload()
        ways["b"] = {"trials": len(ref), "seconds": seconds, "peak_gb": mem.gb}
    with Peak(args.device) as mem:
        multi = MultiLoRAEngine(loaded, cfg)
        records, seconds = timed(args.device, lambda: dict(run_trials(multi, KnowledgeTrials(loaded.tokenizer, cfg,
                                                                                                grader), trials, desc=None)))
        figures["fitted_pass_tokens"] = multi.fitted_pass_tokens  # GPU: from free memory (a probe pass)
        multi.unload()
    trained = sum(r["train"]["tokens"] for r in records.values() if r.get("train"))
    train_s = sum(r["timings"]["train_s"] for r in records.values())
    ways["c"] = {"trials": len(trials), "seconds": seconds, "peak_gb": mem.gb, "train_s": train_s,
                 "train_mfu": 4 * n_params * trained / max(train_s, 1e-9) / peak}

    pairs = [(self_edit_prompt("implications", t.item), t.self_edit) for t in trials[: args.sft_pairs]]
    sft_cfg = SFTConfig()
    with Peak(args.device) as mem:
        _, sft_s = timed(args.device, lambda: sft_generator(loaded, pairs, sft_cfg, seed=0))
    figures.update(sft_min=sft_s * ROUND["kept_pairs"] / len(pairs) / 60, sft_peak_gb=mem.gb)

    print(f"\nextrapolated to one round: {ROUND['passages']} passages x {ROUND['k']} self-edits x {ROUND['seeds']} "
          f"seeds = {n_round} trials, SFT on {ROUND['kept_pairs']} pairs\n")
    print("| way | trials measured | s / trial | sample min | trials min | SFT min | round min | trials / min | "
          "peak GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    names = {"a": "(a) paper's way", "b": "(b) single-adapter loop", "c": "(c) batched engine"}
    for key, way in ways.items():
        per_trial = way["seconds"] / way["trials"]
        way["trials_min"] = per_trial * n_round / 60
        way["round_min"] = figures["sample_min"] + way["trials_min"] + figures["sft_min"]
        way["trials_per_min"] = 60 / per_trial
        print(f"| {names[key]} | {way['trials']} | {per_trial:.2f} | {figures['sample_min']:.1f} | "
              f"{way['trials_min']:.1f} | {figures['sft_min']:.1f} | {way['round_min']:.1f} | "
              f"{way['trials_per_min']:.2f} | {way['peak_gb']:.1f} |")
    for ref_key in ("a", "b"):
        if ref_key in ways:
            ratio = ways["c"]["trials_per_min"] / ways[ref_key]["trials_per_min"]
            figures[f"c/{ref_key}"] = ratio
            print(f"c/{ref_key}: {ratio:.2f}x in trials per minute")
    print(f"(c) training MFU {100 * ways['c']['train_mfu']:.1f} % of the measured matmul peak "
          f"({trained} trained tokens in {train_s:.1f} s); SFT peak {figures['sft_peak_gb']:.1f} GB; "
          f"pass size fitted to free memory: {figures['fitted_pass_tokens']} tokens")
    figures["ways"] = ways
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
