"""Passages with questions: the inputs of the knowledge-incorporation domain.

The shape (`Passage`) and the file layouts; `seal.domains.knowledge.sources.load_passages`
picks the source:

* the grouped SEAL format, a JSON list of
  `{"title", "context", "questions": [{"question", "answer"}], "self_edits"?: [str]}`
  (as in ../shared/data/squad/); stored `self_edits` are kept so that self-edits written
  by another model (e.g. GPT-4.1) can be evaluated;
* the official SQuAD v1.1 JSON (`{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}`),
  first gold answer per question, as the paper grouped it;
* a Hugging Face dataset with SQuAD columns, `hf:NAME[:SPLIT]`, when the user is
  online and has `datasets` installed;
* `fictional`: the embedded generator of invented passages (seal.domains.knowledge.fictional).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from seal.errors import SealError


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    """Other accepted gold answers (SQuAD lists several; a grade is the best over all of them)."""

    @property
    def golds(self) -> tuple[str, ...]:
        return (self.answer, *self.alternatives)


@dataclass(frozen=True)
class Passage:
    title: str
    context: str
    questions: tuple[Question, ...]
    self_edits: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        """A short stable id from the title and text (the same passage gets the same id in every run)."""
        return hashlib.sha1(f"{self.title}\n{self.context}".encode()).hexdigest()[:12]


def read_json(path: Path):
    if not path.is_file():
        raise SealError(f"passage file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SealError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except UnicodeDecodeError:
        raise SealError(f"{path} is not UTF-8 text") from None


def parse_passages(raw, where: str = "input") -> list[Passage]:
    """Parse either the grouped SEAL layout or the official SQuAD v1.1 layout.

    >>> grouped = [{"title": "T", "context": "C.", "questions": [{"question": "Q?", "answer": "A"}]}]
    >>> parse_passages(grouped)[0].questions[0].answer
    'A'
    >>> squad = {"data": [{"title": "T", "paragraphs": [{"context": "C.", "qas": [
    ...     {"question": "Q?", "answers": [{"text": "A", "answer_start": 0}]}]}]}]}
    >>> parse_passages(squad)[0].title
    'T'
    """
    if isinstance(raw, dict) and isinstance(raw.get("data"), list):
        return [_passage_from_squad(article, paragraph, f"{where}: data[{i}].paragraphs[{j}]")
                for i, article in enumerate(raw["data"])
                for j, paragraph in enumerate(_require(article, "paragraphs", list, f"{where}: data[{i}]"))]
    if isinstance(raw, list):
        return [_passage_from_grouped(item, f"{where}: passage {i}") for i, item in enumerate(raw)]
    raise SealError(f"{where}: expected a list of passages or a SQuAD v1.1 object with a 'data' list")


def _require(obj, key: str, kind: type | tuple[type, ...], where: str):
    if not isinstance(obj, dict):
        raise SealError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise SealError(f"{where}: missing {key!r}")
    if not isinstance(obj[key], kind):
        wanted = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
        raise SealError(f"{where}: {key!r} must be a {wanted}, got {type(obj[key]).__name__}")
    return obj[key]


def checked_passage(title: str, context: str, questions: list[Question], self_edits, where: str) -> Passage:
    if not context.strip():
        raise SealError(f"{where}: the passage text is empty")
    if not questions:
        raise SealError(f"{where}: the passage has no questions, so its adaptation cannot be graded")
    for q in questions:
        if not q.question.strip() or not q.answer.strip():
            raise SealError(f"{where}: a question or its gold answer is empty")
    if not isinstance(self_edits, list) or not all(isinstance(s, str) for s in self_edits):
        raise SealError(f"{where}: 'self_edits' must be a list of strings")
    for n, self_edit in enumerate(self_edits):
        if not self_edit.strip():
            raise SealError(f"{where}: self-edit {n} is empty")
    return Passage(title.strip(), context.strip(), tuple(questions), tuple(self_edits))


def _passage_from_grouped(item, where: str) -> Passage:
    title = _require(item, "title", str, where)
    context = _require(item, "context", str, where)
    questions = []
    for k, q in enumerate(_require(item, "questions", list, where)):
        qwhere = f"{where}, question {k}"
        alternatives = q.get("alternatives", []) if isinstance(q, dict) else []
        if not isinstance(alternatives, list) or not all(isinstance(a, str) for a in alternatives):
            raise SealError(f"{qwhere}: 'alternatives' must be a list of strings")
        questions.append(Question(_require(q, "question", str, qwhere), str(_require(q, "answer", (str, int, float), qwhere)),
                                  tuple(alternatives)))
    return checked_passage(title, context, questions, item.get("self_edits", []), where)


def _passage_from_squad(article, paragraph, where: str) -> Passage:
    title = str(article.get("title", "")).replace("_", " ")
    context = _require(paragraph, "context", str, where)
    questions = []
    for k, qa in enumerate(_require(paragraph, "qas", list, where)):
        answers = _require(qa, "answers", list, f"{where}.qas[{k}]")
        if not answers:  # SQuAD 2.0 unanswerable questions have no gold answer to grade against
            continue
        texts = list(dict.fromkeys(_require(a, "text", str, f"{where}.qas[{k}].answers[{n}]")
                                   for n, a in enumerate(answers)))  # every gold answer, as the official script
        questions.append(Question(_require(qa, "question", str, f"{where}.qas[{k}]"), texts[0], tuple(texts[1:])))
    return checked_passage(title, context, questions, [], where)


def save_passages(passages: list[Passage], path: Path) -> None:
    """Write passages in the grouped SEAL layout (with self-edits when they have any)."""
    rows = []
    for p in passages:
        row = {"title": p.title, "context": p.context,
               "questions": [{"question": q.question, "answer": q.answer,
                              **({"alternatives": list(q.alternatives)} if q.alternatives else {})} for q in p.questions]}
        if p.self_edits:
            row["self_edits"] = list(p.self_edits)
        rows.append(row)
    from seal.runs import write_atomic

    write_atomic(path, json.dumps(rows, indent=1, ensure_ascii=False))
