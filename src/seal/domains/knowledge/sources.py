"""Where passages come from: `fictional`, a JSON file (grouped SEAL or SQuAD v1.1), or `hf:NAME[:SPLIT]`.

    load_passages("../shared/data/squad/eval200_gpt41_self_edits.json", num_passages=20)
"""

from __future__ import annotations

from pathlib import Path

from seal.domains.knowledge.fictional import generate_passages
from seal.domains.knowledge.passages import Passage, Question, checked_passage, parse_passages, read_json
from seal.errors import SealError


def load_passages(source: str, num_passages: int | None = None, offset: int = 0, fictional_seed: int = 0) -> list[Passage]:
    """Load passages from `source` and take `num_passages` of them from `offset`."""
    if source == "fictional":
        passages = generate_passages((num_passages or 50) + offset, seed=fictional_seed)
    elif source.startswith("hf:"):
        passages = _load_hf(source[3:])
    else:
        passages = parse_passages(read_json(Path(source)), where=source)
    passages = passages[offset:]
    if num_passages is not None:
        passages = passages[:num_passages]
    if not passages:
        raise SealError(f"{source}: no passages left after offset {offset}")
    return passages


def _load_hf(spec: str) -> list[Passage]:
    name, _, split = spec.partition(":")
    try:
        import datasets
    except ImportError:
        raise SealError("hf: sources need the optional package `datasets` (pip install datasets)") from None
    try:
        rows = datasets.load_dataset(name, split=split or "validation")
    except Exception as err:  # the datasets library raises many types for a missing dataset or no network
        raise SealError(f"could not load Hugging Face dataset {name!r} (offline? set SEAL_ONLINE=1): {err}") from None
    grouped: dict[tuple[str, str], list[Question]] = {}
    for row in rows:
        answers = list(dict.fromkeys(row["answers"]["text"]))
        if answers:
            grouped.setdefault((row["title"], row["context"]), []).append(
                Question(row["question"], answers[0], tuple(answers[1:])))
    return [checked_passage(t.replace("_", " "), c, qs, [], f"hf:{name}") for (t, c), qs in grouped.items()]
