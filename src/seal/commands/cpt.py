"""`seal cpt`, continued pretraining: one adapter trained on the self-edits of many passages at once.

    seal cpt --data ../shared/data/squad/eval200_gpt41_self_edits.json --num-passages 200 \\
        --condition passage --condition data --max-self-edits 1

The paper's second knowledge-incorporation setting: instead of a fresh adapter per passage,
one adapter is fine-tuned on the union of every passage's training sequences (the passage,
plus its self-edits for the self-edit conditions) and is then asked every question of every
passage, with no passage in context. One job per condition and seed, on the configured
engine (the batched engine trains several at once); the same conditions, inner-loop settings
and grader as `seal adapt`. Departure from the paper: LoRA only (the paper also reports a
full fine-tune).
"""

from __future__ import annotations

from pathlib import Path

from seal.config import RunConfig
from seal.domains.base import Trial
from seal.domains.knowledge.grading import make_grader
from seal.domains.knowledge.self_edits import is_sampled, sample_condition
from seal.domains.knowledge.trials import Corpus, CptTrials, ensure_baselines, passages_for, plan_trials
from seal.engines import make_engine
from seal.executors import make_executor
from seal.loops.inner import run_logged
from seal.models import LoadedModel, load_model
from seal.report import summarise
from seal.runs import RecordLog


def run_cpt(config: RunConfig, run_dir: Path, loaded: LoadedModel | None = None) -> dict:
    """One adapter per (condition, seed) over all passages; returns the same summary shape as `seal adapt`."""
    passages = passages_for(config)
    loaded = loaded or load_model(config.model)
    generated = {c: sample_condition(c, run_dir, loaded, passages, config)
                 for c in config.conditions if is_sampled(c)}
    engine = make_engine(loaded, config.inner)
    grader = make_grader(config, loaded, engine)
    baselines = ensure_baselines(run_dir, engine, passages, config.inner, grader)
    per_passage = plan_trials(config, passages, generated, run_dir)
    trials = []
    for condition in config.conditions:
        edits = tuple(tuple((t.family, t.self_edit) for t in per_passage if t.condition == condition
                            and t.item_index == i and t.self_edit is not None and t.seed == config.inner.seeds[0])
                      for i in range(len(passages)))
        corpus = Corpus(tuple(passages), edits)
        trials += [Trial(condition, corpus, 0, 0, seed) for seed in config.inner.seeds]
    records = run_logged(engine, CptTrials(loaded.tokenizer, config.inner, grader), trials,
                         RecordLog(run_dir / "cpt.jsonl"), desc="cpt", executor=make_executor(config, engine))
    # Reuse the per-passage summary: each (condition, seed) run contributes one "trial" per passage.
    per_trial = [{"condition": r["condition"], "passage_id": p["passage_id"], "accuracy": p["accuracy"],
                  "timings": r["timings"]} for r in records for p in r["passages"]]
    summary = summarise(config, passages, baselines, per_trial)
    summary["setting"] = "cpt"
    return summary
