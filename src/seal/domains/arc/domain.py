"""The ARC domain as seen by the ReST-EM loop: tasks in, rewarded recipes out.

The reward of a recipe is 1 when test-time training with it makes the voted answers solve
the task, else 0; the baseline is 0, so the loop keeps only recipes that solved their task, and by
default every one of them (`selection = beats-baseline`: the paper rewards every recipe that solves
its task, its footnote 1, and keeps only a passage's single best in knowledge incorporation). A
recipe that trained nothing (invalid, over budget) earns 0 even when the untrained model happens
to solve the task.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from seal.config import RunConfig
from seal.domains.arc.grids import Task
from seal.domains.arc.recipe import RECIPE_SCHEMA
from seal.domains.arc.trials import ArcTrials, load_tasks, recipe_prompt, untrained_answers
from seal.domains.base import Trial
from seal.engines.base import Engine
from seal.errors import SealError
from seal.generation import sample_into
from seal.loops.inner import run_logged
from seal.models import LoadedModel
from seal.runs import RecordLog, write_atomic


def sample_recipes(loaded: LoadedModel, tasks: list[Task], config: RunConfig, log_path: Path,
                   executor=None) -> dict[str, list[str]]:
    """k recipe self-edits per task, appended batch by batch (a resumed run reuses them); with
    `arc.constrained`, each held to the recipe's JSON schema while it is decoded (seal.structured)."""
    return sample_into(RecordLog(log_path), loaded, tasks, [recipe_prompt(t) for t in tasks], config.sampling,
                       id_field="task_id", max_new_tokens=config.arc.recipe_max_new_tokens, desc="sample recipes",
                       executor=executor, constrained=RECIPE_SCHEMA if config.arc.constrained else None)


class ArcDomain:
    name = "arc"
    selection = "beats-baseline"

    def __init__(self):
        self._pool: list[Task] | None = None

    def _tasks(self, config: RunConfig) -> list[Task]:
        if self._pool is None:
            self._pool = load_tasks(config.arc)
        return self._pool

    def check(self, config: RunConfig) -> None:
        if config.train.baseline != "no-adaptation":
            raise SealError(f"train.baseline {config.train.baseline} is for passages; an ARC recipe's baseline is no adaptation")
        if config.train.max_copy is not None:
            raise SealError("train.max_copy is for passages: a recipe copies nothing")
        self._tasks(config)

    def draw(self, config: RunConfig, r: int, round_dir: Path) -> list[Task]:
        path = round_dir / "tasks.json"
        by_id = {t.id: t for t in self._tasks(config)}
        if path.exists():
            try:
                return [by_id[i] for i in json.loads(path.read_text())]
            except (json.JSONDecodeError, KeyError, TypeError):  # an older version's torn write: draw again
                print(f"{path} is unreadable; drawing the round's tasks again")
        n = min(config.train.passages_per_round, len(by_id))
        ids = random.Random(f"rest-em-{config.train.seed}-{r}").sample(sorted(by_id), n)
        write_atomic(path, json.dumps(ids))
        return [by_id[i] for i in ids]

    def prompt(self, task: Task, config: RunConfig) -> str:
        return recipe_prompt(task)

    def copied(self, task: Task, recipe: str) -> None:
        return None  # a recipe restates nothing of its task

    def sample(self, loaded: LoadedModel, tasks: list[Task], config: RunConfig, round_dir: Path,
               executor=None) -> dict[str, list[str]]:
        return sample_recipes(loaded, tasks, config, round_dir / "self_edits.jsonl", executor)

    def evaluate(self, loaded: LoadedModel, engine: Engine, tasks: list[Task], self_edits: dict[str, list[str]],
                 config: RunConfig, round_dir: Path, executor=None) -> tuple[dict[str, float], list[dict]]:
        log = RecordLog(round_dir / "trials.jsonl")
        trials = [Trial("model", t, i, e, seed, edit) for i, t in enumerate(tasks)
                  for e, edit in enumerate(self_edits[t.id]) for seed in config.inner.seeds]
        records = run_logged(engine, ArcTrials(loaded.tokenizer, config.arc, untrained_answers(log)), trials, log,
                             desc="arc trials", executor=executor, input_blocks=config.inner.input_blocks)
        # Reward 1 only when the recipe's own TTT solved the task: an invalid or over-budget recipe
        # trained nothing, so the untrained model's luck is not its reward.
        return {t.id: 0.0 for t in tasks}, [{**r, "item_id": r["task_id"],
                                             "accuracy": r["accuracy"] if r["status"] == "ok" else 0.0} for r in records]
