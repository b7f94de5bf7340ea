"""Executors: Ray tasks give the in-process results; a worker or the driver killed with SIGKILL loses and repeats
no trial. The Ray tests run on a local cluster of 2 CPU workers (skipped where Ray is not installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from seal.cli import main
from seal.config import ExecutorConfig
from seal.domains.knowledge.domain import KnowledgeDomain
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.trials import KnowledgeTrials, passages_for, plan_trials
from seal.engines import make_engine
from seal.executors.base import LocalExecutor
from seal.loops.inner import run_logged
from seal.loops.rest_em import train
from seal.models import load_model
from seal.runs import RecordLog
from helpers import kill_after_records, nan_model
from test_cli import data_file, tiny_flags
from test_rest_em import length_grader, tiny_train_config

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="Ray is not installed (pip install 'seal-lm[ray]'; scripts/test.sh installs it)")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 one-CPU workers, shared by this module's tests."""
    import ray

    from seal.executors.ray_pool import start_ray

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: the same float arithmetic in and out of Ray
    start_ray(ExecutorConfig(kind="ray", workers=2))
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    torch.set_num_threads(threads)


def keys(records, field="passage_id"):
    return [(r["condition"], r[field], r["self_edit_index"], r["seed"]) for r in records]


def ray_config(config, address):
    return replace(config, executor=ExecutorConfig(kind="ray", address=address))


def test_ray_trials_equal_in_process_trials(cluster, tmp_path, tiny_model_path):
    from seal.executors.ray_pool import RayExecutor

    config = replace(tiny_train_config(tiny_model_path), conditions=["passage", "model"])
    passages = passages_for(config)[:3]
    edits = {p.id: ["1. It is old.\n2. It is far.", "It is new and red."] for p in passages}
    trials = plan_trials(config, passages, {"model": edits})
    loaded = load_model(config.model)
    engine = make_engine(loaded, replace(config.inner, adapters_per_pass=2))
    domain = KnowledgeTrials(loaded.tokenizer, config.inner, Grader("judge", length_grader))
    local = run_logged(engine, domain, trials, RecordLog(tmp_path / "local.jsonl"), executor=LocalExecutor(engine))
    remote = run_logged(engine, domain, trials, RecordLog(tmp_path / "ray.jsonl"),
                        executor=RayExecutor(config.model, replace(config.inner, adapters_per_pass=2),
                                             ExecutorConfig(kind="ray", address=cluster), engine.slots))
    assert len(local) == len(trials) == 3 * (1 + 2) * 2
    by_key = {k: r for k, r in zip(keys(remote), remote)}
    assert sorted(by_key) == sorted(keys(local))
    for key, r in zip(keys(local), local):
        other = by_key[key]
        assert other["answers"] == r["answers"] and other["accuracy"] == r["accuracy"], key
        if r["train"]:
            assert other["train"]["epoch_losses"] == pytest.approx(r["train"]["epoch_losses"], rel=1e-5)


