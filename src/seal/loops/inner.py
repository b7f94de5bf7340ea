"""The SEAL inner loop, for every domain: apply a self-edit with a fresh LoRA fine-tune, answer, score.

    for index, record in run_trials(engine, domain, trials):   # records as their group finishes
        ...
    records = run_logged(engine, domain, trials, RecordLog(run_dir / "trials.jsonl"))   # resumable

A trial (seal.domains.base.Trial) is one input, one self-edit and one seed. The domain turns
it into a job (the self-edit's training sequences, tokenised; seed, learning rate and
epochs: `TrialDomain.prepare`), the engine trains it from a fresh initialisation drawn from
the seed, the adapted model answers the domain's questions with the input out of context
(`requests`), and the domain scores the answers (`score`: the reward is `accuracy`). The
engine is reset to the base model after every group, so nothing accumulates between trials.

Trials run `engine.slots` at a time (one on the single engine, up to `inner.adapters_per_pass`
on the batched one), jobs of similar size together so that passes stay full; every question
of a group is answered in one routed decode. Trials that train nothing are answered by the
base model, once per `shared_key`. Trials with the same job and the same requests (one input, one
self-edit, one seed: a collapsed generator writes one recipe many times) are one computation: it is
trained once, and its copies' records carry its answers and `same_as` (the trained trial's condition
and self-edit index), with no time of their own. A trial's record is yielded, and by `run_logged` written
and fsync'ed, as soon as its group's answers are scored: a kill loses at most the group in
flight (one trial on the single engine, up to `adapters_per_pass` on the batched one), and a
resume trains the same groups again, so it ends with the uninterrupted run's records. The groups
are written down before they run (`trials.groups.jsonl` beside `trials.jsonl`: each group's trial
keys and its copies), so a resume knows them whatever was added since: trials added on resume (a
row, `--train-run`) train in groups of their own, and finished trials never train again.
"""

from __future__ import annotations

import hashlib
import json
import time
from itertools import groupby
from pathlib import Path
from typing import Iterator

from seal.domains.base import Prepared, Trial, TrialDomain, record_key
from seal.engines.base import Engine, TrainStats
from seal.executors.base import Executor, LocalExecutor, Work
from seal.progress import bar
from seal.runs import RecordLog, write_atomic


def run_trials(engine: Engine, domain: TrialDomain, trials: list[Trial], desc: str | None = "trials",
               done: set[tuple] | frozenset = frozenset(), executor: Executor | None = None,
               input_blocks: int = 0, status: Path | None = None,
               plan: Path | None = None) -> Iterator[tuple[int, dict]]:
    """(trial index, record) for every trial whose key is not in `done`, in the order their groups finish.

    A resumed run trains the same groups as an uninterrupted one: `plan` (a JSON-lines file) holds every
    group formed so far, written before it runs; a planned group with any record missing (a kill, while it
    trained or while its records were written) is trained again whole (the same passes, so the same
    adapters) and only its missing records are yielded. Trials in no planned group (a row added on resume)
    are grouped among themselves (`_plan_groups`). The groups run on
    `executor` (default: one after another on `engine`; seal.executors). `input_blocks` N > 0 (inner.input_blocks):
    the trials of inputs 0..N-1 (by `item_index`) run before those of N..2N-1, and so on, each block by size.
    `status`: a JSON file rewritten after every group with the trials done of all, and the expected end at the
    rate of this process so far (`seal runs` shows it; seal.reporting.listing).
    """
    executor = executor or LocalExecutor(engine)
    prepared = [domain.prepare(t) for t in trials]
    pending = [t.key not in done for t in trials]
    untrained = [i for i, p in enumerate(prepared) if p.job is None and pending[i]]
    for i in untrained:
        if not prepared[i].answer_untrained:
            yield i, _finish(prepared[i], {}, None, 0.0)
    yield from _answer_untrained(executor, domain, trials, prepared,
                                 [i for i in untrained if prepared[i].answer_untrained])

    trained = [i for i, p in enumerate(prepared) if p.job is not None]

    def order(i: int) -> tuple:  # blocks of inputs in turn; in a block alike step counts together, so passes stay full
        job = prepared[i].job
        return (trials[i].item_index // input_blocks if input_blocks else 0, len(job.token_ids) * (job.epochs or 1),
                sum(map(len, job.token_ids)))

    trained.sort(key=order)
    groups, copies = _plan_groups(trials, trained, pending, done, executor.slots, order,
                                  lambda indices: _copies(trials, prepared, indices, domain), plan)
    works = [Work([prepared[i].job for i in group], [domain.requests(trials[i]) for i in group],
                  list(range(len(group))), f"train {len(group)} adapter(s)" if desc is not None else None)
             for group in groups]
    # Progress in trained tokens (tokens x epochs), the measure a trial's time follows: groups run smallest
    # first, so a count of trials would promise an end long before it comes.
    cost = {i: sum(map(len, prepared[i].job.token_ids)) * (prepared[i].job.epochs or 1) for g in groups for i in g}
    progress = bar(total=sum(cost.values()), desc=desc, unit="tok", unit_scale=True, disable=desc is None or not groups)
    trials_done, trials_total = 0, sum(1 + len(copies[i]) for g in groups for i in g)
    finished = len(trials) - sum(pending) + sum(pending[i] for i in untrained)  # of all trials, this far
    started, total = time.time(), sum(cost.values())
    left = total
    _write_status(status, len(trials), finished, None)
    try:
        for w, result in executor.run(works):
            group = groups[w]
            for i, st, a in zip(group, result.stats, result.answers):
                scored = domain.score(trials[i], a)
                if pending[i]:
                    yield i, _finish(prepared[i], scored, st, result.eval_s / len(group))
                same = {"same_as": {"condition": trials[i].condition, "self_edit_index": trials[i].self_edit_index}}
                for j in copies[i]:
                    if pending[j]:
                        yield j, {**_finish(prepared[j], {**scored, **same}, st, 0.0),
                                  "timings": {"train_s": 0.0, "eval_s": 0.0}}
            members = [j for i in group for j in (i, *copies[i])]
            trials_done += len(members)
            finished += sum(pending[j] for j in members)
            progress.set_postfix_str(f"{trials_done}/{trials_total} trials", refresh=False)
            progress.update(sum(cost[i] for i in group))
            left -= sum(cost[i] for i in group)
            _write_status(status, len(trials), finished, left / max(total - left, 1) * (time.time() - started))
    finally:
        progress.close()


