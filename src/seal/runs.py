"""Run directories: never overwritten, one JSON line per record, resumable after a kill.

    runs/20261125-153000-adapt-demo/
      config.yaml        the resolved RunConfig (what `--resume` reads back)
      self_edits.jsonl   sampled self-edits, one line per passage (written before any trial)
      baselines.jsonl    the un-adapted answers, one line per passage (computed once)
      trials.jsonl       one line per finished trial
      report.md          the final table

A record is appended and fsync'ed as soon as it exists: a kill loses at most the group of
trials in flight (one trial on the single engine, up to `inner.adapters_per_pass` on the
batched one, whose trials finish together: seal.loops.inner); on resume a torn last line
(a kill mid-write) is cut off and every record already written is kept and skipped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterator

from seal.config import RunConfig, from_dict, load_yaml, save_yaml
from seal.errors import SealError


def new_run_dir(root: str | Path, command: str, name: str | None = None) -> Path:
    """Create a fresh, uniquely named run directory (an existing one is never reused)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S") + f"-{command}" + (f"-{name}" if name else "")
    for n in range(1, 1000):
        path = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise SealError(f"could not create a new run directory under {root}")


def start_run(config: RunConfig) -> Path:
    run_dir = new_run_dir(config.runs_root, config.command, config.name)
    save_yaml(config, run_dir / "config.yaml")
    return run_dir


def load_run_config(run_dir: str | Path) -> RunConfig:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise SealError(f"{run_dir} is not a run directory (no config.yaml)")
    return from_dict(RunConfig, load_yaml(run_dir / "config.yaml"), where=str(run_dir / "config.yaml")).validate()


class RecordLog:
    """An append-only JSON-lines file of records."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._repair()

    def _repair(self) -> None:
        """Cut a torn final line left by a kill mid-write."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(keep)

    def __iter__(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        raise SealError(f"{self.path}, line {n}: not a JSON record (was the file edited by hand?)") from None

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
