"""Continued pretraining (CPT): one adapter trained on the self-edits of many passages at once.

    seal cpt --data ../shared/data/squad/eval200_gpt41_self_edits.json --num-passages 200 \\
        --condition passage --condition data --max-self-edits 1

The paper's second knowledge-incorporation setting: instead of a fresh adapter per passage,
one adapter is fine-tuned on the union of every passage's training sequences (the passage,
plus its self-edits for the self-edit conditions) and is then asked every question of every
passage, with no passage in context. One run per condition and seed; the same conditions,
inner-loop settings and grader as `seal adapt`. Departure from the paper: LoRA only (the
paper also reports a full fine-tune).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from seal.adapt import ensure_baselines, make_grader, passages_for, plan_trials, sample_condition, summarise
from seal.config import RunConfig
from seal.inner_loop import adapt_and_answer, attach_lora
from seal.knowledge.prompts import training_sequences
from seal.models import LoadedModel, load_model
from seal.runs import RecordLog


def run_cpt(config: RunConfig, run_dir: Path, loaded: LoadedModel | None = None) -> dict:
    """One adapter per (condition, seed) over all passages; returns the same summary shape as `seal adapt`."""
    passages = passages_for(config)
    loaded = loaded or load_model(config.model)
    generated = {c: sample_condition(c, run_dir, loaded, passages, config)
                 for c in config.conditions if c == "model" or c.startswith("generator:")}
    model = attach_lora(loaded.model, config.inner)
    grader = make_grader(config, loaded, model)
    baselines = ensure_baselines(run_dir, loaded, model, passages, config.inner, grader)
    specs = plan_trials(config, passages, generated)

    log = RecordLog(run_dir / "cpt.jsonl")
    done = {(r["condition"], r["seed"]) for r in log}
    for condition in config.conditions:
        for seed in config.inner.seeds:
            if (condition, seed) in done:
                continue
            sequences = []
            for i, passage in enumerate(passages):
                edits = sorted({s.self_edit_index: s for s in specs if s.condition == condition
                                and s.passage_index == i}.values(), key=lambda s: s.self_edit_index)
                sequences += training_sequences(passage, None, include_passage=config.inner.include_passage)
                for s in edits:
                    if s.self_edit is not None:
                        sequences += training_sequences(passage, s.self_edit, s.family, include_passage=False)
            random.Random(seed).shuffle(sequences)
            print(f"cpt {condition} seed {seed}: {len(sequences)} sequences over {len(passages)} passages")
            start = time.perf_counter()
            stats, graded, eval_s = adapt_and_answer(loaded, model, sequences, passages, seed, config.inner, grader)
            log.append({"condition": condition, "seed": seed, "n_sequences": len(sequences),
                        "train": {"steps": stats.steps, "tokens": stats.tokens, "epoch_losses": stats.epoch_losses},
                        "timings": {"train_s": round(stats.seconds, 2), "eval_s": round(eval_s, 2)},
                        "passages": [{"passage_id": p.id, "accuracy": sum(g["score"] for g in gs) / len(gs),
                                      "answers": gs} for p, gs in zip(passages, graded)],
                        "seconds": round(time.perf_counter() - start, 2)})
    # Reuse the per-passage summary: each (condition, seed) run contributes one "trial" per passage.
    trials = [{"condition": r["condition"], "passage_id": p["passage_id"], "accuracy": p["accuracy"],
               "timings": r["timings"]} for r in log for p in r["passages"]]
    summary = summarise(config, passages, baselines, trials)
    summary["setting"] = "cpt"
    return summary
