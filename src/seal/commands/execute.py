"""Run a command's work in its run directory, then write its summary.json and report.md (seal.report).

`seal.cli` opens (or resumes) the run directory and its lock; `execute` calls the command
(seal.commands.*) and writes what every finished run has: summary.json, report.md (also printed)
and the command's plot.
"""

from __future__ import annotations

import json
from pathlib import Path

from seal.config import RunConfig


def execute(config: RunConfig, run_dir: Path) -> int:
    title = f"seal {config.command}: {config.data.source if config.domain == 'knowledge' else config.arc.challenges}, " \
            f"model {config.model.name}"
    if config.command == "generate":
        from seal.commands.generate import run_generate

        generated = run_generate(config, run_dir)
        total = sum(len(v) for v in generated.values())
        print(f"{total} self-edits for {len(generated)} passages in {run_dir / 'self_edits.jsonl'}")
    elif config.command == "train":
        from seal.commands.train import run_train
        from seal.plots import plot_rewards
        from seal.report import train_report

        history = run_train(config, run_dir)
        finish_run(run_dir, {"rounds": history}, train_report(history, title) + recipe_sections(config, run_dir))
        plot_rewards(history, run_dir / "rewards.png")
    elif config.command == "learn":
        from seal.commands.learn import learn_report, run_learn

        summary = run_learn(config, run_dir)
        finish_run(run_dir, summary, learn_report(summary))
    elif config.command == "continual":
        from seal.commands.continual import run_continual_command
        from seal.plots import plot_forgetting
        from seal.report import continual_report

        summary = run_continual_command(config, run_dir)
        finish_run(run_dir, summary, continual_report(summary, title))
        plot_forgetting(summary, run_dir / "forgetting.png")
    elif config.domain == "arc":
        from seal.commands.arc_eval import run_arc_eval
        from seal.report import arc_report

        summary = run_arc_eval(config, run_dir)
        finish_run(run_dir, summary, arc_report(summary, title) + recipe_sections(config, run_dir))
    else:
        from seal.commands.adapt import run_adapt
        from seal.commands.cpt import run_cpt
        from seal.plots import plot_conditions
        from seal.report import report_markdown

        summary = (run_cpt if config.command == "cpt" else run_adapt)(config, run_dir)
        finish_run(run_dir, summary, report_markdown(summary, title))
        plot_conditions(summary, run_dir / "accuracy.png", f"{config.data.source} | {config.model.name}")
    return 0


def recipe_sections(config: RunConfig, run_dir: Path) -> str:
    """An ARC run's recipe choices by round or row (seal.reporting.recipes); '' for a knowledge run."""
    if config.domain != "arc":
        return ""
    from seal.reporting.read import RunView
    from seal.reporting.recipes import profile_section

    return profile_section(RunView(run_dir))


def finish_run(run_dir: Path, summary: dict, report: str) -> None:
    """summary.json and report.md in the run directory, and the report on the console."""
    from seal.runs import publish, write_atomic

    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=1))
    publish(run_dir / "summary.json", summary)
    write_atomic(run_dir / "report.md", report)
    print()
    print(report)
    print(f"run directory: {run_dir}")