def kill_one_worker(found: dict, stop: threading.Event) -> None:
    """SIGKILL the first Ray worker seen running a work (its process title is ray::_run_remote)."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if pid.isdigit() and title.startswith(b"ray::_run_remote"):
                os.kill(int(pid), signal.SIGKILL)
                found["pid"] = int(pid)
                return
        time.sleep(0.005)


def test_sampling_batches_run_side_by_side_on_the_workers_as_in_process(cluster, tmp_path, tiny_model_path):
    from seal.domains.knowledge.self_edits import generate_into
    from seal.executors.ray_pool import RayExecutor

    config = tiny_train_config(tiny_model_path)
    config.sampling.batch_size = 1  # 4 batches
    passages = passages_for(config)[:4]
    loaded = load_model(config.model)
    executor = RayExecutor(config.model, config.inner, ExecutorConfig(kind="ray", address=cluster))
    for where in ("here", "ray"):
        (tmp_path / where).mkdir()
    here = generate_into(tmp_path / "here", loaded, passages, config)
    assert generate_into(tmp_path / "ray", loaded, passages, config, executor=executor) == here
    assert (tmp_path / "ray" / "self_edits.jsonl").read_text() == (tmp_path / "here" / "self_edits.jsonl").read_text()
    pids = [pid for _, pid in executor.on_model_each(lambda _, s: (time.sleep(s), os.getpid())[1], [((1.0,), {})] * 4)]
    assert len(set(pids)) >= 2  # the calls ran on both workers, not one after another on one


def test_a_tables_sampled_rows_on_ray_are_the_in_process_self_edits(cluster, tmp_path, monkeypatch, tiny_model_path):
    """`seal eval --executor ray`: the model's rows and a generator's row are sampled on the workers, as in-process."""
    from seal.executors.ray_pool import RayExecutor

    batches_on_ray = []
    real = RayExecutor.on_model_each
    monkeypatch.setattr(RayExecutor, "on_model_each",
                        lambda self, fn, calls: (batches_on_ray.extend(calls), real(self, fn, calls))[1])
    generator = tmp_path / "generator"
    shutil.copytree(tiny_model_path, generator)
    argv = ["eval", "--data", data_file(tmp_path, n=3, self_edits=False), "--condition", "model", "--condition",
            "model:rewrite", "--condition", f"generator:{generator}", "-k", "2", "--max-new-tokens", "8",
            "--gen-batch-size", "1", "--quiet"]
    assert main([*argv, *tiny_flags(tiny_model_path, tmp_path / "local")]) == 0
    assert main([*argv, *tiny_flags(tiny_model_path, tmp_path / "ray"), "--executor", "ray", "--ray-address",
                 cluster]) == 0
    assert len(batches_on_ray) == 3 * 3  # 3 rows x 3 passages, a batch each: all sampled on the workers
    [local], [ray] = (list((tmp_path / where).iterdir()) for where in ("local", "ray"))
    logs = sorted(p.name for p in local.glob("self_edits*.jsonl"))
    assert len(logs) == 3 and logs == sorted(p.name for p in ray.glob("self_edits*.jsonl"))
    for name in logs:
        assert (ray / name).read_text() == (local / name).read_text(), name


def test_a_worker_killed_mid_round_loses_and_repeats_no_trial(cluster, tmp_path, tiny_model_path):
    config = tiny_train_config(tiny_model_path, rounds=1)
    config.inner.epochs = 6  # works long enough to be caught in flight
    train(config, tmp_path / "local", KnowledgeDomain(Grader("judge", length_grader)))

    found, stop = {}, threading.Event()
    killer = threading.Thread(target=kill_one_worker, args=(found, stop), daemon=True)
    killer.start()
    try:
        train(ray_config(config, cluster), tmp_path / "ray", KnowledgeDomain(Grader("judge", length_grader)))
    finally:
        stop.set()
        killer.join()
    assert "pid" in found, "no worker was caught running a work"
    records = [json.loads(x) for x in (tmp_path / "ray" / "round-0" / "trials.jsonl").read_text().splitlines()]
    planned = [json.loads(x) for x in (tmp_path / "local" / "round-0" / "trials.jsonl").read_text().splitlines()]
    assert len(records) == len(set(keys(records))) and sorted(keys(records)) == sorted(keys(planned))
    read = lambda run, name: sorted((tmp_path / run / "round-0" / name).read_text().splitlines())  # noqa: E731
    assert read("ray", "self_edits.jsonl") == read("local", "self_edits.jsonl")  # sampled on a worker, the same
    assert read("ray", "kept.jsonl") == read("local", "kept.jsonl")  # the round's selection is the uninterrupted run's
    sft = lambda run: json.loads((tmp_path / run / "round-0" / "round.json").read_text())["sft"]  # noqa: E731
    assert sft("ray")["epoch_losses"] == pytest.approx(sft("local")["epoch_losses"], rel=1e-5)  # SFT on a worker
    ray_gen, local_gen = (AutoModelForCausalLM.from_pretrained(tmp_path / run / "round-0" / "generator").state_dict()
                          for run in ("ray", "local"))
    assert all(torch.allclose(ray_gen[k], local_gen[k], rtol=1e-4, atol=1e-6) for k in local_gen)


def test_a_driver_killed_with_sigkill_resumes_without_repeating_a_trial(cluster, tmp_path, capsys, tiny_model_path):
    runs = tmp_path / "runs"
    argv = ["adapt", "--data", data_file(tmp_path, n=4), "--condition", "passage", "--condition", "data",
            "--seeds", "0,1", *tiny_flags(tiny_model_path, runs), "--epochs", "8", "--adapters-per-pass", "2",
            "--executor", "ray", "--ray-address", cluster]
    log = kill_after_records(argv, runs, 2, timeout=300)
    assert log is not None, "the driver wrote no trial before the deadline"
    before = [json.loads(x) for x in log.read_text().splitlines() if x.endswith("}")]
    assert 0 < len(before) < 4 * 3 * 2, "kill the driver mid-run"

    assert main(["adapt", "--resume", str(log.parent)]) == 0
    after = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(after) == len(set(keys(after))) == 4 * 3 * 2  # every planned trial once
    assert after[:len(before)] == before  # nothing written before the kill was redone


def test_a_work_that_fails_by_itself_stops_the_run_as_in_process(cluster, tmp_path, capsys, tiny_model_path):
    from test_cli import assert_one_clear_line, run_cli

    broken = nan_model(tiny_model_path, tmp_path / "broken-model")  # every work's first loss is NaN
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), "--condition", "passage",
                                 *tiny_flags(broken, tmp_path / "r"), "--executor", "ray", "--ray-address", cluster])
    assert code == 1  # NonFiniteLoss crossed from the worker as itself
    assert_one_clear_line(err, "training loss became nan")


def test_a_local_run_resumed_on_ray_adds_the_missing_trials_as_in_process(cluster, tmp_path, capsys, monkeypatch,
                                                                          tiny_model_path):
    from seal.executors.ray_pool import RayExecutor

    runs = tmp_path / "runs"
    assert main(["adapt", "--data", data_file(tmp_path, n=2), "--condition", "passage", "--condition", "data",
                 *tiny_flags(tiny_model_path, runs), "--adapters-per-pass", "2", "--quiet"]) == 0
    [local] = list(runs.iterdir())
    full = (local / "trials.jsonl").read_text().splitlines()
    resumed = tmp_path / "resumed"
    shutil.copytree(local, resumed)
    (resumed / "summary.json").unlink()
    (resumed / "trials.jsonl").write_text("\n".join(full[:2]) + "\n")  # the first group of 2 trials only
    config_before = (resumed / "config.yaml").read_bytes()
    ran_on_ray = []
    real_run = RayExecutor.run
    monkeypatch.setattr(RayExecutor, "run", lambda self, works: (ran_on_ray.extend(works), real_run(self, works))[1])

    capsys.readouterr()
    assert main(["adapt", "--resume", str(resumed), "--executor", "ray", "--ray-address", cluster, "--quiet"]) == 0
    assert "on executor ray" in capsys.readouterr().out
    after = (resumed / "trials.jsonl").read_text().splitlines()
    assert after[:2] == full[:2]  # kept, not redone
    assert sum(len(w.jobs) for w in ran_on_ray) == len(full) - 2  # only the missing trials, all of them on Ray
    local_records, ray_records = [json.loads(x) for x in full], [json.loads(x) for x in after]
    by_key = {k: r for k, r in zip(keys(ray_records), ray_records)}
    assert len(by_key) == len(ray_records) and sorted(by_key) == sorted(keys(local_records))
    for key, r in zip(keys(local_records), local_records):
        assert by_key[key]["answers"] == r["answers"] and by_key[key]["accuracy"] == r["accuracy"], key
    assert (resumed / "config.yaml").read_bytes() == config_before  # the run's own settings stay its record
