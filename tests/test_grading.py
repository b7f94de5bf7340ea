"""Graders' edge cases (their doctests cover the ordinary ones)."""

from __future__ import annotations

import pytest

from seal.errors import SealError
from seal.domains.knowledge.grading import (Grader, contains, exact_match, judge_prompt, normalize_answer, parse_verdict,
                                    token_f1)


@pytest.mark.parametrize("prediction, gold, em, f1, cont", [
    ("Paris", "paris", 1.0, 1.0, 1.0),
    ("The answer is Paris.", "Paris", 0.0, 0.5, 1.0),  # "the" is dropped: 1 of 3 tokens
    ("", "Paris", 0.0, 0.0, 0.0),
    ("13,400 residents", "13,400", 0.0, 2 / 3, 1.0),
    ("1310s", "1310", 0.0, 0.0, 0.0),            # a different token is not a match
    ("Zoë Ärn", "zoë ärn", 1.0, 1.0, 1.0),       # non-ASCII letters survive normalisation
    ("a the an", "the", 1.0, 0.0, 0.0),          # only articles: both normalise to empty; F1 0 as the official script
])
def test_string_graders(prediction, gold, em, f1, cont):
    assert exact_match(prediction, gold) == em
    assert token_f1(prediction, gold) == pytest.approx(f1)
    assert contains(prediction, gold) == cont


def test_normalisation_is_idempotent():
    for text in ["The  Eiffel-Tower!", "a b c", "13,400 people", "  "]:
        once = normalize_answer(text)
        assert normalize_answer(once) == once


def test_grader_dispatch_and_judge():
    questions, golds, preds = ["Q1", "Q2"], ["Sashon", "1310"], ["In Sashon.", "1290"]
    assert Grader("contains")(questions, golds, preds) == [1.0, 0.0]
    assert Grader("exact")(questions, golds, preds) == [0.0, 0.0]

    seen = []

    def fake_judge(qs, gs, ps):  # a judge is any callable over the batch
        seen.extend(judge_prompt(q, g, p) for q, g, p in zip(qs, gs, ps))
        return [parse_verdict("Yes"), parse_verdict("No, it is wrong")]

    assert Grader("judge", fake_judge)(questions, golds, preds) == [1.0, 0.0]
    assert "Answer to grade: In Sashon." in seen[0]
    with pytest.raises(SealError):
        Grader("judge")
    with pytest.raises(SealError):
        Grader("bleu")


def test_endpoint_judge_needs_a_key(monkeypatch):
    from seal.domains.knowledge.grading import EndpointJudge

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SealError, match="needs an API key"):
        EndpointJudge("gpt-4.1", "http://127.0.0.1:9/v1")
