"""A run directory read without writing to it: finished, still going, or killed.

`RunView(path)` reads what a command has written so far. Nothing is locked, repaired or
created (a running command may be appending), so a torn last line (a kill mid-write, or a
write in progress) is left out and named in `view.notes` instead of being cut off as
`--resume` does; a malformed line before the last is an error (the file was edited).
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import yaml

from seal.errors import SealError

COMMANDS = ("adapt", "eval", "demo", "cpt", "train", "continual", "learn", "generate")


class RunView:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        config_path = self.path / "config.yaml"
        if not self.path.is_dir():
            raise SealError(f"{self.path} is not a directory")
        if not config_path.is_file():
            raise SealError(f"{self.path} is not a seal run directory (it has no config.yaml)")
        try:
            self.config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise SealError(f"{config_path} is not readable YAML: {err}") from None
        if not isinstance(self.config, dict) or self.config.get("command") not in COMMANDS:
            raise SealError(f"{config_path} is not a seal run config (no known command in it)")
        self.config_text = config_path.read_text(encoding="utf-8")
        self.notes: list[str] = []
        self._records: dict[str, list[dict]] = {}

    @property
    def command(self) -> str:
        return self.config["command"]

    @property
    def domain(self) -> str:
        return self.config.get("domain", "knowledge")

    @property
    def kind(self) -> str:
        """What the page shows: the command, with ARC evaluation apart; eval and demo read as adapt."""
        if self.domain == "arc" and self.command != "train":
            return "arc"
        return {"eval": "adapt", "demo": "adapt"}.get(self.command, self.command)

    @property
    def name(self) -> str:
        return self.path.name

    def records(self, relative: str) -> list[dict]:
        """A JSONL file's whole records, read once per view (a page reads some files for several sections)."""
        if relative not in self._records:
            self._records[relative] = self._read_records(relative)
        return [dict(r) for r in self._records[relative]]

    def _read_records(self, relative: str) -> list[dict]:
        path = self.path / relative
        if not path.is_file():
            return []
        data = path.read_bytes()
        lines = data.split(b"\n")
        torn = lines.pop() if not data.endswith(b"\n") else b""
        out = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise SealError(f"{path}, line {n}: not a JSON record (was the file edited by hand?)") from None
        if torn.strip():
            self.notes.append(f"{relative}: the last line is torn (killed mid-write, or being written); left out")
        return out

    def json(self, relative: str) -> dict | list | None:
        path = self.path / relative
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SealError(f"{path} is not valid JSON (was the file edited by hand?)") from None

    def status(self) -> str:
        """finished (summary.json written), running (another process holds the run's lock) or stopped."""
        if (self.path / "summary.json").is_file():
            return "finished"
        lock = self.path / ".lock"
        if lock.is_file():
            with open(lock, "rb") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return "running"
                fcntl.flock(handle, fcntl.LOCK_UN)
        return "stopped"


def complete_inputs(trials: list[dict], field: str) -> set:
    """The inputs (passage or task ids, `field`) on which every condition has as many trials as on its fullest
    input: where a run stopped mid-way, the inputs its table can compare fairly.

    >>> t = [{"condition": c, "id": i} for c, i in [("a", 1), ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("b", 3)]]
    >>> sorted(complete_inputs(t, "id"))
    [1]
    """
    counts: dict[str, dict] = {}
    for t in trials:
        per = counts.setdefault(t["condition"], {})
        per[t[field]] = per.get(t[field], 0) + 1
    inputs = {t[field] for t in trials}
    return {i for i in inputs if all(per.get(i, 0) == max(per.values()) for per in counts.values())}


def open_runs(paths: list[str]) -> list[RunView]:
    """The runs of one page: each a run directory, all of the same kind (one clear error otherwise)."""
    if not paths:
        raise SealError("name at least one run directory")
    views = [RunView(p) for p in paths]
    kinds = {v.kind for v in views}
    if len(kinds) > 1:
        raise SealError("runs of different commands cannot share a page: "
                        + ", ".join(f"{v.path} ({v.kind})" for v in views))
    if len({v.path.resolve() for v in views}) < len(views):
        raise SealError("a run directory is named twice")
    return views
