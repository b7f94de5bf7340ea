"""Knowledge-incorporation trials: a passage's self-edit -> training sequences -> no-context QA -> graded.

    domain = KnowledgeTrials(loaded.tokenizer, config.inner, grader, baselines)
    records = run_logged(engine, domain, plan_trials(config, passages, generated), log)   # seal.loops.inner

A trial trains on the self-edit's sequences (one per line, title first, plus the passage:
seal.domains.knowledge.prompts) and answers every question of its passage with no passage
in context; the reward is the share of questions graded right. A self-edit that yields no
training sequence (empty or unparsable) is not trained on and scores 0, so a generator is
never rewarded for writing nothing. `CptTrials` is the continued-pretraining setting: one
job over every passage's sequences, asked every question.

Conditions choose each trial's self-edits: `passage` (none), `passage-twice` (none, the passage's
sequence twice: the control for a self-edit that only repeats it), `data` (stored in the data file;
`data:PATH`: stored in another file holding the same passages, e.g. another model's self-edits),
`model` / `generator:PATH` (sampled into the run), or the path of a `seal generate` run.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

from seal.progress import bar

from seal.config import InnerLoopConfig, RunConfig, SamplingConfig
from seal.domains.base import Prepared, Requests, Trial
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.passages import Passage
from seal.domains.knowledge.prompts import question_prompt, self_edit_prompt, training_sequences
from seal.domains.knowledge.self_edits import condition_family, is_sampled, read_generated, sampled_log_name
from seal.domains.knowledge.sources import load_passages
from seal.engines.base import Engine, Job
from seal.engines.schedule import tokenize_sequences
from seal.errors import SealError
from seal.generation import generate
from seal.runs import RecordLog


def warn(message: str) -> None:
    print(f"seal: warning: {message}", file=sys.stderr)


def passages_for(config: RunConfig) -> list[Passage]:
    d = config.data
    return load_passages(d.source, d.num_passages, d.offset, d.fictional_seed)


def check_conditions(config: RunConfig, passages: list[Passage]) -> None:
    """Fail before any slow stage when a condition cannot be met by these passages."""
    sampled = [c for c in config.conditions if is_sampled(c) and condition_family(c, config.sampling.prompt) == "none"]
    if sampled:
        raise SealError(f"prompt 'none' samples no self-edits, so condition {sampled[0]!r} would run no trial; "
                        "use condition 'passage' for passage-only training")
    clash = [c for c in PASSAGE_ONLY if c in config.conditions]
    if clash and not config.inner.include_passage:
        raise SealError(f"condition {clash[0]!r} trains on the passage alone, and --no-passage (inner.include_passage: "
                        "false) leaves it nothing to train on; drop one of them")
    if config.command == "continual":
        need = config.continual.sequences * config.continual.sequence_length
        if len(passages) < need:
            raise SealError(f"{config.continual.sequences} sequences of {config.continual.sequence_length} passages "
                            f"need {need} passages; the data gives {len(passages)}")
    if "data" in config.conditions:
        for i, passage in enumerate(passages):
            if not passage.self_edits:
                raise SealError(f"condition 'data' needs self_edits in the data file, and passage {i} "
                                f"({passage.title!r}) has none")
    for condition in (c for c in config.conditions if c.startswith("data:")):
        stored = stored_self_edits(condition.removeprefix("data:"))
        for i, passage in enumerate(passages):
            if not stored.get(passage.id):
                raise SealError(f"condition {condition!r}: the file has no self-edits for passage {i} "
                                f"({passage.title!r}; matched by title and text)")


PASSAGE_ONLY = ("passage", "passage-twice")
"""Conditions whose trials train on the passage alone (once, or twice over)."""


def stored_self_edits(path: str) -> dict[str, list[str]]:
    """Self-edits stored in another data file (condition `data:PATH`), by passage id (title and text)."""
    return {p.id: list(p.self_edits) for p in load_passages(path)}


def plan_trials(config: RunConfig, passages: list[Passage], generated: dict[str, dict[str, list[str]]],
                run_dir: Path | None = None) -> list[Trial]:
    """Every trial of the run, in a fixed order (condition, passage, self-edit, seed).

    `generated` maps each sampling condition (`model`, `generator:PATH`) to its self-edits by passage id. With
    `run_dir`, each sampled self-edit is cut into pieces by the family its record names (`prompt`), the one it
    was sampled in: a `generator:` row's family is otherwise read from its ReST-EM run's config, which an
    archived or moved table may no longer reach (seal.archive).
    """
    trials = []
    for condition in config.conditions:
        families: dict[str, str] = {}
        stored: dict[str, list[str]] = {}
        if condition in generated:
            stored = generated[condition]
            log = run_dir / sampled_log_name(condition) if run_dir is not None else None
            if log is not None and log.is_file():
                families = {r["passage_id"]: r["prompt"] for r in RecordLog(log) if r.get("prompt")}
        elif condition.startswith("data:"):
            stored = stored_self_edits(condition.removeprefix("data:"))
        elif condition not in PASSAGE_ONLY + ("data",):
            families, stored = read_generated(condition)
        default_family = condition_family(condition, config.sampling.prompt)
        for i, passage in enumerate(passages):
            if condition in PASSAGE_ONLY:
                edits: list[str | None] = [None]
            elif condition == "data":
                edits = list(passage.self_edits)
            else:
                if passage.id not in stored:
                    raise SealError(f"{condition}: no self-edits for passage {i} ({passage.title!r})")
                edits = list(stored[passage.id])
            if config.max_self_edits is not None:
                edits = edits[: config.max_self_edits]
            family = families.get(passage.id, default_family)
            for e, edit in enumerate(edits):
                for seed in config.inner.seeds:
                    trials.append(Trial(condition, passage, i, e, seed, edit, family))
    return trials


def grade_answers(passage: Passage, answers: list[str], grader: Grader) -> list[dict]:
    scores = grader([q.question for q in passage.questions], [q.golds for q in passage.questions], answers)
    return [{"question": q.question, "gold": q.answer, "answer": a, "score": s}
            for q, a, s in zip(passage.questions, answers, scores)]


def question_requests(passages: list[Passage], inner: InnerLoopConfig) -> Requests:
    return Requests([question_prompt(q.question, p.title, inner.question_prompt) for p in passages for q in p.questions],
                    inner.answer_max_new_tokens)


class KnowledgeTrials:
    """The inner loop's view of passages (seal.domains.base.TrialDomain)."""

    id_field = "passage_id"

    def __init__(self, tokenizer, inner: InnerLoopConfig, grader: Grader, baselines: dict[str, dict] | None = None,
                 sampling: SamplingConfig | None = None):
        self.tokenizer, self.inner, self.grader, self.baselines = tokenizer, inner, grader, baselines or {}
        self.sampling = sampling or SamplingConfig()

    def write_self_edit(self, condition: str, passage: Passage, loaded, seed: int) -> str | None:
        """A continual step's self-edit: sampled from `loaded` (model), the file's first (data), or none (passage)."""
        if condition == "passage":
            return None
        if condition == "data":
            if not passage.self_edits:
                raise SealError(f"condition 'data' needs self_edits in the data file; {passage.title!r} has none")
            return passage.self_edits[0]
        if condition != "model":
            raise SealError(f"continual conditions are model, passage and data, not {condition!r}")
        s = self.sampling
        [[text]] = generate(loaded, [self_edit_prompt(s.prompt, passage)], max_new_tokens=s.max_new_tokens,
                            temperature=s.temperature, top_p=s.top_p, num_return_sequences=1, seed=seed)
        return text

    def prepare(self, trial: Trial) -> Prepared:
        passage: Passage = trial.item
        sequences = training_sequences(passage, trial.self_edit, trial.family, self.inner.include_passage)
        if trial.condition == "passage-twice":
            sequences = training_sequences(passage, None) * 2
        record = {"condition": trial.condition, "passage_id": passage.id, "passage_index": trial.item_index,
                  "title": passage.title, "self_edit_index": trial.self_edit_index, "seed": trial.seed,
                  "self_edit": trial.self_edit, "n_sequences": len(sequences), "status": "ok"}
        if passage.id in self.baselines:
            record["baseline_accuracy"] = self.baselines[passage.id]["accuracy"]
        if not sequences:
            raise SealError(f"passage {trial.item_index} ({passage.title!r}): no training sequence (condition "
                            f"{trial.condition!r} without the passage: inner.include_passage is false)")
        if trial.self_edit is not None and len(sequences) == int(self.inner.include_passage):
            return Prepared(None, {**record, "status": "empty_self_edit", "accuracy": 0.0, "answers": []})
        where = f"{trial.condition} passage {trial.item_index} self-edit {trial.self_edit_index}"
        if len(sequences) > self.inner.max_sequences:
            record["dropped_sequences"] = len(sequences) - self.inner.max_sequences
            warn(f"{where}: {len(sequences)} training sequences, cut to the first {self.inner.max_sequences} "
                 "(inner.max_sequences)")
            sequences = sequences[: self.inner.max_sequences]
            record["n_sequences"] = len(sequences)
        token_ids = tokenize_sequences(self.tokenizer, sequences, self.inner.max_seq_len)
        cut = sum(len(ids) == self.inner.max_seq_len for ids in token_ids)
        if cut:
            record["cut_sequences"] = cut
            warn(f"{where}: {cut} training sequence(s) cut to inner.max_seq_len={self.inner.max_seq_len} tokens")
        return Prepared(Job(token_ids, trial.seed), record)

    def requests(self, trial: Trial) -> Requests:
        return question_requests([trial.item], self.inner)

    def score(self, trial: Trial, answers: list[str]) -> dict:
        graded = grade_answers(trial.item, answers, self.grader)
        return {"accuracy": sum(g["score"] for g in graded) / len(graded), "answers": graded}


