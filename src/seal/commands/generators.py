"""Rows added to a table: the generators of a `seal train` run (`--train-run`), and on resume any condition.

    seal eval --condition passage --condition model --train-run runs/<time>-train   # a row per round
    seal eval --condition passage --train-run runs/<time>-train/round-2               # that round's only
    seal eval --resume runs/<time>-eval --train-run runs/<time>-train-other         # rows added later
    seal eval --resume runs/<time>-eval --condition model:rewrite                    # any row added later

Each ReST-EM round that saved a generator gives one `generator:ROUND/generator` condition. A
finished or stopped table gains the rows it lacks without repeating any of its trials: its
config.yaml is rewritten with the longer list of conditions, and the resumed run samples the new
rows' self-edits and runs their trials. New rows are checked as a new run's are, before
config.yaml changes; bad input is one line and leaves the run as it was. A finished table that gains
rows loses its summary.json until they finish, so `seal runs` does not call it finished meanwhile.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from seal.config import RunConfig
from seal.config_load import from_dict
from seal.errors import SealError
from seal.runs import resolve_in_run, write_atomic


def generator_conditions(train_run: str) -> list[str]:
    """One `generator:` condition per round of a `seal train` run that produced a new generator; for a round
    directory (RUN/round-N), that round's generator only."""
    run = Path(train_run)
    one_round = (run / "round.json").is_file()
    if one_round:
        run, rounds = run.parent, [run / "round.json"]
    else:
        rounds = sorted(run.glob("round-*/round.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not rounds:
        raise SealError(f"{train_run} has no finished ReST-EM round (round-*/round.json)")
    out = []
    for path in rounds:
        generator = resolve_in_run(run, json.loads(path.read_text())["generator_out"])
        if f"generator:{generator}" not in out and Path(generator).is_dir():
            out.append(f"generator:{generator}")
    if not out and one_round:
        raise SealError(f"{train_run} kept no self-edit, so it saved no generator of its own")
    return out


TABLES = ("adapt", "eval", "cpt")
"""The commands whose runs are tables of rows (conditions), so that a resume can add rows."""


def add_rows(config: RunConfig, run_dir: Path, conditions: list[str], train_runs: list[str]) -> RunConfig:
    """`--resume RUN --condition C --train-run T`: the run gains C and a row per generator of T, where it lacks
    them; its finished trials stay."""
    wanted = [*conditions, *(c for run in train_runs for c in generator_conditions(run))]
    added = list(dict.fromkeys(c for c in wanted if c not in config.conditions))
    if not added:
        return config
    if conditions and (config.domain != "knowledge" or config.command not in TABLES):
        raise SealError(f"--condition adds rows on resume to a knowledge table (seal {', '.join(TABLES)}); "
                        f"{run_dir} is a {config.domain} `seal {config.command}` run")
    config = from_dict(RunConfig, {**config.to_dict(), "conditions": [*config.conditions, *added]}).validate()
    from seal.commands.checks import check_models

    if config.domain == "knowledge":
        from seal.domains.knowledge.trials import check_conditions, passages_for

        check_conditions(config, passages_for(config))
    check_models(config)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    (run_dir / "summary.json").unlink(missing_ok=True)  # the table is open again: not `finished` until its new rows are
    print(f"seal {config.command}: {len(added)} row(s) added to {run_dir}: {', '.join(added)}")
    return config