def _plan_groups(trials: list[Trial], trained: list[int], pending: list[bool], done, slots: int, order, find_copies,
                 plan: Path | None) -> tuple[list[list[int]], dict[int, list[int]]]:
    """The groups with work left, blocks in turn, and each trained trial's copies (trained index -> the later
    trials that are the same work).

    Planned groups (the lines of `plan`) with a record missing run again as planned. Trials in no planned
    group are new: grouped `slots` at a time in `order` (after the planned groups of the block they start
    in), and appended to `plan` before anything runs. A run from before plans were written (records but
    no plan file): the trials of conditions that have records are grouped as that run grouped them, over
    all of them (`_groups_to_run`); conditions without a record are new.
    """
    index = {t.key: i for i, t in enumerate(trials)}
    trainable = set(trained)
    planned: list[list[int]] = []
    copies: dict[int, list[int]] = {}
    lines = list(RecordLog(plan)) if plan is not None and plan.exists() else None
    for line in lines or []:
        group = [index[k] for k in map(tuple, line["group"]) if index.get(k) in trainable]
        for first, copy in line.get("copies", []):
            if index.get(tuple(first)) in trainable and index.get(tuple(copy)) in trainable:
                copies.setdefault(index[tuple(first)], []).append(index[tuple(copy)])
        planned += [group] if group else []
    for i in (i for group in planned for i in group):
        copies.setdefault(i, [])
    members = set(copies) | {j for c in copies.values() for j in c}
    groups = [g for g in planned if any(pending[j] for i in g for j in (i, *copies[i]))]
    new_groups = []
    if lines is None and done:  # written before plans: its groups were formed over the conditions it had
        seen = {key[0] for key in done}
        old = [i for i in trained if trials[i].condition in seen]
        old_copies = find_copies(old)
        copies |= old_copies
        new_groups += _groups_to_run([i for i in old if i in old_copies], pending, old_copies, slots, order)
        members |= set(old)
    fresh = [i for i in trained if i not in members and pending[i]]
    fresh_copies = find_copies(fresh)
    copies |= fresh_copies
    firsts = [i for i in fresh if i in fresh_copies]
    new_groups += [firsts[g:g + slots] for g in range(0, len(firsts), slots)]  # as a run from the start groups them
    if plan is not None and new_groups:
        log = RecordLog(plan)
        for group in new_groups:
            log.append({"group": [trials[i].key for i in group],
                        "copies": [[trials[i].key, trials[j].key] for i in group for j in copies[i]]})
    return sorted(groups + new_groups, key=lambda group: order(group[0])[0]), copies  # blocks in turn; stable in one


