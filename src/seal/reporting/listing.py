"""`seal runs [ROOT]`: every run directory under ROOT, one line each, read without writing.

    $ seal runs
    run                                     command  state     progress                                 last write
    20261129-024646-train-rest-em-squad-24  train    finished  3 of 3 rounds                            2026-11-29 12:14
    20261129-121532-eval-squad48-heldout    eval     running   412 of 672 trials, about 3 h 5 min left  2026-11-29 14:02
    20261129-102304-train-...-nocopy        train    stopped   1 of 3 rounds, 32 of 144 trials          2026-11-29 11:40

A run is `finished` when its summary.json exists, `running` while another process holds its
lock (seal.reporting.read.RunView.status), else `stopped`: each stopped run's resume command
follows the table. A copy made by `seal archive` (seal.archive) that had not finished is `archived`.
Its saved models were left out, so only an evaluation's copy gets a resume command (it resumes from
its recorded self-edits); a training run's would need its generators. An archive's last write is
the run's, from its manifest (git gives a clone's files the clone's times), or the newest trial
status written since. Directories without a config.yaml are not runs and are skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from seal.errors import SealError
from seal.reporting.read import RunView


def progress(view: RunView, running: bool = False) -> str:
    """What a run has finished: rounds (and the open round's trials) for `seal train`, else records; of how many
    and, while it runs, about how long it has left, where its trial loop wrote them (seal.loops.inner)."""
    if view.command == "train":
        rounds = (view.config.get("train") or {}).get("rounds", "?")
        done = sum(1 for p in view.path.glob("round-*/round.json"))
        text = f"{done} of {rounds} rounds"
        open_round = trials_done(view, f"round-{done}/trials.jsonl", running)
        return text + (f", {open_round}" if open_round else "")
    if view.command == "continual":  # each condition's sequences, each of sequence_length steps
        cont = view.config.get("continual") or {}
        sequences, length = cont.get("sequences", 1), cont.get("sequence_length", 8)
        done = sum(len(view.records(f"{c}/sequence-{q}/steps.jsonl"))
                   for c in view.config.get("conditions") or [] for q in range(sequences))
        return f"{done} of {len(view.config.get('conditions') or []) * sequences * length} steps"
    if (view.path / "trials.jsonl").is_file():
        return trials_done(view, "trials.jsonl", running)
    if (view.path / "cpt.jsonl").is_file():
        return f"{len(view.records('cpt.jsonl'))} adapters"
    sampled = sum(len(view.records(p.name)) for p in view.path.glob("self_edits*.jsonl"))
    return f"sampling: {sampled} passages" if sampled else "-"


def trials_done(view: RunView, relative: str, running: bool) -> str:
    """'264 of 288 trials, about 1 h 20 min left': the total and the time left from the trial loop's status file."""
    done = len(view.records(relative))
    status_path = view.path / relative.replace(".jsonl", ".progress.json")
    try:
        status = json.loads(status_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = None
    if not isinstance(status, dict) or not isinstance(status.get("trials"), int):
        return f"{done} trials" if done else ""
    text = f"{done} of {status['trials']} trials"
    if running and status.get("eta_s") is not None:
        left = max(status["updated"] + status["eta_s"] - time.time(), 0)
        text += f", about {duration(left)} left"
    return text


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def last_write(path: Path) -> float:
    """The newest modification time of the run's files (the run directory's own when it holds none)."""
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file() and p.name != ".lock"]
    return max(times, default=path.stat().st_mtime)


def archived_last_write(path: Path) -> float | None:
    """For a copy made by `seal archive`: the run's last write from its manifest, or the newest `updated`
    of a trial status written later (a resumed copy); None for a run directory that is no copy."""
    try:
        manifest = json.loads((path / "archived.json").read_text(encoding="utf-8"))
        times = [float(manifest["last_write"])]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for status in path.rglob("*.progress.json"):
        try:
            times.append(float(json.loads(status.read_text(encoding="utf-8"))["updated"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return max(times)


def list_runs(root: str | Path) -> str:
    """The table of `seal runs`, newest run last, with the resume command of every stopped run."""
    root = Path(root)
    if not root.is_dir():
        raise SealError(f"{root} is not a directory of runs")
    rows, stopped = [], []
    for path in sorted(p for p in root.iterdir() if (p / "config.yaml").is_file()):
        try:
            view = RunView(path)
            state = view.status()
            done = progress(view, running=state == "running")
        except SealError as err:
            rows.append((path.name, "?", "unreadable", str(err), ""))
            continue
        archived = archived_last_write(path)
        if state != "finished" and (path / "archived.json").is_file():
            state = "archived"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(archived or last_write(path)))
        rows.append((path.name, view.command, state, done, when))
        if state == "stopped" or (state == "archived" and view.command == "eval"):
            stopped.append(f"seal {view.command} --resume {path}")
    if not rows:
        return f"no runs under {root}\n"
    header = ("run", "command", "state", "progress", "last write")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    if stopped:
        lines += ["", "resume the stopped runs (and archived tables) with:", *(f"  {c}" for c in stopped)]
    return "\n".join(lines) + "\n"
