"""How faithful and how complete a self-edit is, measured against its passage.

A self-edit's *grounding* is the fraction of its names (capitalised words not at a sentence
start) and numbers that occur in the passage: on fictional passages every name and number is
invented, so one the passage lacks is a hallucinated fact. Its *coverage* is the fraction of
the passage's gold answers it restates (the facts a trial must learn). Its *copied share* is the
fraction of its word 5-grams found in the passage (the ReST-EM E-step's `train.max_copy`). Used by
`seal report` (self-edit quality per round), the E-step and the bench scripts.
"""

from __future__ import annotations

import re
import statistics

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


def copied_share(self_edit: str, context: str, n: int = 5) -> float | None:
    """Share of the self-edit's word n-grams (lower-cased, punctuation dropped) found in the passage (None: too short).

    >>> copied_share("Vesu is a small town in Sashon by the sea.", "Vesu is a small town in Sashon.")
    0.5
    """
    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}

    own = grams(self_edit)
    return len(own & grams(context)) / len(own) if own else None


def self_edit_quality(records: list[dict], passages: dict) -> dict:
    """Means over the self-edits of `records` (self_edits.jsonl lines) against their passages (by id):
    grounding (over self-edits that name anything), coverage, training sequences per self-edit, and the
    copied share (over self-edits of at least 5 words); and the median length in words."""
    g, c, n, k, w = [], [], [], [], []
    for record in records:
        passage = passages.get(record["passage_id"])
        if passage is None:
            continue
        for edit in record["self_edits"]:
            w.append(len(edit.split()))
            value = grounding(edit, passage.context)
            if value is not None:
                g.append(value)
            if passage.questions:
                c.append(coverage(edit, [q.answer for q in passage.questions]))
            n.append(len(split_self_edit(edit, record.get("prompt", "implications"))))
            share = copied_share(edit, passage.context)
            if share is not None:
                k.append(share)
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {"self_edits": len(n), "grounding": mean(g), "coverage": mean(c), "sequences": mean(n), "copied": mean(k),
            "words": statistics.median(w) if w else None}
