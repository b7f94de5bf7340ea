"""How faithful are a small model's self-edits at each sampling temperature? (sets SamplingConfig's default)

    .venv/bin/python bench/sampling_temperature.py --passages 12 --k 2 --temperatures 0.0,0.3,0.7,1.0

On fictional passages every name and number is invented, so faithfulness can be measured
exactly: a self-edit's *grounding* is the fraction of its names (capitalised words not at
a sentence start) and numbers that occur in the passage (an invented name or number is a
hallucinated fact), and its *coverage* is the fraction of the passage's gold answers it
restates (the facts a trial must learn). Both are printed per temperature, beside the
greedy (temperature 0) reference, with the ratio to that reference and the mean number of
training sequences a self-edit yields. With `--trials`, each self-edit also runs one inner
loop (seed 0) and the no-context accuracy is reported (slow: ~40 s per trial on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from seal.config import InnerLoopConfig, ModelConfig, SamplingConfig  # noqa: E402
from seal.domains.knowledge.fictional import generate_passages  # noqa: E402
from seal.domains.knowledge.grading import Grader  # noqa: E402
from seal.domains.knowledge.quality import coverage, grounding  # noqa: E402
from seal.domains.knowledge.prompts import split_self_edit  # noqa: E402
from seal.models import load_model  # noqa: E402
from seal.domains.knowledge.self_edits import sample_self_edits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=12)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--temperatures", default="0.0,0.3,0.7,1.0")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--trials", action="store_true", help="also run one inner loop per self-edit")
    args = parser.parse_args()

    loaded = load_model(ModelConfig(device="cpu"))
    passages = generate_passages(args.passages, seed=100)  # not the demo's passages
    rows = []
    model = None
    for temperature in [float(t) for t in args.temperatures.split(",")]:
        k = 1 if temperature == 0 else args.k
        start = time.perf_counter()
        edits = sample_self_edits(loaded, passages, SamplingConfig(k=k, temperature=temperature, batch_size=6,
                                                                   max_new_tokens=args.max_new_tokens, seed=1))
        seconds = time.perf_counter() - start
        g = [grounding(e, p.context) for p, es in zip(passages, edits) for e in es]
        g = [x for x in g if x is not None]
        c = [coverage(e, [q.answer for q in p.questions]) for p, es in zip(passages, edits) for e in es]
        n = [len(split_self_edit(e)) for es in edits for e in es]
        row = {"temperature": temperature, "self_edits": sum(map(len, edits)), "grounding": sum(g) / max(len(g), 1),
               "coverage": sum(c) / len(c), "sequences": sum(n) / len(n), "gen_s": seconds}
        if args.trials:
            from seal.domains.base import Trial
            from seal.domains.knowledge.trials import KnowledgeTrials
            from seal.engines import make_engine
            from seal.loops.inner import run_trials

            cfg = InnerLoopConfig()
            if model is None:  # the engine, installed once
                model = make_engine(loaded, cfg)
            trials = [Trial("model", p, i, e, 0, edit) for i, (p, es) in enumerate(zip(passages, edits))
                      for e, edit in enumerate(es)]
            accs = [r["accuracy"] for _, r in run_trials(model, KnowledgeTrials(loaded.tokenizer, cfg,
                                                                                 Grader("contains")), trials)]
            row["accuracy"] = sum(accs) / len(accs)
        rows.append(row)
        print(row, flush=True)

    reference = rows[0]
    print(f"\n{'temperature':>11} {'self-edits':>10} {'grounding':>9} {'ratio':>6} {'coverage':>8} {'ratio':>6} "
          f"{'sequences':>9}" + (f" {'accuracy':>8}" if args.trials else ""))
    for r in rows:
        print(f"{r['temperature']:>11.1f} {r['self_edits']:>10} {r['grounding']:>9.2f} "
              f"{r['grounding'] / max(reference['grounding'], 1e-9):>6.2f} {r['coverage']:>8.2f} "
              f"{r['coverage'] / max(reference['coverage'], 1e-9):>6.2f} {r['sequences']:>9.1f}"
              + (f" {r['accuracy']:>8.2f}" if args.trials else ""))


if __name__ == "__main__":
    main()
