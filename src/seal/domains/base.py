"""What the loops know of a domain: a trial's job, its questions, its score; and for ReST-EM, its inputs.

Two domains implement these shapes: knowledge incorporation (`seal.domains.knowledge`:
passages, self-edits of implications, no-context QA) and few-shot learning
(`seal.domains.arc`: ARC tasks, recipe self-edits, augmented and voted answers).

The inner loop (`seal.loops.inner`) needs a `TrialDomain`; the ReST-EM loop
(`seal.loops.rest_em`) a `Domain`. Neither loop imports a domain module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from seal.engines.base import Engine, Job


@dataclass(frozen=True)
class Trial:
    """One inner-loop trial: one input, one self-edit (None: the input alone, or no training), one seed."""

    condition: str
    item: Any
    """A Passage or an ARC Task (anything with an `.id`)."""
    item_index: int
    self_edit_index: int
    seed: int
    self_edit: Any = None
    """The self-edit's text, an ARC Recipe, or None."""
    family: str = "implications"
    """The prompt family that wrote the self-edit (how it is split into training sequences)."""

    @property
    def key(self) -> tuple:
        return (self.condition, self.item.id, self.self_edit_index, self.seed)


@dataclass
class Requests:
    """What a trial's adapter is asked: prompts, a token budget (one, or one per prompt), raw text or chat."""

    prompts: list[str]
    max_new_tokens: int | list[int]
    chat: bool = True
    stop: list[str] | None = None


@dataclass
class Prepared:
    """A trial before training: the job to train (None: nothing to train) and its record so far.

    With `job=None`, `answer_untrained` says whether the untrained model still answers (ARC:
    in-context learning, or a recipe that trains nothing) or the record is already final
    (knowledge: an empty self-edit, scored 0). Untrained trials with the same `shared_key`
    share one decode (they ask the same model the same prompts).
    """

    job: Job | None
    record: dict = field(default_factory=dict)
    answer_untrained: bool = False
    shared_key: str | None = None


class TrialDomain(Protocol):
    """A domain as the inner loop sees it."""

    id_field: str
    """The record field holding the input's id (`passage_id`, `task_id`)."""

    def prepare(self, trial: Trial) -> Prepared:
        """The trial's job (tokenised training data, seed, lr, epochs) and identifying record fields."""

    def requests(self, trial: Trial) -> Requests:
        """What the adapted model is asked, without the input in context."""

    def score(self, trial: Trial, answers: list[str]) -> dict:
        """Record fields from the answers: at least `accuracy`, the trial's reward."""


class ContinualDomain(TrialDomain, Protocol):
    """A domain as the continual-learning loop sees it: trials, and a self-edit written by the current model."""

    def write_self_edit(self, condition: str, item, loaded, seed: int) -> Any:
        """The self-edit a step trains on: sampled from `loaded` (condition model), stored (data), or None."""


def record_key(record: dict, id_field: str) -> tuple:
    """The key of a logged trial record (as `Trial.key`); records of runs before conditions were logged: model.

    >>> record_key({"task_id": "t", "self_edit_index": 0, "seed": 1}, "task_id")
    ('model', 't', 0, 1)
    """
    return (record.get("condition", "model"), record[id_field], record["self_edit_index"], record["seed"])


class Domain(Protocol):
    """A domain as the ReST-EM loop sees it (seal.domains.knowledge.domain, seal.domains.arc.domain)."""

    name: str
    selection: str
    """The paper's E-step rule for the domain when train.selection is not set (its footnote 1): `best` (each
    passage's single best self-edit) for knowledge, `beats-baseline` (every recipe that solves its task) for ARC."""

    def check(self, config) -> None:
        """Fail before any slow stage when the config cannot work for this domain."""

    def draw(self, config, r: int, round_dir: Path) -> list:
        """Round r's training inputs (each with an `.id`), drawn once and saved in round_dir."""

    def prompt(self, item, config) -> str:
        """The instruction that asks for a self-edit of `item` (what the generator is fine-tuned on)."""

    def copied(self, item, self_edit: str) -> float | None:
        """How much of `item` the self-edit repeats, in [0, 1] (None where that means nothing: train.max_copy)."""

    def sample(self, loaded, items: list, config, round_dir: Path, executor=None) -> dict[str, list[str]]:
        """k self-edits per input, saved in round_dir before any trial; sampled where an executor's model is
        (seal.executors: its workers side by side), by default `loaded` in this process."""

    def evaluate(self, loaded, engine: Engine, items: list, self_edits: dict[str, list[str]],
                 config, round_dir: Path, executor=None) -> tuple[dict[str, float], list[dict]]:
        """Baseline per input, and one record per self-edit trial (`item_id`, `self_edit_index`, reward
        `accuracy`), each written to round_dir as it finishes (resumable); the trials run on `executor`
        (seal.executors; None: on `engine` in this process)."""
