"""`seal train`: the ReST-EM outer loop (seal.loops.rest_em) on the configured domain.

    seal train --config configs/rest-em-squad-cpu.yaml             # passages (knowledge incorporation)
    seal train --domain arc --arc-challenges ...training_challenges... # ARC recipes
"""

from __future__ import annotations

from pathlib import Path

from seal.config import RunConfig
from seal.domains.base import Domain
from seal.loops.rest_em import train


def make_domain(config: RunConfig) -> Domain:
    if config.domain == "arc":
        from seal.domains.arc.domain import ArcDomain

        return ArcDomain()
    from seal.domains.knowledge.domain import KnowledgeDomain

    return KnowledgeDomain()


def run_train(config: RunConfig, run_dir: Path, domain: Domain | None = None) -> list[dict]:
    return train(config, run_dir, domain or make_domain(config))
