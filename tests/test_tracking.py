"""`--log-to`: each tracker receives the run's metrics through its own library (read back from its local store);
`--quiet` and RUN_DIR/log.txt; a missing extra is one clear line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from seal.cli import main
from seal.tracking import Relay
from test_cli import assert_one_clear_line, data_file, run_cli, tiny_flags

SECRET = "wandb-key-that-must-not-be-written-0123456789"


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def tracked_run(tmp_path, tiny_model_path, capsys, monkeypatch, *trackers) -> Path:
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    runs = tmp_path / "runs"
    argv = ["adapt", "--data", data_file(tmp_path), "--condition", "passage", "--condition", "data",
            *tiny_flags(tiny_model_path, runs), "--quiet"]
    for name in trackers:
        argv += ["--log-to", name]
    code, err = run_cli(capsys, argv)
    assert code == 0, err
    [run_dir] = list(runs.iterdir())
    assert not any(SECRET in p.read_text(errors="ignore") for p in run_dir.rglob("*") if p.is_file())
    return run_dir


def trials(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]


@pytest.mark.skipif(not has("tensorboard"), reason="tensorboard is not installed (pip install 'seal-lm[track]')")
def test_tensorboard_event_files_hold_every_trial_and_the_result(tmp_path, tiny_model_path, capsys, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tracked_run(tmp_path, tiny_model_path, capsys, monkeypatch, "tensorboard")
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    done = trials(run_dir)
    for key, want in (("trial/accuracy", [t["accuracy"] for t in done]),
                      ("trial/train_s", [t["timings"]["train_s"] for t in done])):  # distinct per trial
        got = events.Scalars(key)
        assert [e.step for e in got] == list(range(len(done))) and [e.value for e in got] == pytest.approx(want)
    summary = json.loads((run_dir / "summary.json").read_text())
    [result] = events.Scalars("result/data/accuracy")
    assert result.value == pytest.approx(summary["conditions"]["data"]["accuracy"])


@pytest.mark.skipif(not has("mlflow"), reason="mlflow is not installed (pip install 'seal-lm[track]')")
def test_mlflow_local_store_holds_params_and_metrics(tmp_path, tiny_model_path, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    run_dir = tracked_run(tmp_path, tiny_model_path, capsys, monkeypatch, "mlflow")
    run_id = json.loads((run_dir / "trackers.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    run = client.get_run(run_id)
    assert run.data.params["inner.rank"] == "4" and run.data.params["command"] == "adapt"
    done = trials(run_dir)
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "trial/train_s"))
    assert [s for s, _ in history] == list(range(len(done)))
    assert [v for _, v in history] == pytest.approx([t["timings"]["train_s"] for t in done])


def wandb_records(path: Path) -> list:
    """The records of an offline W&B run file: LevelDB-log framing (32 KiB blocks; 7-byte chunk headers:
    checksum, length, type FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4) after a 7-byte W&B header, each record
    a wandb_internal_pb2.Record (wandb's own protobuf)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    pos, block, out, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if left < 7 or kind == 0:  # the block's zero padding
            pos += left
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


@pytest.mark.skipif(not has("wandb"), reason="wandb is not installed (pip install 'seal-lm[track]')")
def test_wandb_offline_run_holds_the_config_and_metrics(tmp_path, tiny_model_path, capsys, monkeypatch):
    run_dir = tracked_run(tmp_path, tiny_model_path, capsys, monkeypatch, "wandb")
    run_id = json.loads((run_dir / "trackers.json").read_text())["wandb"]
    [offline] = list((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    records = wandb_records(offline)
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item} for r in records
               if r.WhichOneof("record_type") == "history"]
    done = trials(run_dir)
    per_trial = [h for h in history if "trial/train_s" in h]
    assert [h["step"] for h in per_trial] == list(range(len(done)))
    assert [h["trial/train_s"] for h in per_trial] == pytest.approx([t["timings"]["train_s"] for t in done])
    [result] = [h for h in history if "result/data/accuracy" in h]
    assert result["result/data/accuracy"] == pytest.approx(
        json.loads((run_dir / "summary.json").read_text())["conditions"]["data"]["accuracy"])
    config = {u.key for r in records if r.WhichOneof("record_type") == "config" for u in r.config.update}
    assert {"inner.rank", "command"} <= config


def test_a_missing_tracker_library_is_one_line_before_any_run_directory(tmp_path, capsys, tiny_model_path,
                                                                        monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), "--condition", "passage",
                                 *tiny_flags(tiny_model_path, runs), "--log-to", "wandb"])
    assert code == 2
    assert_one_clear_line(err, "--log-to wandb needs the wandb package")
    assert not runs.exists() or not any(runs.iterdir())


def test_quiet_runs_print_no_bars_and_the_log_file_keeps_the_messages(tmp_path, capsys, tiny_model_path):
    runs = tmp_path / "runs"
    assert main(["adapt", "--data", data_file(tmp_path), "--condition", "passage", *tiny_flags(tiny_model_path, runs),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "trial/s" not in err and "it/s" not in err and "\r" not in err
    [run_dir] = list(runs.iterdir())
    log = (run_dir / "log.txt").read_text()
    assert "| passage |" in log and f"run directory: {run_dir}" in log and "\r" not in log
    assert main(["adapt", "--data", data_file(tmp_path), "--condition", "passage", *tiny_flags(tiny_model_path, runs)]) == 0
    err = capsys.readouterr().err
    [second] = [d for d in runs.iterdir() if d != run_dir]
    assert "trial" in err  # the bars, with their rate and ETA
    assert "trial" in (second / "log.txt").read_text()  # each bar's final state, once


def test_a_resumed_run_continues_the_step_counters(tmp_path):
    (tmp_path / "trials.jsonl").write_text('{"accuracy": 0.5}\n{"accuracy": 1.0}\n')
    (tmp_path / "round-0").mkdir()
    (tmp_path / "round-0" / "trials.jsonl").write_text('{"accuracy": 0.0}\n')
    sent = []

    class Fake:
        def metrics(self, values, step):
            sent.append((step, values))

    relay = Relay(tmp_path, [Fake()])
    relay(tmp_path / "trials.jsonl", {"condition": "data", "accuracy": 0.25, "timings": {"train_s": 1.0}})
    relay(tmp_path / "round-0" / "round.json", {"round": 0, "mean_reward": 0.3, "kept": 2, "sft": None})
    assert sent[0] == (3, {"trial/accuracy": 0.25, "trial/data/accuracy": 0.25, "trial/train_s": 1.0})
    assert sent[1] == (0, {"round/mean_reward": 0.3, "round/kept": 2.0})


def test_a_stream_kept_past_the_run_writes_to_the_terminal_only(tmp_path, capsys):
    """A logging handler made during a run (vLLM's) holds the run's stderr and writes at exit, after the log closed."""
    import logging
    import sys

    from seal.progress import log_to_file

    log = tmp_path / "log.txt"
    with log_to_file(log):
        handler = logging.StreamHandler(sys.stderr)
        print("during the run", file=sys.stderr)
    handler.stream.write("after the run\n")  # no ValueError: I/O operation on closed file
    assert "after the run" in capsys.readouterr().err
    assert log.read_text() == "during the run\n"
