"""`seal archive`: a run directory's records, without its model weights, in a folder that travels.

Run directories live on the machine that made them (`runs/` is not in git). Twice this project lost
every run directory with its machine and kept only the figures its docs had copied out; a row that
had to be paired with a lost one (the same passages, trial by trial) could then only be had by
running the lost one again. `seal archive RUN --to results/` copies everything a run recorded (its
config.yaml, self-edits, baselines, trials, rounds, reports, log) into `results/<run name>/` and
leaves out every directory that holds model weights (a saved generator, an adapter) as a whole,
with its size and the sha256 of each weight file noted in `archived.json`. The copy is itself a
run directory: `seal report` and `seal runs` read it, and `seal eval --resume` on it adds rows
that pair with the recorded ones (only a row that must sample from a left-out generator cannot run).

A run still going can be archived: each file is copied whole (through a temporary and a rename), a
JSONL file's torn last line is cut off as a resume would cut it, and `archived.json` says the copy
was taken while the run held its lock. The manifest keeps the run's last write (a clone's file times
are the clone's, so `seal runs` reads it from there). Archiving the same run again updates its copy
and drops what the run no longer has (a table that gained rows has no summary.json until they
finish); a destination that holds anything else is refused with one line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

from seal.errors import SealError
from seal.reporting.listing import last_write
from seal.runs import write_atomic

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")
"""A file with one of these suffixes marks its directory as a saved model: the directory is left out whole."""

MANIFEST = "archived.json"


def archive_run(run_dir: str | Path, dest_root: str | Path, max_file_mb: float = 50.0) -> tuple[Path, dict]:
    """Copy `run_dir`'s records into `dest_root/<its name>`; return the copy's path and its manifest."""
    src = Path(run_dir)
    if not (src / "config.yaml").is_file():
        raise SealError(f"{src} is not a seal run directory (it has no config.yaml)")
    dest = Path(dest_root) / src.resolve().name
    if dest.resolve() == src.resolve():
        raise SealError(f"{src} is already under {dest_root}")
    if dest.exists() and not _archive_of(dest, src):
        raise SealError(f"{dest} exists and is not an archive of {src}: give another --to")
    in_progress = _locked(src)
    models = sorted({p.parent for p in src.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES})
    left_out = [_model_entry(src, d) for d in models]
    copied, size, kept = 0, 0, set()
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or any(d == path.parent or d in path.parents for d in models):
            continue
        if path.name in (".lock", MANIFEST) or path.name.endswith(".tmp") or _hidden(rel):
            continue
        if path.stat().st_size > max_file_mb * 2**20:
            left_out.append({"path": str(rel), "bytes": path.stat().st_size, "why": f"larger than {max_file_mb:g} MB"})
            continue
        data = path.read_bytes()
        if path.suffix == ".jsonl" and data and not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]  # a writer's torn last line: cut as a resume would
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        copied, size = copied + 1, size + len(data)
        kept.add(rel)
    for path in sorted(dest.rglob("*")):  # what the run no longer has (a summary its new rows reopened)
        if path.is_file() and path.relative_to(dest) not in kept and path.name != MANIFEST:
            path.unlink()
    manifest = {"source": str(src.resolve()), "archived_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                "last_write": round(last_write(src), 3), "in_progress": in_progress, "files": copied, "bytes": size,
                "left_out": left_out}
    write_atomic(dest / MANIFEST, json.dumps(manifest, indent=1))
    return dest, manifest


def describe(dest: Path, manifest: dict) -> str:
    """One line for the terminal: where the copy went, its size, and what was left out."""
    gone = ", ".join(f"{e['path']} ({e['bytes'] / 2**20:.0f} MB{', weights' if 'sha256' in e else ''})"
                     for e in manifest["left_out"])
    state = " (taken while the run was going)" if manifest["in_progress"] else ""
    return (f"archive: {dest}{state}: {manifest['files']} files, {manifest['bytes'] / 2**20:.1f} MB"
            + (f"; left out {gone}" if gone else ""))


def _archive_of(dest: Path, src: Path) -> bool:
    try:
        return Path(json.loads((dest / MANIFEST).read_text())["source"]).name == src.resolve().name
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _hidden(rel: Path) -> bool:
    """Staging directories a killed writer left (`.generator-*`), and other dot-folders (a tracker's cache)."""
    return any(part.startswith(".") for part in rel.parts[:-1])


def _locked(run_dir: Path) -> bool:
    """Whether a seal process holds the run's lock now (seal.runs.lock_run)."""
    lock = run_dir / ".lock"
    if not lock.exists():
        return False
    with open(lock, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def _model_entry(src: Path, model_dir: Path) -> dict:
    files = [p for p in sorted(model_dir.rglob("*")) if p.is_file()]
    return {"path": str(model_dir.relative_to(src)), "bytes": sum(p.stat().st_size for p in files),
            "files": len(files),
            "sha256": {str(p.relative_to(model_dir)): _sha256(p) for p in files if p.suffix in WEIGHT_SUFFIXES}}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

