"""Inner-loop throughput: the paper's way (a), a competent single-adapter loop (b), the default engine (c).

    .venv/bin/python bench/inner_loop.py                       # 8 passages x 5 GPT-4.1 self-edits x 1 seed
    .venv/bin/python bench/inner_loop.py --passages 4 --self-edits 2 --model PATH --device cuda --dtype bfloat16
    .venv/bin/python bench/inner_loop.py --compile                # (c) with its decoder blocks compiled

All three run in this one process on the same trials (SQuAD passages of the paper's eval200
file with their GPT-4.1 self-edits; LoRA r=32 alpha=64 on all projections, lr 1e-3, 10 epochs,
batch 1, greedy no-context answers graded "gold contained"):

(a) the paper's code path: a new `get_peft_model` per trial, a `transformers.Trainer` per trial
    with every sequence padded to the trial's longest, the passage's baseline re-answered in
    every trial, and one question at a time;
(b) a competent single-adapter loop: the model wrapped once, the adapter reset by copying its
    initial tensors, no padding (batch 1), each trial's questions in one batched decode, the
    baseline once per passage (`inner.engine=single`);
(c) the default engine (`seal.engines.multi_lora`): many trials' adapters trained in shared passes and
    their questions answered in one routed decode.

(a) is fed the same initialisation, data order and gradient clipping as (b) and (c) (its Trainer
reads the sequences in the order they draw; `--max-grad-norm` sets all three, default none,
where Trainer alone would clip at 1.0), so all three should give the same answers; the check
below counts the trials whose accuracy differs. It prints trials/minute, the ratios c/a and
c/b, time per stage, peak resident memory per path, and the model FLOP/s of (c) as a share
of a dense float32 matmul peak measured here (MFU). Model FLOPs: 4 x (matmul parameters)
per trained token (forward, and backward to the activations: the base weights get no
gradient) and 2 x per prompt or generated token; attention score FLOPs are left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import torch

from flops import matmul_peak
from seal.config import InnerLoopConfig, ModelConfig
from seal.generation import greedy_answers
from seal.domains.base import Trial
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.prompts import question_prompt, training_sequences
from seal.domains.knowledge.sources import load_passages
from seal.domains.knowledge.trials import KnowledgeTrials, grade_answers
from seal.engines.multi_lora import MultiLoRAEngine
from seal.engines.peft_single import PeftEngine
from seal.engines.schedule import init_generator, lora_a_init, tokenize_sequences
from seal.loops.inner import run_trials
from seal.models import load_model, format_prompt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "eval200_gpt41_self_edits.json"


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        self.peak, self._stop = self._rss(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def matmul_params(model) -> int:
    """Parameters that take part in a matmul per token: every Linear weight, the output layer included."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def prompt_tokens(loaded, prompts: list[str]) -> int:
    return sum(len(loaded.tokenizer(format_prompt(loaded.tokenizer, p), add_special_tokens=False)["input_ids"])
               for p in prompts)


