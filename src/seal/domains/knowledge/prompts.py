"""Prompts of the knowledge-incorporation domain, and how a self-edit becomes training data.

Self-edit prompt families follow the paper (its appendix lists implications,
implications-long, implications-very-long, rewrite, self-QA and no self-edit); the
wording here is our own. A self-edit is split into training sequences as the paper
does: one sequence per line (per question-answer pair for self-QA), each prefixed by the
passage title so that it is anchored to its subject, plus the passage itself.

Departure from the paper's code: before splitting, list markers ("1.", "-", "Implication 2:"),
header lines ("Implications:"), lines with no letter or digit ("---") and markdown emphasis
are stripped, so that a small model's
formatting does not become training data; the authors split on lines as they come.

Answers are asked with no passage in context. By default (`inner.question_prompt: topic`)
a question is asked as the authors' code asks it: the passage's title as `Topic: {title}`
before the question, inside "Let's answer a question directly and concisely." (most SQuAD
questions do not name their passage's subject, so without the topic they are unanswerable
even for a model that learned the passage). `plain` is this project's earlier wording: no
topic, and a request for a short phrase.
"""

from __future__ import annotations

import re

from seal.domains.knowledge.passages import Passage

SELF_EDIT_PROMPTS = {
    "implications": (
        "Read the following passage and write a list of implications that follow from it, "
        "directly or indirectly. Write each implication as a complete sentence on its own line.\n\n"
        "Passage:\n{title}\n{context}\n\nImplications:\n"
    ),
    "implications-long": (
        "Read the following passage and write a long list of implications that follow from it, "
        "directly or indirectly, covering every fact it states. Write each implication as a complete "
        "sentence on its own line.\n\nPassage:\n{title}\n{context}\n\nImplications:\n"
    ),
    "implications-very-long": (
        "Read the following passage and write a very long and thorough list of implications that follow "
        "from it, directly or indirectly: restate every fact in several ways and draw every conclusion you "
        "can. Write each implication as a complete sentence on its own line.\n\n"
        "Passage:\n{title}\n{context}\n\nImplications:\n"
    ),
    "rewrite": (
        "Rewrite the following passage in several different ways, keeping every fact. "
        "Separate the rewrites with blank lines.\n\nPassage:\n{title}\n{context}\n\nRewrites:\n"
    ),
    "self-qa": (
        "Read the following passage and write question-and-answer pairs that test every fact in it. "
        "Write each pair as two lines, 'Question: ...' and 'Answer: ...'.\n\n"
        "Passage:\n{title}\n{context}\n\nQuestions and answers:\n"
    ),
}

QUESTION_PROMPTS = {
    "topic": "Let's answer a question directly and concisely.\nQuestion: Topic: {title}\n{question}\nAnswer:",
    "plain": "Answer the question with a short phrase, without explanation.\nQuestion: {question}\nAnswer:",
}

_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|\(\d+\)|(?:implication|rewrite|fact)\s*\d*\s*[:.)])\s*",
                          re.IGNORECASE)
_HEADER = re.compile(r"^\W*(implications|rewrites?|questions and answers)\W*$", re.IGNORECASE)
_QA = re.compile(r"^\s*(?:Q(?:uestion)?)\s*\d*\s*[:.]\s*(.+?)\s*\n\s*(?:A(?:nswer)?)\s*\d*\s*[:.]\s*(.+?)\s*$",
                 re.IGNORECASE | re.MULTILINE)


def self_edit_prompt(family: str, passage: Passage) -> str:
    """The instruction that asks the model for a self-edit of `passage` (before any chat template)."""
    return SELF_EDIT_PROMPTS[family].format(title=passage.title, context=passage.context)


def question_prompt(question: str, title: str = "", style: str = "topic") -> str:
    """The no-context question prompt (before any chat template).

    >>> print(question_prompt("Who founded it?", "Vesu"))
    Let's answer a question directly and concisely.
    Question: Topic: Vesu
    Who founded it?
    Answer:
    """
    return QUESTION_PROMPTS[style].format(question=question, title=title)


def split_self_edit(self_edit: str, family: str = "implications") -> list[str]:
    """Cut a self-edit into the pieces that become separate training sequences.

    List markers, headers and markdown emphasis are dropped; empty pieces are skipped.

    >>> split_self_edit("**Implications:**\\n\\n1. The town is old.\\n2. It has a river.\\n")
    ['The town is old.', 'It has a river.']
    >>> split_self_edit("Question: Who? \\nAnswer: Ana\\nQ: When?\\nA: 1900", "self-qa")
    ['Question: Who?\\nAnswer: Ana', 'Question: When?\\nAnswer: 1900']
    >>> split_self_edit("1. Question: Who?\\n2. Answer: Ana\\n* Q: When?\\n* A: 1900", "self-qa")
    ['Question: Who?\\nAnswer: Ana', 'Question: When?\\nAnswer: 1900']
    >>> split_self_edit("First rewrite,\\nsame paragraph.\\n\\nSecond rewrite.", "rewrite")
    ['First rewrite,\\nsame paragraph.', 'Second rewrite.']
    >>> split_self_edit("  \\n**Implications:**\\n")
    []
    >>> split_self_edit("Implication 1:\\nThe prize is old.\\nImplication 2: It is gold.")
    ['The prize is old.', 'It is gold.']
    >>> split_self_edit("A fact.\\n---\\nAnother.")
    ['A fact.', 'Another.']
    """
    text = self_edit.replace("\r\n", "\n").replace("**", "")
    if family == "self-qa":  # list markers go first, as for every family: "1. Question: ..." is a question line
        text = "\n".join(_LIST_MARKER.sub("", line.strip()) for line in text.split("\n"))
        return [f"Question: {q}\nAnswer: {a}" for q, a in _QA.findall(text)]
    pieces = re.split(r"\n\s*\n", text) if family == "rewrite" else text.split("\n")
    out = []
    for piece in pieces:
        piece = _LIST_MARKER.sub("", piece.strip()).strip()
        if re.search(r"\w", piece) and not _HEADER.match(piece):  # a "---" rule is no training data
            out.append(piece)
    return out


def training_sequences(passage: Passage, self_edit: str | None, family: str = "implications",
                       include_passage: bool = True) -> list[str]:
    """The texts a trial fine-tunes on: the passage, and each piece of the self-edit, title first.

    >>> from seal.domains.knowledge.passages import Passage, Question
    >>> p = Passage("Vesu", "Vesu is a town.", (Question("What is Vesu?", "a town"),))
    >>> training_sequences(p, "1. Vesu is small.\\n2. It is old.")
    ['Vesu\\nVesu is a town.', 'Vesu\\nVesu is small.', 'Vesu\\nIt is old.']
    """
    sequences = [f"{passage.title}\n{passage.context}"] if include_passage else []
    if self_edit is not None:
        sequences += [f"{passage.title}\n{piece}" for piece in split_self_edit(self_edit, family)]
    return sequences
