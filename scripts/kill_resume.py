"""Fault injection: kill `seal train` with SIGKILL at random moments, resume it, and check that every
resumed run ends equal to an uninterrupted one.

    .venv/bin/python scripts/kill_resume.py --kills 300            # about 40 minutes on 2 CPU cores
    .venv/bin/python scripts/kill_resume.py --kills 5 --workdir /tmp/kills

A tiny random Llama is built here (as in the tests). One uninterrupted `seal train` run (2 rounds
of 2 fictional passages x 2 self-edits x 2 seeds, the batched engine) is the reference. Then,
until `--kills` kills have been made: a new run is started and killed with SIGKILL after a
random time in [0, the reference's wall time]; it is resumed, and each resume is killed again
with probability `--again` at a random time, until one finishes. A finished run must equal the
reference: every round's self-edits, baselines, trial records (answers, losses, rewards), kept
pairs, round summary and the saved generator's weights, byte for byte. A kill before the run
directory holds its config.yaml leaves nothing to resume: the run starts over (counted apart).
Prints one line per run and a summary; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
name: kill
data: {source: fictional, num_passages: 4}
sampling: {k: 2, temperature: 1.0, max_new_tokens: 12, batch_size: 2}
inner: {rank: 4, alpha: 8, lr: 0.05, epochs: 2, answer_max_new_tokens: 5, seeds: [0, 1],
        target_modules: [q_proj, v_proj], adapters_per_pass: 3}
train: {rounds: 2, passages_per_round: 2, sft: {rank: 4, alpha: 8, lr: 0.01, epochs: 1}}
"""


def seal(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.Popen([sys.executable, "-m", "seal.cli", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def fingerprint(run_dir: Path) -> dict:
    """Everything a finished run decided, with timings left out."""
    out = {}
    for round_dir in sorted(run_dir.glob("round-*")):
        def lines(name, keep=None):
            path = round_dir / name
            records = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
            for r in records:
                r.pop("timings", None)
            return sorted(json.dumps(r, sort_keys=True) for r in records)

        summary = json.loads((round_dir / "round.json").read_text())
        summary.pop("timings", None)
        if summary.get("sft"):
            summary["sft"].pop("seconds", None)
        weights = round_dir / "generator" / "model.safetensors"
        out[round_dir.name] = {
            "self_edits": lines("self_edits.jsonl"), "baselines": lines("baselines.jsonl"),
            "trials": lines("trials.jsonl"), "kept": lines("kept.jsonl"), "round": summary,
            "passages": (round_dir / "passages.json").read_text(),
            "generator": hashlib.sha256(weights.read_bytes()).hexdigest() if weights.exists() else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=300)
    ap.add_argument("--again", type=float, default=0.5, help="chance that a resume is killed too")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None, help="write the counts as JSON here")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="seal-kills-"))
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import build_tiny_model

    model = build_tiny_model(work / "tiny-model") if not (work / "tiny-model" / "config.json").exists() \
        else work / "tiny-model"
    (work / "kill.yaml").write_text(CONFIG + f"model: {{name: {model}, device: cpu}}\n")
    flags = ["--config", str(work / "kill.yaml")]

    start = time.perf_counter()
    ref = seal("train", *flags, "--runs-root", str(work / "reference"))
    if ref.wait() != 0:
        raise SystemExit("the reference run failed")
    wall = time.perf_counter() - start
    [ref_dir] = list((work / "reference").iterdir())
    expected = fingerprint(ref_dir)
    print(f"reference: {wall:.1f} s, {len(expected)} rounds, in {ref_dir}", flush=True)

    rng = random.Random(args.seed)
    kills = before_config = runs = mismatches = 0
    while kills < args.kills:
        runs += 1
        root = work / "runs" / f"{runs:04d}"
        process, run_kills = seal("train", *flags, "--runs-root", str(root)), 0
        while True:
            time.sleep(rng.uniform(0, wall))
            if process.poll() is not None:
                break
            process.kill()
            process.wait()
            kills += 1
            run_kills += 1
            dirs = list(root.iterdir()) if root.exists() else []
            if not dirs or not (dirs[0] / "config.yaml").exists():  # killed before the run existed: start over
                before_config += 1
                for d in dirs:
                    subprocess.run(["rm", "-rf", str(d)], check=True)
                process = seal("train", *flags, "--runs-root", str(root))
                continue
            process = seal("train", "--resume", str(dirs[0]))
            if rng.random() >= args.again:
                break
        code = process.wait()
        [run_dir] = list(root.iterdir())
        same = code == 0 and fingerprint(run_dir) == expected
        mismatches += not same
        print(f"run {runs}: {run_kills} kill(s), exit {code}, {'equal' if same else 'DIFFERENT'} ({run_dir})", flush=True)
    counts = {"kills": kills, "runs": runs, "killed_before_config": before_config, "different": mismatches,
              "reference_s": wall}
    print(json.dumps(counts))
    if args.out:
        Path(args.out).write_text(json.dumps(counts, indent=1))
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
