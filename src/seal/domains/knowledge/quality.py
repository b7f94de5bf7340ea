"""How faithful and how complete a self-edit is, measured against its passage.

A self-edit's *grounding* is the fraction of its names (capitalised words not at a sentence
start) and numbers that occur in the passage: on fictional passages every name and number is
invented, so one the passage lacks is a hallucinated fact. Its *coverage* is the fraction of
the passage's gold answers it restates (the facts a trial must learn). Used by `seal report`
(self-edit quality per round) and the bench scripts.
"""

from __future__ import annotations

import re

from seal.domains.knowledge.grading import normalize_answer
from seal.domains.knowledge.prompts import split_self_edit

_NAME_OR_NUMBER = re.compile(r"(?<![.!?:]\s)(?<!^)\b([A-Z][a-z]+|\d[\d,]*)\b")


def grounding(self_edit: str, context: str) -> float | None:
    """Fraction of names and numbers in the self-edit that the passage contains (None if it has none).

    >>> grounding("It lies in Sashon, founded 1310 by Zorb.", "Vesu is in Sashon; it dates from 1310.")
    0.6666666666666666
    """
    found = [m.group(1).rstrip(",") for line in self_edit.splitlines() for m in _NAME_OR_NUMBER.finditer(line.strip())]
    if not found:
        return None
    return sum(token in context for token in found) / len(found)


def coverage(self_edit: str, answers: list[str]) -> float:
    """Fraction of gold answers restated in the self-edit.

    >>> coverage("Vesu was founded in 1310.", ["1310", "Sashon"])
    0.5
    """
    text = f" {normalize_answer(self_edit)} "
    return sum(f" {normalize_answer(a)} " in text for a in answers) / len(answers)


def self_edit_quality(records: list[dict], passages: dict) -> dict:
    """Means over the self-edits of `records` (self_edits.jsonl lines) against their passages (by id):
    grounding (over self-edits that name anything), coverage, and training sequences per self-edit."""
    g, c, n = [], [], []
    for record in records:
        passage = passages.get(record["passage_id"])
        if passage is None:
            continue
        for edit in record["self_edits"]:
            value = grounding(edit, passage.context)
            if value is not None:
                g.append(value)
            if passage.questions:
                c.append(coverage(edit, [q.answer for q in passage.questions]))
            n.append(len(split_self_edit(edit, record.get("prompt", "implications"))))
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {"self_edits": len(n), "grounding": mean(g), "coverage": mean(c), "sequences": mean(n)}