@dataclass(frozen=True)
class Corpus:
    """Every passage of a CPT run, with each passage's self-edits for one condition."""

    passages: tuple[Passage, ...]
    self_edits: tuple[tuple[tuple[str, str], ...], ...]
    """Per passage: (family, self-edit) pairs."""

    @property
    def id(self) -> str:
        return "corpus"


class CptTrials:
    """Continued pretraining: one job over every passage's training sequences, asked every question."""

    id_field = "corpus"

    def __init__(self, tokenizer, inner: InnerLoopConfig, grader: Grader):
        self.tokenizer, self.inner, self.grader = tokenizer, inner, grader

    def prepare(self, trial: Trial) -> Prepared:
        corpus: Corpus = trial.item
        sequences = []
        for passage, edits in zip(corpus.passages, corpus.self_edits):
            sequences += training_sequences(passage, None, include_passage=self.inner.include_passage)
            for family, edit in edits:
                sequences += training_sequences(passage, edit, family, include_passage=False)
        if not sequences:
            raise SealError(f"cpt condition {trial.condition!r}: no training sequence")
        random.Random(trial.seed).shuffle(sequences)
        record = {"condition": trial.condition, "corpus": corpus.id, "self_edit_index": 0, "seed": trial.seed,
                  "n_sequences": len(sequences)}
        return Prepared(Job(tokenize_sequences(self.tokenizer, sequences, self.inner.max_seq_len), trial.seed), record)

    def requests(self, trial: Trial) -> Requests:
        return question_requests(list(trial.item.passages), self.inner)

    def score(self, trial: Trial, answers: list[str]) -> dict:
        out, i = [], 0
        for p in trial.item.passages:
            graded = grade_answers(p, answers[i:i + len(p.questions)], self.grader)
            i += len(p.questions)
            out.append({"passage_id": p.id, "accuracy": sum(g["score"] for g in graded) / len(graded), "answers": graded})
        return {"accuracy": sum(p["accuracy"] for p in out) / len(out), "passages": out}


