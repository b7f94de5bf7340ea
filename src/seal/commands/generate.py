"""`seal generate`: sample self-edits for passages into a run directory, for a later `seal adapt --condition RUN_DIR`.

    seal generate --data ../shared/data/squad/eval200_gpt41_self_edits.json --num-passages 20 -k 3
"""

from __future__ import annotations

from pathlib import Path

from seal.config import RunConfig
from seal.domains.knowledge.self_edits import generate_into
from seal.domains.knowledge.trials import passages_for
from seal.models import load_model


def run_generate(config: RunConfig, run_dir: Path) -> dict[str, list[str]]:
    return generate_into(run_dir, load_model(config.model), passages_for(config), config)
