"""Run metrics sent to the trackers researchers use, each through its own library (optional extras).

    seal train --config configs/rest-em-squad.yaml --log-to tensorboard --log-to mlflow
    pip install 'seal-lm[track]'          # tensorboard, wandb, mlflow-skinny

`--log-to` (RunConfig.log_to, so a resumed run logs to the same places) names any of:

  tensorboard   event files in RUN_DIR/tensorboard (torch.utils.tensorboard)
  wandb         a W&B run in RUN_DIR/wandb; offline unless WANDB_MODE says otherwise (`wandb sync` uploads it)
  mlflow        an MLflow run in MLFLOW_TRACKING_URI (a server or sqlite:///...), by default a local file
                store in RUN_DIR/mlruns (`mlflow ui --backend-store-uri RUN_DIR/mlruns`)

What is sent: the resolved config once; per trial (each record appended to a trials.jsonl or
cpt.jsonl) its accuracy, overall and by condition, and its train/eval seconds; per continual or
learn step its accuracies and loss; per ReST-EM round its mean reward, baseline, kept pairs and
SFT loss; the final summary's figures. The run directory stays the record: trackers are told
about records as they are written (seal.runs.listen), and a resumed run continues their step
counters and, for W&B and MLflow, the same tracker run (ids kept in RUN_DIR/trackers.json).
Credentials come from the environment only (WANDB_API_KEY, MLFLOW_TRACKING_*); none is written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

from seal.errors import SealError
from seal.runs import listen, write_atomic

TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
"""Tracker name -> the module it needs."""


class Tracker(Protocol):
    def config(self, values: dict[str, object]) -> None: ...

    def metrics(self, values: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def check_trackers(names: list[str]) -> None:
    """One clear error before any run directory exists when a tracker's library is missing."""
    for name in names:
        if name not in TRACKERS:
            raise SealError(f"--log-to takes {', '.join(TRACKERS)}, not {name!r}")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise SealError(f"--log-to {name} needs the {TRACKERS[name]} package: pip install 'seal-lm[track]'")


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    """{"inner": {"lr": 1e-3}} -> {"inner.lr": 1e-3}; lists become their JSON text.

    >>> flatten({"inner": {"lr": 0.001, "seeds": [0, 1]}, "name": None})
    {'inner.lr': 0.001, 'inner.seeds': '[0, 1]', 'name': 'None'}
    """
    out: dict[str, object] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value) \
                if isinstance(value, list) else str(value)
    return out


class TensorBoard:
    def __init__(self, run_dir: Path, ids: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def config(self, values):
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in values.items()))

    def metrics(self, values, step):
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self):
        self.writer.close()


class Wandb:
    def __init__(self, run_dir: Path, ids: dict):
        import wandb

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        ids.setdefault("wandb", uuid.uuid4().hex[:8])
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "seal"), name=run_dir.name, id=ids["wandb"],
                              resume="allow", dir=str(run_dir), reinit="finish_previous")
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    def config(self, values):
        self.run.config.update(values, allow_val_change=True)

    def metrics(self, values, step):
        self.run.log({**values, "step": step})

    def close(self):
        self.run.finish()


class Mlflow:
    def __init__(self, run_dir: Path, ids: dict):
        import mlflow

        self.mlflow = mlflow
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # a local file store: mlflow-skinny has no SQL backend, and the file store needs this opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (run_dir / "mlruns").resolve().as_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "seal"))
        self.run = mlflow.start_run(run_id=ids.get("mlflow"), run_name=None if ids.get("mlflow") else run_dir.name)
        ids["mlflow"] = self.run.info.run_id
        self.resumed = "mlflow_config" in ids
        ids["mlflow_config"] = True

    def config(self, values):
        if not self.resumed:  # MLflow refuses to log a parameter twice
            self.mlflow.log_params({k[:250]: str(v)[:6000] for k, v in values.items()})

    def metrics(self, values, step):
        self.mlflow.log_metrics({re.sub(r"[^\w./ -]", "_", k): float(v) for k, v in values.items()}, step=step)

    def close(self):
        self.mlflow.end_run()


MAKERS = {"tensorboard": TensorBoard, "wandb": Wandb, "mlflow": Mlflow}


class Relay:
    """Turns what a run writes into metrics with a step per series, and sends them to every tracker."""

    def __init__(self, run_dir: Path, trackers: list[Tracker]):
        self.run_dir, self.trackers = run_dir, trackers
        self.trials = sum(_lines(p) for name in ("trials.jsonl", "cpt.jsonl") for p in run_dir.rglob(name))
        self.steps = sum(_lines(p) for p in run_dir.rglob("steps.jsonl"))

    def send(self, values: dict[str, float], step: int) -> None:
        values = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and v == v}
        if values:
            for tracker in self.trackers:
                tracker.metrics(values, step)

    def __call__(self, path: Path, record: dict) -> None:
        name = path.name
        if name in ("trials.jsonl", "cpt.jsonl") and "accuracy" in record:
            condition = record.get("condition", "trial")
            timings = record.get("timings", {})
            self.send({"trial/accuracy": record["accuracy"], f"trial/{condition}/accuracy": record["accuracy"],
                       "trial/train_s": timings.get("train_s"), "trial/eval_s": timings.get("eval_s")}, self.trials)
            self.trials += 1
        elif name == "steps.jsonl":
            values = {}
            if "accuracies" in record:
                values |= {"step/new_passage_accuracy": record["accuracies"][record["step"]],
                           "step/mean_accuracy": sum(record["accuracies"]) / len(record["accuracies"])}
            losses = (record.get("train") or record).get("epoch_losses")
            if losses:
                values["step/final_loss"] = losses[-1]
            self.send(values, self.steps)
            self.steps += 1
        elif name == "round.json":
            sft = record.get("sft") or {}
            self.send({"round/mean_reward": record.get("mean_reward"), "round/reward_stderr": record.get("reward_stderr"),
                       "round/mean_baseline": record.get("mean_baseline"), "round/kept": record.get("kept"),
                       "round/sft_final_loss": (sft.get("epoch_losses") or [None])[-1]}, record.get("round", 0))
        elif name == "summary.json":
            self.send(summary_metrics(record), 0)


def summary_metrics(summary: dict) -> dict[str, float]:
    """The headline figures of any command's summary.json."""
    out = {}
    for name, c in (summary.get("conditions") or {}).items():
        for key in ("accuracy", "stderr", "success_rate", "backward_transfer", "final_accuracy", "just_learned_accuracy"):
            if isinstance(c.get(key), (int, float)):
                out[f"result/{name}/{key}"] = c[key]
    for key in ("before", "after"):
        if isinstance(summary.get(key), (int, float)):
            out[f"result/{key}"] = summary[key]
    return out


def _lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


@contextmanager
def tracking(names: list[str], run_dir: Path, config: dict) -> Iterator[None]:
    """Send the run's metrics to `names` while the body runs (nothing when `names` is empty)."""
    if not names:
        yield
        return
    check_trackers(names)
    ids_path = run_dir / "trackers.json"
    ids = json.loads(ids_path.read_text()) if ids_path.is_file() else {}
    trackers = []
    try:
        for name in dict.fromkeys(names):
            trackers.append(MAKERS[name](run_dir, ids))
        write_atomic(ids_path, json.dumps(ids))
        flat = flatten(config)
        for tracker in trackers:
            tracker.config(flat)
        with listen(Relay(run_dir, trackers)):
            yield
    finally:
        for tracker in trackers:
            tracker.close()
