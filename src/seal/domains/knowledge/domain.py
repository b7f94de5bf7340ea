"""The knowledge-incorporation domain as seen by the ReST-EM loop: passages in, rewarded self-edits out.

The reward of a self-edit is the no-context accuracy after its trials (averaged over seeds).
A kept self-edit must beat the passage's baseline: the un-adapted model's accuracy (the paper),
or with `train.baseline: passage-only` the mean over seeds of trials on the passage alone
(`passage-twice`: on two copies of it, so that a self-edit that only repeats the passage is not kept).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from seal.config import RunConfig
from seal.errors import SealError
from seal.domains.knowledge.grading import Grader, make_grader
from seal.domains.knowledge.passages import Passage, save_passages
from seal.domains.knowledge.prompts import self_edit_prompt
from seal.domains.knowledge.quality import copied_share
from seal.domains.knowledge.self_edits import generate_into
from seal.domains.knowledge.sources import load_passages
from seal.domains.knowledge.trials import KnowledgeTrials, check_conditions, ensure_baselines, passages_for, plan_trials
from seal.engines.base import Engine
from seal.loops.inner import run_logged
from seal.models import LoadedModel
from seal.runs import RecordLog


class KnowledgeDomain:
    """Passages from `config.data` (seal.domains.base.Domain)."""

    name = "knowledge"
    selection = "best"

    def __init__(self, grader: Grader | None = None):
        self.grader = grader  # None: the grader named in the config
        self._pool: list[Passage] | None = None

    def check(self, config: RunConfig) -> None:
        check_conditions(replace(config, conditions=baseline_conditions(config) + ["model"]), passages_for(config))

    def draw(self, config: RunConfig, r: int, round_dir: Path) -> list[Passage]:
        """This round's training batch: drawn once with seed (train.seed, r), saved, read back on resume."""
        path = round_dir / "passages.json"
        if path.exists():
            try:
                return load_passages(str(path))
            except SealError:  # an older version's torn write: the draw is seeded, so draw again
                print(f"{path} is unreadable; drawing the round's passages again")
        if self._pool is None:
            self._pool = passages_for(config)
        n = min(config.train.passages_per_round, len(self._pool))
        batch = random.Random(f"rest-em-{config.train.seed}-{r}").sample(self._pool, n)
        save_passages(batch, path)
        return batch

    def prompt(self, passage: Passage, config: RunConfig) -> str:
        return self_edit_prompt(config.sampling.prompt, passage)

    def copied(self, passage: Passage, self_edit: str) -> float | None:
        return copied_share(self_edit, passage.context)

    def sample(self, loaded: LoadedModel, passages: list[Passage], config: RunConfig, round_dir: Path,
               executor=None) -> dict[str, list[str]]:
        return generate_into(round_dir, loaded, passages, config, executor=executor)

    def evaluate(self, loaded: LoadedModel, engine: Engine, passages: list[Passage], self_edits: dict[str, list[str]],
                 config: RunConfig, round_dir: Path, executor=None) -> tuple[dict[str, float], list[dict]]:
        grader = self.grader or make_grader(config, loaded, engine)
        baselines = ensure_baselines(round_dir, engine, passages, config.inner, grader)
        reference_trials = baseline_conditions(config)
        trials = plan_trials(replace(config, conditions=reference_trials + ["model"]), passages, {"model": self_edits})
        records = run_logged(engine, KnowledgeTrials(loaded.tokenizer, config.inner, grader, baselines), trials,
                             RecordLog(round_dir / "trials.jsonl"), executor=executor,
                             input_blocks=config.inner.input_blocks)
        reference = {pid: b["accuracy"] for pid, b in baselines.items()}
        if reference_trials:
            by_passage: dict[str, list[float]] = {}
            for t in records:
                if t["condition"] in reference_trials:
                    by_passage.setdefault(t["passage_id"], []).append(t["accuracy"])
            reference = {pid: sum(v) / len(v) for pid, v in by_passage.items()}
        return reference, [{**t, "item_id": t["passage_id"]} for t in records if t["condition"] == "model"]


def baseline_conditions(config: RunConfig) -> list[str]:
    """The trials a round runs besides its self-edits' to set the bar a kept self-edit must clear."""
    return {"passage-only": ["passage"], "passage-twice": ["passage-twice"]}.get(config.train.baseline, [])
