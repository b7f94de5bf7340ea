"""`seal adapt`: run inner-loop trials for each condition and report baseline vs adapted accuracy.

    seal adapt --data ../shared/data/squad/eval200_gpt41_self_edits.json --num-passages 20 \\
        --condition passage --condition data --max-self-edits 1

Stages, each named and timed: `generate` (self-edits sampled from the model, for the
`model` condition, saved before any trial), `baseline` (the un-adapted model's answers,
once per passage), `trials` (one inner loop per condition x passage x self-edit x
seed), `report`. Every record lands in the run directory as soon as it exists; `seal
adapt --resume RUN_DIR` skips what is there and runs the rest.

Accuracy of a condition is the mean over passages of the passage's mean over its trials
(self-edits x seeds), with the standard error over passages.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from seal.config import RunConfig
from seal.errors import SealError
from seal.inner_loop import attach_adapters, baseline_answers, run_trial, run_trials_batched
from seal.knowledge.grading import EndpointJudge, Grader, LocalJudge
from seal.knowledge.passages import Passage, load_passages
from seal.models import LoadedModel, load_model
from seal.runs import RecordLog
from seal.self_edits import generate_into, read_generated


@dataclass(frozen=True)
class TrialSpec:
    condition: str
    passage_index: int
    self_edit_index: int
    seed: int
    self_edit: str | None
    family: str

    def key(self, passage_id: str) -> tuple:
        return (self.condition, passage_id, self.self_edit_index, self.seed)


def passages_for(config: RunConfig) -> list[Passage]:
    d = config.data
    return load_passages(d.source, d.num_passages, d.offset, d.fictional_seed)


def check_conditions(config: RunConfig, passages: list[Passage]) -> None:
    """Fail before any slow stage when a condition cannot be met by these passages."""
    sampled = [c for c in config.conditions if c == "model" or c.startswith("generator:")]
    if sampled and config.sampling.prompt == "none":
        raise SealError(f"prompt 'none' samples no self-edits, so condition {sampled[0]!r} would run no trial; "
                        "use condition 'passage' for passage-only training")
    if "data" in config.conditions:
        for i, passage in enumerate(passages):
            if not passage.self_edits:
                raise SealError(f"condition 'data' needs self_edits in the data file, and passage {i} "
                                f"({passage.title!r}) has none")


def make_grader(config: RunConfig, loaded: LoadedModel, adapted=None) -> Grader:
    """The configured grader; a local judge on the model being adapted judges with its adapter off."""
    inner = config.inner
    if inner.grader != "judge":
        return Grader(inner.grader)
    if inner.judge_url:
        return Grader("judge", EndpointJudge(inner.judge_model, inner.judge_url))
    if inner.judge_model == "local":
        return Grader("judge", LocalJudge(loaded, adapted))
    from seal.config import ModelConfig

    return Grader("judge", LocalJudge(load_model(ModelConfig(name=inner.judge_model, device=config.model.device))))


def plan_trials(config: RunConfig, passages: list[Passage], generated: dict[str, dict[str, list[str]]]) -> list[TrialSpec]:
    """Every trial of the run, in a fixed order (condition, passage, self-edit, seed).

    `generated` maps each sampling condition (`model`, `generator:PATH`) to its self-edits by passage id.
    """
    specs = []
    for condition in config.conditions:
        family = config.sampling.prompt
        stored: dict[str, list[str]] = {}
        if condition in generated:
            stored = generated[condition]
        elif condition not in ("passage", "data"):
            family, stored = read_generated(condition)
        for i, passage in enumerate(passages):
            if condition == "passage":
                edits: list[str | None] = [None]
            elif condition == "data":
                edits = list(passage.self_edits)
            else:
                if passage.id not in stored:
                    raise SealError(f"{condition}: no self-edits for passage {i} ({passage.title!r})")
                edits = list(stored[passage.id])
            if config.max_self_edits is not None:
                edits = edits[: config.max_self_edits]
            for e, edit in enumerate(edits):
                for seed in config.inner.seeds:
                    specs.append(TrialSpec(condition, i, e, seed, edit, family))
    return specs


def run_adapt(config: RunConfig, run_dir: Path, loaded: LoadedModel | None = None) -> dict:
    """Run (or resume) every trial of `config` in `run_dir`; return the summary."""
    timings: dict[str, float] = {}
    passages = passages_for(config)
    check_conditions(config, passages)
    loaded = loaded or load_model(config.model)

    start = time.perf_counter()
    generated = {c: sample_condition(c, run_dir, loaded, passages, config)
                 for c in config.conditions if c == "model" or c.startswith("generator:")}
    if generated:
        timings["generate_s"] = time.perf_counter() - start

    model = attach_adapters(loaded.model, config.inner)
    grader = make_grader(config, loaded, model)
    specs = plan_trials(config, passages, generated)

    start = time.perf_counter()
    baselines = ensure_baselines(run_dir, loaded, model, passages, config.inner, grader)
    timings["baseline_s"] = time.perf_counter() - start

    start = time.perf_counter()
    trials = run_trials(run_dir, loaded, model, passages, specs, config.inner, grader, baselines)
    timings["trials_s"] = time.perf_counter() - start

    summary = summarise(config, passages, baselines, trials)
    summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
    return summary


def sample_condition(condition: str, run_dir: Path, loaded: LoadedModel, passages: list[Passage],
                     config: RunConfig) -> dict[str, list[str]]:
    """Self-edits for a sampling condition: `model` (the adapted model itself) or `generator:PATH`."""
    if condition == "model":
        return generate_into(run_dir, loaded, passages, config)
    path = condition.removeprefix("generator:")
    label = "".join(ch if ch.isalnum() else "-" for ch in path).strip("-")[-60:]
    log_name = f"self_edits-{label}.jsonl"
    done = {r["passage_id"]: r["self_edits"] for r in RecordLog(run_dir / log_name)}
    if all(p.id in done for p in passages):  # a resumed run: do not load the generator again
        return done
    from dataclasses import replace

    generator = load_model(replace(config.model, name=path))
    try:
        return generate_into(run_dir, generator, passages, config, log_name)
    finally:
        del generator


def ensure_baselines(run_dir: Path, loaded: LoadedModel, model, passages: list[Passage], inner, grader: Grader) -> dict[str, dict]:
    """The un-adapted model's graded answers per passage, computed once and kept in baselines.jsonl."""
    log = RecordLog(run_dir / "baselines.jsonl")
    baselines = {r["passage_id"]: r for r in log}
    for i, passage in enumerate(tqdm(passages, desc="baseline", unit="passage")):
        if passage.id not in baselines:
            graded = baseline_answers(loaded, model, passage, inner, grader)
            record = {"passage_id": passage.id, "passage_index": i, "title": passage.title, "answers": graded,
                      "accuracy": sum(g["score"] for g in graded) / len(graded)}
            log.append(record)
            baselines[passage.id] = record
    return baselines