def _groups_to_run(trained: list[int], pending: list[bool], copies: dict[int, list[int]], slots: int,
                   order) -> list[list[int]]:
    """The groups of `slots` trained trials that have work left, formed over all trials in `order`
    (a run from before plans were written).

    A group whose finished records come first in the order its records are written was cut by a kill:
    it runs again whole, so the resume ends with the uninterrupted run's records. A group with finished
    records after unfinished ones holds trials added since its members ran (a row added on resume,
    `--train-run`): its members were trained in other groups, so only its unfinished work runs,
    regrouped with the other such trials in `order` (placed after its block's other groups).

    >>> copies = {i: [] for i in range(6)}
    >>> _groups_to_run(list(range(6)), [True, False, True, False, True, True], copies, 2, lambda i: (0, i))  # 0, 2 added
    [[4, 5], [0, 2]]
    >>> _groups_to_run(list(range(4)), [False, False, False, True], copies, 2, lambda i: (0, i))   # a kill: 2, 3 again
    [[2, 3]]
    >>> _groups_to_run(list(range(6)), [True, False, True, True, False, True], copies, 3, lambda i: (i // 3, i))  # per block
    [[0, 2], [3, 5]]
    """
    kept, loose = [], []
    for g in range(0, len(trained), slots):
        group = trained[g:g + slots]
        done = [not pending[j] for i in group for j in (i, *copies[i])]  # in the order its records are written
        if all(done):
            continue
        if done == sorted(done, reverse=True):
            kept.append(group)
        else:
            loose += [i for i in group if any(pending[j] for j in (i, *copies[i]))]
    loose.sort(key=order)
    regrouped = [members[g:g + slots] for _, block in groupby(loose, key=lambda i: order(i)[0])
                 for members in [list(block)] for g in range(0, len(members), slots)]
    return sorted(kept + regrouped, key=lambda group: order(group[0])[0])  # blocks in turn; stable within one


def _copies(trials: list[Trial], prepared: list[Prepared], trained: list[int], domain: TrialDomain) -> dict[int, list[int]]:
    """The first trial of each distinct work (the same job and requests) -> the later trials that repeat it."""
    first: dict[str, int] = {}
    copies: dict[int, list[int]] = {}
    for i in trained:
        work = hashlib.sha1(repr((prepared[i].job, domain.requests(trials[i]))).encode()).hexdigest()
        if work in first:
            copies[first[work]].append(i)
        else:
            first[work], copies[i] = i, []
    return copies


def _write_status(path: Path | None, trials: int, finished: int, eta_s: float | None) -> None:
    if path is not None:
        write_atomic(path, json.dumps({"trials": trials, "finished": finished, "updated": time.time(),
                                       "eta_s": None if eta_s is None else round(eta_s)}) + "\n")


def _answer_untrained(executor: Executor, domain: TrialDomain, trials: list[Trial], prepared: list[Prepared],
                      indices: list[int]) -> Iterator[tuple[int, dict]]:
    """Trials that train nothing: the base model answers each shared key's requests once."""
    if not indices:
        return
    keys = list(dict.fromkeys(prepared[i].shared_key or f"trial-{i}" for i in indices))
    first = {k: next(i for i in indices if (prepared[i].shared_key or f"trial-{i}") == k) for k in keys}
    [(_, result)] = executor.run([Work([], [domain.requests(trials[first[k]]) for k in keys], [None] * len(keys))])
    eval_s = result.eval_s / len(keys)
    by_key = dict(zip(keys, result.answers))
    for i in indices:
        key = prepared[i].shared_key or f"trial-{i}"
        reused = {} if first[key] == i else {"answers_reused": True}
        yield i, _finish(prepared[i], {**domain.score(trials[i], by_key[key]), **reused}, None,
                         eval_s if first[key] == i else 0.0)


def _finish(prepared: Prepared, scored: dict, stats: TrainStats | None, eval_s: float) -> dict:
    record = {**prepared.record, **scored}
    train_s = 0.0
    if stats is not None:
        record["train"] = {**record.get("train", {}), "steps": stats.steps, "tokens": stats.tokens,
                           "epoch_losses": stats.epoch_losses}
        train_s = stats.seconds
    record.setdefault("train", None)
    record["timings"] = {"train_s": round(train_s, 3), "eval_s": round(eval_s, 3)}
    return record


def run_logged(engine: Engine, domain: TrialDomain, trials: list[Trial], log: RecordLog,
               desc: str | None = "trials", executor: Executor | None = None, input_blocks: int = 0) -> list[dict]:
    """Run every trial not yet in `log`, appending each record as it finishes; return all of the log's records."""
    done = {record_key(r, domain.id_field) for r in log}
    finished = sum(t.key in done for t in trials)
    if finished:
        print(f"resume: {finished} of {len(trials)} trials already in {log.path}")
    status = log.path.with_name(log.path.stem + ".progress.json")
    plan = log.path.with_name(log.path.stem + ".groups.jsonl")
    for _, record in run_trials(engine, domain, trials, desc, done, executor, input_blocks, status, plan):
        log.append(record)
    return list(log)
