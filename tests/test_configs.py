"""Config files and the flag -> dataclass path."""

from __future__ import annotations

from pathlib import Path

import pytest

from seal.cli import build_parser, config_from_args
from seal.config import RunConfig
from seal.config_load import from_dict, load_yaml
from seal.errors import SealError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_parse_and_open_with_their_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# seal ") and path.name in first
    config = from_dict(RunConfig, load_yaml(path)).validate()
    assert config.conditions


def test_flags_override_yaml(tmp_path):
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("inner: {lr: 0.0003, epochs: 4}\nsampling: {k: 2}\n")
    args = build_parser().parse_args(["adapt", "--config", str(yaml_path), "--epochs", "7", "--seeds", "0,1,2",
                                      "--target-modules", "q_proj,v_proj"])
    config = config_from_args(args)
    assert (config.inner.lr, config.inner.epochs, config.sampling.k) == (0.0003, 7, 2)
    assert config.inner.seeds == [0, 1, 2] and config.inner.target_modules == ["q_proj", "v_proj"]


def test_unknown_yaml_key_is_named(tmp_path):
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("inner: {learning_rate: 0.1}\n")
    with pytest.raises(SealError, match="config.inner: unknown key 'learning_rate'"):
        config_from_args(build_parser().parse_args(["adapt", "--config", str(yaml_path)]))


def test_train_defaults_are_the_papers_and_cpu_configs_name_their_own():
    paper = config_from_args(build_parser().parse_args(["train"]))
    assert (paper.sampling.k, paper.inner.seeds, paper.train.passages_per_round) == (5, [0, 1, 2], 50)
    sft = paper.train.sft  # the authors' M-step: LoRA r 64, alpha 128, lr 3e-4, 2 epochs, 5 pairs a step
    assert (sft.rank, sft.alpha, sft.lr, sft.epochs, sft.batch_size) == (64, 128, 3e-4, 2, 5)
    cpu = config_from_args(build_parser().parse_args(["train", "--config", str(CONFIGS[0].parent / "rest-em-squad.yaml")]))
    assert (cpu.sampling.k, cpu.inner.seeds, cpu.train.sft.batch_size) == (3, [0], 1)  # as its recorded runs
    assert config_from_args(build_parser().parse_args(["adapt"])).sampling.k == 1  # other commands keep theirs


def test_sft_mask_copied_is_off_by_default_and_a_word_count_when_set():
    assert config_from_args(build_parser().parse_args(["train"])).train.sft.mask_copied is None  # the paper's loss
    on = config_from_args(build_parser().parse_args(["train", "--sft-mask-copied", "5"]))
    assert on.train.sft.mask_copied == 5
    with pytest.raises(SealError, match="train.sft.mask_copied must be a word count"):
        config_from_args(build_parser().parse_args(["train", "--sft-mask-copied", "0"]))


def test_the_config_names_exactly_the_prompt_families_the_domain_writes():
    """config.py checks families by its own list (it may not import the domain): the two must not drift."""
    from seal.config import PROMPT_FAMILIES
    from seal.domains.knowledge.prompts import SELF_EDIT_PROMPTS

    assert sorted(PROMPT_FAMILIES) == sorted([*SELF_EDIT_PROMPTS, "none"])


def _readme_commands() -> list[str]:
    """Every `seal eval|adapt|train|...` line the README and docs/ show, in code blocks and inline, and the command on each
    shipped config's first line; those with placeholders (RUN_DIR, <time>) or on run records (not in a clone) left out."""
    import re

    root = CONFIGS[0].parents[1]
    text = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            lines.append(line[line.index("seal "):] if "seal " in line else "")
    lines += re.findall(r"`(seal [a-z]+ [^`]*)`", text.replace("\n", " "))
    lines += [first.removeprefix("# ") for first in (p.read_text().splitlines()[0] for p in CONFIGS)
              if not first.endswith("\\")]
    runs = ("eval", "adapt", "train", "demo", "cpt", "continual", "generate")
    return [c for c in lines if c.split()[1:2] and c.split()[1] in runs
            and not re.search(r"<|\[|RUN_DIR|\.\.\.|--resume|--train-run|runs/", c)]


README_COMMANDS = _readme_commands()


@pytest.mark.parametrize("command", README_COMMANDS)
def test_every_command_the_readme_shows_makes_a_valid_config(command, monkeypatch):
    """Documentation rot: a command the README or docs/ give must at least parse and validate from the repository root."""
    import shlex

    monkeypatch.chdir(CONFIGS[0].parents[1])
    config = config_from_args(build_parser().parse_args(shlex.split(command)[1:]))
    assert config.conditions


def test_the_readme_and_configs_show_commands_of_both_domains():
    assert len(README_COMMANDS) >= 25 and any("--domain arc" in c for c in README_COMMANDS)