def run_trials(run_dir: Path, loaded: LoadedModel, model, passages: list[Passage], specs: list[TrialSpec],
               inner, grader: Grader, baselines: dict[str, dict]) -> list[dict]:
    """Run every planned trial not yet in trials.jsonl; return all the run's trial records."""
    log = RecordLog(run_dir / "trials.jsonl")
    done = {(r["condition"], r["passage_id"], r["self_edit_index"], r["seed"]) for r in log}
    todo = [s for s in specs if s.key(passages[s.passage_index].id) not in done]
    if len(todo) < len(specs):
        print(f"resume: {len(specs) - len(todo)} of {len(specs)} trials already in {run_dir}")

    def save(spec: TrialSpec, record: dict) -> None:
        passage = passages[spec.passage_index]
        record.update(condition=spec.condition, passage_id=passage.id, passage_index=spec.passage_index,
                      title=passage.title, self_edit_index=spec.self_edit_index,
                      baseline_accuracy=baselines[passage.id]["accuracy"])
        log.append(record)

    if hasattr(model, "greedy_answers"):  # a MultiLoRA: many trials per pass
        trials = [(passages[s.passage_index], s.self_edit, s.seed, s.family) for s in todo]
        for t, record in run_trials_batched(loaded, model, trials, inner, grader):
            save(todo[t], record)
        return list(log)
    progress = tqdm(todo, desc="trials", unit="trial")
    for spec in progress:
        progress.set_postfix_str(f"{spec.condition[:20]} p{spec.passage_index} e{spec.self_edit_index} s{spec.seed}")
        save(spec, run_trial(loaded, model, passages[spec.passage_index], spec.self_edit, spec.seed, inner, grader,
                             spec.family))
    return list(log)


def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean.

    >>> mean_and_stderr([0.0, 1.0, 0.5, 0.5])
    (0.5, 0.2041241452319315)
    >>> mean_and_stderr([0.25])
    (0.25, 0.0)
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def summarise(config: RunConfig, passages: list[Passage], baselines: dict[str, dict], trials: list[dict]) -> dict:
    """Per-condition and per-passage accuracies (trials averaged within a passage first)."""
    rows = {"baseline": {p.id: [baselines[p.id]["accuracy"]] for p in passages if p.id in baselines}}
    seconds: dict[str, list[float]] = {}
    for t in trials:
        rows.setdefault(t["condition"], {}).setdefault(t["passage_id"], []).append(t["accuracy"])
        seconds.setdefault(t["condition"], []).append(t["timings"]["train_s"] + t["timings"]["eval_s"])
    conditions = {}
    for name, per_passage in rows.items():
        means = [sum(v) / len(v) for v in per_passage.values()]
        mean, stderr = mean_and_stderr(means) if means else (float("nan"), float("nan"))
        conditions[name] = {"accuracy": mean, "stderr": stderr, "passages": len(means),
                            "trials": sum(len(v) for v in per_passage.values()),
                            "seconds_per_trial": (sum(seconds[name]) / len(seconds[name])) if name in seconds else None}
    per_passage = [{"index": i, "title": p.title, "questions": len(p.questions),
                    **{name: (sum(v[p.id]) / len(v[p.id]) if p.id in v else None) for name, v in rows.items()}}
                   for i, p in enumerate(passages)]
    return {"grader": config.inner.grader, "conditions": conditions, "per_passage": per_passage}


def report_markdown(summary: dict, title: str) -> str:
    names = list(summary["conditions"])
    lines = [f"# {title}", "", f"Grader: `{summary['grader']}`. Accuracy: mean over passages of no-context "
             "accuracy on each passage's questions (± standard error over passages).", "",
             "| condition | accuracy | ± s.e. | passages | trials | s / trial |", "|---|---|---|---|---|---|"]
    for name, c in summary["conditions"].items():
        spt = f"{c['seconds_per_trial']:.1f}" if c["seconds_per_trial"] is not None else "-"
        lines.append(f"| {name} | {100 * c['accuracy']:.1f} % | {100 * c['stderr']:.1f} | {c['passages']} | {c['trials']} | {spt} |")
    lines += ["", "| # | passage | questions | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for row in summary["per_passage"]:
        cells = [f"{100 * row[n]:.0f} %" if row.get(n) is not None else "-" for n in names]
        lines.append(f"| {row['index']} | {row['title'][:40]} | {row['questions']} | " + " | ".join(cells) + " |")
    if summary.get("timings"):
        lines += ["", "Stage times: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings"].items())]
    return "\n".join(lines) + "\n"
