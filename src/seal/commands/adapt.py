"""`seal adapt` / `seal eval` / `seal demo`: every condition's trials through one inner loop, and the table.

    seal adapt --data ../shared/data/squad/eval200_gpt41_self_edits.json --num-passages 20 \\
        --condition passage --condition data --max-self-edits 1
    seal eval --condition passage --condition model --train-run runs/<time>-train

Stages, each named and timed: `generate` (self-edits sampled for the `model` and
`generator:` conditions, saved before any trial), `baseline` (the un-adapted model's
answers, once per passage), `trials` (one inner loop per condition x passage x self-edit x
seed, on the configured engine: seal.loops.inner), `report`. Every record lands in the run
directory as soon as it exists; `seal adapt --resume RUN_DIR` skips what is there.

A condition's accuracy is the mean over passages of the passage's mean over its trials,
with the standard error over passages, and its paired change against the reference row.
"""

from __future__ import annotations

import time
from pathlib import Path

from seal.config import RunConfig
from seal.domains.knowledge.grading import make_grader
from seal.domains.knowledge.self_edits import is_sampled, sample_condition
from seal.domains.knowledge.trials import KnowledgeTrials, check_conditions, ensure_baselines, passages_for, plan_trials
from seal.engines import make_engine
from seal.executors import make_executor
from seal.loops.inner import run_logged
from seal.models import LoadedModel, load_model
from seal.report import summarise
from seal.runs import RecordLog


def run_adapt(config: RunConfig, run_dir: Path, loaded: LoadedModel | None = None) -> dict:
    """Run (or resume) every trial of `config` in `run_dir`; return the summary."""
    timings: dict[str, float] = {}
    passages = passages_for(config)
    check_conditions(config, passages)
    loaded = loaded or load_model(config.model)

    start = time.perf_counter()
    generated = {c: sample_condition(c, run_dir, loaded, passages, config)
                 for c in config.conditions if is_sampled(c)}
    if generated:
        timings["generate_s"] = time.perf_counter() - start

    engine = make_engine(loaded, config.inner)
    grader = make_grader(config, loaded, engine)
    trials = plan_trials(config, passages, generated, run_dir)

    start = time.perf_counter()
    baselines = ensure_baselines(run_dir, engine, passages, config.inner, grader)
    timings["baseline_s"] = time.perf_counter() - start

    start = time.perf_counter()
    records = run_logged(engine, KnowledgeTrials(loaded.tokenizer, config.inner, grader, baselines), trials,
                         RecordLog(run_dir / "trials.jsonl"), executor=make_executor(config, engine),
                         input_blocks=config.inner.input_blocks)
    timings["trials_s"] = time.perf_counter() - start

    summary = summarise(config, passages, baselines, records)
    summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
    return summary