def ensure_baselines(run_dir, engine: Engine, passages: list[Passage], inner: InnerLoopConfig, grader: Grader,
                     chunk: int = 8) -> dict[str, dict]:
    """The un-adapted model's graded answers per passage, computed once and kept in baselines.jsonl.

    Passages are decoded in fixed slices of `chunk`; a slice a kill left half-written is decoded
    again whole (the same batches, so the same answers) and only its missing passages are appended.
    """
    log = RecordLog(run_dir / "baselines.jsonl")
    baselines = {r["passage_id"]: r for r in log}
    slices = [list(range(c, min(c + chunk, len(passages)))) for c in range(0, len(passages), chunk)]
    slices = [s for s in slices if any(passages[i].id not in baselines for i in s)]
    with bar(total=sum(map(len, slices)), desc="baseline", unit="passage", disable=not slices) as progress:
        for part in slices:
            requests = question_requests([passages[i] for i in part], inner)
            flat = engine.answer(requests.prompts, [None] * len(requests.prompts),
                                 max_new_tokens=requests.max_new_tokens, batch_size=inner.answer_batch_size)
            k = 0
            for i in part:
                passage = passages[i]
                answers = flat[k:k + len(passage.questions)]
                k += len(passage.questions)
                if passage.id in baselines:
                    continue
                graded = grade_answers(passage, answers, grader)
                record = {"passage_id": passage.id, "passage_index": i, "title": passage.title, "answers": graded,
                          "accuracy": sum(g["score"] for g in graded) / len(graded)}
                log.append(record)
                baselines[passage.id] = record
            progress.update(len(part))
    return baselines
