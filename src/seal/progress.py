"""Progress a person can trust, and a log for batch use.

`bar(...)` is tqdm (items done, rate and ETA on every stage whose size is known); `seal --quiet`
turns every bar off. `log_to_file(path)` copies what a command prints (its messages, warnings,
and each bar's final state, not its redraws) into RUN_DIR/log.txt, appended on resume.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tqdm.auto import tqdm

QUIET = False


def set_quiet(quiet: bool) -> None:
    """Bars off (or on again) for seal's stages and for the libraries' own (weights loading, hub)."""
    global QUIET
    QUIET = quiet
    from transformers.utils import logging

    if quiet:
        logging.disable_progress_bar()
    else:
        logging.enable_progress_bar()


def bar(*args, **kwargs):
    kwargs["disable"] = kwargs.get("disable", False) or QUIET
    return tqdm(*args, **kwargs)


class _Tee:
    """A stream that also writes complete lines to a file; a line redrawn with '\\r' keeps its last state."""

    def __init__(self, stream, log):
        self.stream, self.log, self.line = stream, log, ""

    def write(self, text: str) -> int:
        self.stream.write(text)
        if self.log.closed:  # kept past the run by someone (a logging handler made during it): the stream alone
            return len(text)
        self.line += text
        if "\n" in self.line:
            *done, self.line = self.line.split("\n")
            for line in done:
                last = line.rsplit("\r", 1)[-1].rstrip()
                if last:
                    self.log.write(last + "\n")
            self.log.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextmanager
def log_to_file(path: Path) -> Iterator[None]:
    with open(path, "a", encoding="utf-8") as log:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
        try:
            yield
        finally:
            for tee in (sys.stdout, sys.stderr):
                last = tee.line.rsplit("\r", 1)[-1].rstrip() if isinstance(tee, _Tee) else ""
                if last:
                    log.write(last + "\n")
            sys.stdout, sys.stderr = out, err
