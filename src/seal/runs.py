"""Run directories: never overwritten, one JSON line per record, resumable after a kill.

    runs/20261125-153000-adapt-demo/
      config.yaml        the resolved RunConfig (what `--resume` reads back)
      self_edits.jsonl   sampled self-edits, one line per passage (written before any trial)
      baselines.jsonl    the un-adapted answers, one line per passage (computed once)
      trials.jsonl       one line per finished trial
      report.md          the final table

One process at a time writes a run directory: `lock_run` takes an OS-level lock
(`fcntl.flock` on RUN_DIR/.lock, released when the process ends, however it ends), and a
second `seal ... --resume RUN_DIR` exits with one line naming the holder's pid. Whole files
(config.yaml, round.json, passages.json, kept.jsonl, summary.json, report.md) are written
atomically (`write_atomic`: a temporary file, fsync, rename), so a kill or a full disk leaves
the old file or the new one, never half of one; temporaries a kill left behind are removed
when the run is next opened. Paths inside a run's records are stored relative to the run
directory (`relative_to_run` / `resolve_in_run`), so a run can be resumed or evaluated from
any working directory.

A record is appended and fsync'ed as soon as it exists: a kill loses at most the group of
trials in flight (one trial on the single engine, up to `inner.adapters_per_pass` on the
batched one, whose trials finish together: seal.loops.inner); on resume a torn last line
(a kill mid-write) is cut off and every record already written is kept and skipped.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator

import yaml

from seal.config import RunConfig
from seal.config_load import from_dict, load_yaml
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
    lock_run(run_dir)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    return run_dir


def load_run_config(run_dir: str | Path) -> RunConfig:
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise SealError(f"{run_dir} is not a run directory (no config.yaml)")
    values = load_yaml(path)
    if "command" not in values:
        raise SealError(f"{path} is empty or damaged (it names no command), so the run cannot be resumed")
    return from_dict(RunConfig, values, where=str(path)).validate()


_HELD: dict[Path, object] = {}  # this process's open lock files, by run directory


def lock_run(run_dir: str | Path) -> None:
    """Take RUN_DIR's writer lock until `release_run` or the end of this process, or fail naming the
    process that holds it (taking it again in the same process is a no-op)."""
    key = Path(run_dir).resolve()
    if key in _HELD:
        return
    path = Path(run_dir) / ".lock"
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise SealError(f"{run_dir} is in use by another seal process (pid {holder}); wait for it to end "
                        "or stop it, then resume") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _HELD[key] = handle
    clean_temporaries(run_dir)


def release_run(run_dir: str | Path) -> None:
    handle = _HELD.pop(Path(run_dir).resolve(), None)
    if handle is not None:
        handle.close()  # closing the file releases the lock


def clean_temporaries(run_dir: str | Path) -> None:
    """Remove what a killed writer left half-done: `*.tmp` files and `.generator-*` staging directories."""
    for path in Path(run_dir).rglob("*"):
        if path.is_dir() and path.name.startswith(".generator-"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the whole new one."""
    path = Path(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)


def relative_to_run(run_dir: str | Path, path: str) -> str:
    """`path` relative to the run directory when it lies inside it (a model id or outside path unchanged).

    >>> relative_to_run("/runs/r1", "/runs/r1/round-0/generator"), relative_to_run("/runs/r1", "org/model")
    ('round-0/generator', 'org/model')
    """
    try:
        return str(Path(path).resolve().relative_to(Path(run_dir).resolve()))
    except ValueError:
        return path


def resolve_in_run(run_dir: str | Path, path: str) -> str:
    """A path stored by `relative_to_run`, usable from any working directory (older runs stored it as given)."""
    inside = Path(run_dir) / path
    return str(inside.resolve()) if not Path(path).is_absolute() and inside.exists() else path


_LISTENERS: list[Callable[[Path, dict], None]] = []


@contextmanager
def listen(callback: Callable[[Path, dict], None]) -> Iterator[None]:
    """Call `callback(path, record)` for every record written while the body runs (seal.tracking)."""
    _LISTENERS.append(callback)
    try:
        yield
    finally:
        _LISTENERS.remove(callback)


def publish(path: Path, record: dict) -> None:
    """Tell the listeners a record was written to `path` (a RecordLog line, round.json, summary.json)."""
    for callback in list(_LISTENERS):
        callback(Path(path), record)


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
        publish(self.path, record)
