"""Passage loading: each input format, the fictional generator, and clear errors on bad input."""

from __future__ import annotations

import json
import re

import pytest

from helpers import SHARED_DATA, requires_shared_data
from seal.errors import SealError
from seal.domains.knowledge.fictional import generate_passages
from seal.domains.knowledge.passages import parse_passages, save_passages
from seal.domains.knowledge.sources import load_passages
from seal.domains.knowledge.prompts import split_self_edit, training_sequences

GROUPED = [{"title": "Vesu", "context": "Vesu lies on the Besheidoux river.",
            "questions": [{"question": "Which river?", "answer": "Besheidoux"}],
            "self_edits": ["1. Vesu is by a river.\n2. The river is the Besheidoux."]}]
SQUAD_V11 = {"version": "1.1", "data": [{"title": "Super_Bowl_50", "paragraphs": [
    {"context": "Super Bowl 50 was an American football game.", "qas": [
        {"id": "1", "question": "What sport?", "answers": [{"answer_start": 24, "text": "American football"},
                                                            {"answer_start": 24, "text": "football"}]},
        {"id": "2", "question": "Unanswerable?", "answers": []}]},
    {"context": "The game was played in 2016.", "qas": [
        {"id": "3", "question": "When?", "answers": [{"answer_start": 23, "text": "2016"}]}]}]}]}


def write(tmp_path, obj, name="passages.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def test_grouped_format_keeps_self_edits(tmp_path):
    [p] = load_passages(write(tmp_path, GROUPED))
    assert p.title == "Vesu" and p.questions[0].answer == "Besheidoux"
    assert p.self_edits == (GROUPED[0]["self_edits"][0],)


def test_squad_v11_format_groups_paragraphs_and_takes_first_answer(tmp_path):
    passages = load_passages(write(tmp_path, SQUAD_V11))
    assert [p.title for p in passages] == ["Super Bowl 50", "Super Bowl 50"]
    assert [(q.question, q.answer) for q in passages[0].questions] == [("What sport?", "American football")]
    assert passages[1].questions[0].answer == "2016"


def test_round_trip_through_the_grouped_format(tmp_path):
    passages = generate_passages(4, seed=3)
    save_passages(passages, tmp_path / "out.json")
    assert load_passages(str(tmp_path / "out.json")) == passages


def test_offset_and_count(tmp_path):
    passages = generate_passages(6)
    save_passages(passages, tmp_path / "six.json")
    assert load_passages(str(tmp_path / "six.json"), num_passages=2, offset=3) == passages[3:5]
    assert load_passages("fictional", num_passages=2, offset=3) == passages[3:5]


@pytest.mark.parametrize("content, message", [
    ("[{\"title\": \"T\", \"context\": ", "not valid JSON (line 1"),
    ({"version": 1}, "expected a list of passages or a SQuAD v1.1 object"),
    ([{"title": "T", "context": "C", "questions": []}], "has no questions"),
    ([{"title": "T", "context": "   ", "questions": [{"question": "Q", "answer": "A"}]}], "passage text is empty"),
    ([{"title": "T", "context": "C", "questions": [{"question": "Q"}]}], "missing 'answer'"),
    ([{"title": "T", "context": "C", "questions": [{"question": "Q", "answer": "A"}], "self_edits": [" "]}],
     "self-edit 0 is empty"),
    ([{"title": "T", "context": "C", "questions": [{"question": "Q", "answer": "A"}], "self_edits": "x"}],
     "must be a list of strings"),
    ([["not", "an", "object"]], "expected an object"),
])
def test_bad_input_is_a_clear_error(tmp_path, content, message):
    with pytest.raises(SealError, match=re.escape(message)):
        load_passages(write(tmp_path, content))


def test_missing_file(tmp_path):
    with pytest.raises(SealError, match="not found"):
        load_passages(str(tmp_path / "nope.json"))


def test_fictional_passages_are_reproducible_and_answerable():
    a, b = generate_passages(30, seed=1), generate_passages(30, seed=1)
    assert a == b and len({p.id for p in a}) == 30
    for p in a:
        assert len(p.questions) >= 8
        for q in p.questions:
            assert q.answer.lower() in p.context.lower()
            # the question does not simply quote the sentence holding the answer
            assert q.answer.lower() not in q.question.lower()


def test_training_sequences_are_title_prefixed_and_include_the_passage():
    [p] = parse_passages(GROUPED)
    seqs = training_sequences(p, p.self_edits[0])
    assert seqs == ["Vesu\nVesu lies on the Besheidoux river.", "Vesu\nVesu is by a river.",
                    "Vesu\nThe river is the Besheidoux."]
    assert training_sequences(p, p.self_edits[0], include_passage=False) == seqs[1:]
    assert training_sequences(p, None) == seqs[:1]


@requires_shared_data("squad", "eval200_gpt41_self_edits.json")
def test_shared_squad_files_load_and_split():
    passages = load_passages(str(SHARED_DATA / "squad" / "eval200_gpt41_self_edits.json"))
    assert len(passages) == 200 and all(len(p.self_edits) == 5 for p in passages)
    pieces = split_self_edit(passages[0].self_edits[0])
    assert len(pieces) >= 5 and not any(piece.lower().startswith("implications") for piece in pieces)
    dev = load_passages(str(SHARED_DATA / "squad" / "squad_dev.json"))
    assert len(dev) == 1967
    assert {p.id for p in passages} <= {p.id for p in dev}