def answer_tokens(loaded, answers: list[str]) -> int:
    return sum(len(loaded.tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers)


# --- (a) the paper's code path ---------------------------------------------------------------------------

def trial_paper_way(loaded, passage, self_edit, seed, cfg: InnerLoopConfig, grader, stages) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments
    from torch.utils.data import Dataset, SequentialSampler

    t = time.perf_counter()
    model = get_peft_model(loaded.model, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                                    target_modules=list(cfg.target_modules), task_type="CAUSAL_LM"))
    generator = init_generator(seed)  # the same initialisation as (b) and (c), for the accuracy check
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_A" in name:
                param.copy_(lora_a_init(generator, tuple(param.shape)))
    sequences = training_sequences(passage, self_edit, "implications", cfg.include_passage)
    ids = tokenize_sequences(loaded.tokenizer, sequences, cfg.max_seq_len)
    width = max(len(s) for s in ids)
    pad = loaded.tokenizer.pad_token_id
    import random

    order_rng, stream = random.Random(seed), []
    for _ in range(cfg.epochs):  # the order (b) and (c) draw, fed as one pass
        order = list(range(len(ids)))
        order_rng.shuffle(order)
        stream += [ids[i] for i in order]

    class Padded(Dataset):
        def __len__(self):
            return len(stream)

        def __getitem__(self, i):
            s = stream[i]
            return {"input_ids": torch.tensor(s + [pad] * (width - len(s))),
                    "attention_mask": torch.tensor([1] * len(s) + [0] * (width - len(s))),
                    "labels": torch.tensor(s + [-100] * (width - len(s)))}

    class InOrder(Trainer):
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    args = TrainingArguments(output_dir="/tmp/seal-bench-trainer", per_device_train_batch_size=1,
                             num_train_epochs=1, learning_rate=cfg.lr, lr_scheduler_type="linear", warmup_steps=0,
                             weight_decay=0.0, max_grad_norm=cfg.max_grad_norm or 0.0, logging_strategy="no",
                             save_strategy="no", report_to=[],
                             disable_tqdm=True, use_cpu=loaded.device.type == "cpu", seed=seed)
    trainer = InOrder(model=model, args=args, train_dataset=Padded())
    stages["setup"] += time.perf_counter() - t
    t = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t
    stages["train"] += train_s
    model.eval()
    t = time.perf_counter()
    with model.disable_adapter():  # the baseline, again in every trial
        for q in passage.questions:
            greedy_answers(loaded, [question_prompt(q.question, passage.title)], max_new_tokens=cfg.answer_max_new_tokens)
    stages["baseline"] += time.perf_counter() - t
    t = time.perf_counter()
    answers = [greedy_answers(loaded, [question_prompt(q.question, passage.title)],
                              max_new_tokens=cfg.answer_max_new_tokens)[0] for q in passage.questions]
    eval_s = time.perf_counter() - t
    stages["eval"] += eval_s
    loaded.model = model.unload()
    graded = grade_answers(passage, answers, grader)
    return {"accuracy": sum(g["score"] for g in graded) / len(graded), "answers": graded,
            "train": {"steps": len(stream), "tokens": sum(map(len, stream))},
            "timings": {"train_s": train_s, "eval_s": eval_s}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--passages", type=int, default=8)
    ap.add_argument("--self-edits", type=int, default=5)
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--adapters-per-pass", type=int, default=None, help="(c): default all trials at once")
    ap.add_argument("--pass-tokens", type=int, default=4096)
    ap.add_argument("--max-padding", type=float, default=0.2, help="(c): inner.max_padding")
    ap.add_argument("--compile", action="store_true", help="(c) with its model's blocks compiled (inner.compile)")
    ap.add_argument("--max-grad-norm", type=float, default=None, help="gradient clipping for all paths (default none)")
    ap.add_argument("--reference-trials", type=int, default=None,
                    help="(a) and (b) on only this many of the trials, spread evenly (they run one trial at a time, "
                         "so their rate does not depend on how many); default all")
    ap.add_argument("--skip", default="", help="comma-separated paths not to run, e.g. a")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if not Path(args.data).exists():
        raise SystemExit(f"no data at {args.data} (pass --data)")

    passages = load_passages(args.data, num_passages=args.passages)
    trials = [Trial("data", p, i, e, 0, edit) for i, p in enumerate(passages)
              for e, edit in enumerate(p.self_edits[: args.self_edits])]
    n = len(trials)
    stride = max(1, n // args.reference_trials) if args.reference_trials else 1
    ref = list(range(0, n, stride))[: args.reference_trials or n]  # trial indices (a) and (b) run
    mc = ModelConfig(name=args.model, device=args.device, dtype=args.dtype) if args.model else \
        ModelConfig(device=args.device, dtype=args.dtype)
    loaded = load_model(mc)
    cfg = InnerLoopConfig(adapters_per_pass=args.adapters_per_pass or n, pass_tokens=args.pass_tokens,
                          max_padding=args.max_padding, max_grad_norm=args.max_grad_norm)
    grader = Grader("contains")
    n_params = matmul_params(loaded.model)
    peak = matmul_peak(args.device, getattr(torch, args.dtype))
    print(f"{n} trials ({len(passages)} passages x {args.self_edits} self-edits x 1 seed) on {mc.name or 'embedded'} "
          f"{args.dtype} {args.device}, {torch.get_num_threads()} threads; matmul peak {peak / 1e9:.1f} GFLOP/s; "
          f"{n_params / 1e6:.1f} M matmul parameters")

    results, figures = {}, {"trials": n, "matmul_peak_flops": peak, "threads": torch.get_num_threads()}
    skip = set(args.skip.split(","))

    if "a" not in skip:
        stages = dict.fromkeys(("setup", "train", "baseline", "eval"), 0.0)
        with PeakRSS() as mem:
            start = time.perf_counter()
            results["a"] = [trial_paper_way(loaded, trials[i].item, trials[i].self_edit, trials[i].seed, cfg, grader,
                                            stages) for i in ref]
            wall = time.perf_counter() - start
        figures["a"] = {"seconds": wall, "stages": stages, "peak_rss_gb": mem.peak / 2 ** 30}

    if "b" not in skip:
        stages = dict.fromkeys(("setup", "train", "baseline", "eval"), 0.0)
        with PeakRSS() as mem:
            start = time.perf_counter()
            single = PeftEngine(loaded, dataclasses.replace(cfg, engine="single"))
            stages["setup"] = time.perf_counter() - start
            t = time.perf_counter()
            ref_passages = list({id(trials[i].item): trials[i].item for i in ref}.values())
            prompts = [question_prompt(q.question, p.title) for p in ref_passages for q in p.questions]
            single.answer(prompts, [None] * len(prompts), max_new_tokens=cfg.answer_max_new_tokens,
                          batch_size=cfg.answer_batch_size)
            stages["baseline"] = time.perf_counter() - t
            got = dict(run_trials(single, KnowledgeTrials(loaded.tokenizer, cfg, grader), [trials[i] for i in ref],
                                  desc="(b) trials"))
            results["b"] = [got[k] for k in range(len(ref))]
            single.unload()
            wall = time.perf_counter() - start
        stages["train"] = sum(r["timings"]["train_s"] for r in results["b"])
        stages["eval"] = sum(r["timings"]["eval_s"] for r in results["b"])
        figures["b"] = {"seconds": wall, "stages": stages, "peak_rss_gb": mem.peak / 2 ** 30}

    if "c" not in skip:
        stages = dict.fromkeys(("setup", "train", "baseline", "eval"), 0.0)
        with PeakRSS() as mem:
            start = time.perf_counter()
            multi = MultiLoRAEngine(loaded, dataclasses.replace(cfg, compile=args.compile))
            stages["setup"] = time.perf_counter() - start
            t = time.perf_counter()
            prompts = [question_prompt(q.question, p.title) for p in passages for q in p.questions]
            multi.answer(prompts, [None] * len(prompts), max_new_tokens=cfg.answer_max_new_tokens,
                         batch_size=cfg.answer_batch_size)
            stages["baseline"] = time.perf_counter() - t
            got = dict(run_trials(multi, KnowledgeTrials(loaded.tokenizer, cfg, grader), trials, desc="(c) trials"))
            results["c"] = [got[i] for i in range(n)]
            multi.unload()
            wall = time.perf_counter() - start
        stages["train"] = sum(r["timings"]["train_s"] for r in results["c"])
        stages["eval"] = sum(r["timings"]["eval_s"] for r in results["c"])
        figures["c"] = {"seconds": wall, "stages": stages, "peak_rss_gb": mem.peak / 2 ** 30}
        trained = sum(r["train"]["tokens"] for r in results["c"] if r["train"])
        questions = [question_prompt(q.question, t.item.title) for t in trials for q in t.item.questions]
        decoded = prompt_tokens(loaded, questions) + answer_tokens(loaded, [a["answer"] for r in results["c"]
                                                                             for a in r["answers"]])
        baseline_tokens = prompt_tokens(loaded, prompts) + len(prompts) * cfg.answer_max_new_tokens // 2
        flops = 4 * n_params * trained + 2 * n_params * (decoded + baseline_tokens)
        figures["c"].update(trained_tokens=trained, decoded_tokens=decoded, model_flops=flops,
                            train_flops_per_s=4 * n_params * trained / max(stages["train"], 1e-9),
                            mfu=flops / wall / peak, train_mfu=4 * n_params * trained / stages["train"] / peak)

    for k in ("a", "b", "c"):  # trials and trained tokens of each path, for rates
        if k in figures:
            figures[k]["trials"] = len(results[k])
            figures[k]["trained_tokens"] = sum(r["train"]["tokens"] for r in results[k] if r["train"])
            figures[k]["trials_per_min"] = 60 * len(results[k]) / figures[k]["seconds"]
            figures[k]["trained_tokens_per_s"] = figures[k]["trained_tokens"] / figures[k]["seconds"]
    print()
    print("| path | trials | trials/min | trained tok/s (wall) | wall s | setup s | train s | baseline s | eval s | "
          "peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in ("a", "b", "c"):
        if k in figures:
            f = figures[k]
            s = f["stages"]
            print(f"| {k} | {f['trials']} | {f['trials_per_min']:.2f} | {f['trained_tokens_per_s']:.0f} | "
                  f"{f['seconds']:.0f} | {s['setup']:.1f} | {s['train']:.0f} | {s['baseline']:.0f} | {s['eval']:.0f} | "
                  f"{f['peak_rss_gb']:.2f} |")
    for ref_path in ("a", "b"):
        if ref_path in figures and "c" in figures:
            c, r = figures["c"], figures[ref_path]
            figures[f"c/{ref_path}"] = c["trials_per_min"] / r["trials_per_min"]
            figures[f"c/{ref_path}_tokens"] = c["trained_tokens_per_s"] / r["trained_tokens_per_s"]
            print(f"c/{ref_path}: {figures[f'c/{ref_path}']:.2f}x in trials/min, "
                  f"{figures[f'c/{ref_path}_tokens']:.2f}x in trained tokens/s (wall)")
    if "c" in figures:
        c = figures["c"]
        print(f"(c) model FLOPs {c['model_flops'] / 1e12:.2f} T ({c['trained_tokens']} trained tokens, "
              f"{c['decoded_tokens']} decoded); MFU {100 * c['mfu']:.1f} % of the measured matmul peak "
              f"(training stage alone {100 * c['train_mfu']:.1f} %)")
    for ref_path in ("a", "b"):
        if ref_path in results and "c" in results:
            pairs = [(x, results["c"][i]) for x, i in zip(results[ref_path], ref)]
            diffs = [abs(x["accuracy"] - y["accuracy"]) for x, y in pairs]
            same = sum(d == 0 for d in diffs)
            print(f"accuracy check {ref_path} vs c: {same}/{len(pairs)} trials identical, mean |diff| "
                  f"{100 * sum(diffs) / len(pairs):.1f} points; mean accuracy {ref_path} "
                  f"{100 * sum(x['accuracy'] for x, _ in pairs) / len(pairs):.1f} % vs c "
                  f"{100 * sum(y['accuracy'] for _, y in pairs) / len(pairs):.1f} % on the same trials")
            figures[f"agree_{ref_path}_c"] = same / len(pairs)
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
