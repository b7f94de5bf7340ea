"""`seal continual`: the forgetting study on passages (seal.loops.continual), its matrix, heat-map and transfer.

    seal continual --data fictional --sequences 2 --sequence-length 8 --condition model --condition passage
    seal continual --config configs/continual-fictional-cpu.yaml
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from seal.config import RunConfig
from seal.domains.knowledge.grading import make_grader
from seal.domains.knowledge.trials import KnowledgeTrials, check_conditions, passages_for
from seal.loops.continual import run_continual
from seal.report import summarise_continual


def run_continual_command(config: RunConfig, run_dir: Path) -> dict:
    passages = passages_for(config)
    check_conditions(config, passages)
    inner = replace(config.inner, adapters_per_pass=1)

    def make_domain(loaded):
        return KnowledgeTrials(loaded.tokenizer, inner, make_grader(config, loaded), sampling=config.sampling)

    return summarise_continual(run_continual(config, run_dir, passages, make_domain))
