"""A user's own documents as passages: text, Markdown or JSONL files cut into passages by a stated rule.

    passages = read_documents(["notes/", "faq.jsonl"], max_words=150)

- `.txt` / `.md`: paragraphs (blocks separated by a blank line) are joined in order into
  passages of at most `max_words` words (a longer paragraph is a passage of its own, cut at
  sentence ends when it can be); the title is the file's first Markdown heading, else its name.
  Markdown headings start a new passage and become its title.
- `.jsonl`: one passage per line, `{"text" or "context": ..., "title"?: ..., "questions"?:
  [{"question", "answer"}]}`; questions make `seal learn` report no-context accuracy before and
  after.
- a folder: every such file inside it, in sorted order.

Bad input (a missing path, an empty or binary file, a folder with no text) is one SealError.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from seal.domains.knowledge.passages import Passage, Question
from seal.errors import SealError

SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def read_documents(paths: list[str], max_words: int = 150) -> list[Passage]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                raise SealError(f"{path} holds no text document ({', '.join(SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise SealError(f"document not found: {path}")
    passages = []
    for path in files:
        text = _read_text(path)
        passages += _jsonl_passages(path, text) if path.suffix.lower() == ".jsonl" else text_passages(text, path.stem, max_words)
    return passages


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise SealError(f"{path} is a binary file, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SealError(f"{path} is not UTF-8 text") from None
    if not text.strip():
        raise SealError(f"{path} is empty")
    return text


def text_passages(text: str, name: str, max_words: int = 150) -> list[Passage]:
    """Paragraphs joined into passages of at most `max_words` words; headings start a passage and title it.

    >>> [(p.title, p.context) for p in text_passages("# Vesu\\n\\nVesu is old.\\n\\nIt has a bridge.", "notes", 50)]
    [('Vesu', 'Vesu is old.\\n\\nIt has a bridge.')]
    >>> len(text_passages("One two three.\\n\\nFour five six.", "n", max_words=4))
    2
    """
    title, current, out = name, [], []

    def flush():
        if current:
            out.append(Passage(title, "\n\n".join(current), ()))
            current.clear()

    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = block.strip().splitlines()
        if not lines:
            continue
        heading = _HEADING.match(lines[0])
        if heading:
            flush()
            title = heading.group(1)
            lines = lines[1:]
        for piece in _cut(" ".join(line.strip() for line in lines).strip(), max_words):
            if current and len(" ".join(current).split()) + len(piece.split()) > max_words:
                flush()
            current.append(piece)
    flush()
    return out


def _cut(paragraph: str, max_words: int) -> list[str]:
    """A paragraph as pieces of at most `max_words` words, cut after sentences where possible."""
    if not paragraph:
        return []
    if len(paragraph.split()) <= max_words:
        return [paragraph]
    pieces, current = [], []
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        words = sentence.split()
        while len(words) > max_words:  # one sentence longer than a passage: cut it by words
            pieces.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            pieces.append(" ".join(current))
            current = []
        current += words
    if current:
        pieces.append(" ".join(current))
    return pieces


def _jsonl_passages(path: Path, text: str) -> list[Passage]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise SealError(f"{where}: not a JSON object ({err.msg})") from None
        body = row.get("text", row.get("context")) if isinstance(row, dict) else None
        if not isinstance(body, str) or not body.strip():
            raise SealError(f"{where}: needs a non-empty 'text' (or 'context') string")
        questions = []
        for k, q in enumerate(row.get("questions", [])):
            if not isinstance(q, dict) or not str(q.get("question", "")).strip() or not str(q.get("answer", "")).strip():
                raise SealError(f"{where}: question {k} needs a 'question' and an 'answer'")
            questions.append(Question(str(q["question"]), str(q["answer"])))
        out.append(Passage(str(row.get("title", path.stem)), body.strip(), tuple(questions)))
    if not out:
        raise SealError(f"{path} holds no passage")
    return out
