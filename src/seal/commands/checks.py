"""What every run checks before its run directory exists, so that bad input is one line and writes nothing."""

from __future__ import annotations

from seal.config import RunConfig
from seal.errors import SealError
from seal.tracking import check_trackers


def check_before_run(config: RunConfig) -> None:
    """The command's input (data, documents, tasks, conditions), its models and its trackers."""
    if config.command == "train":
        from seal.commands.train import make_domain

        make_domain(config).check(config)
        if config.train.reuse_from:
            from seal.loops.reuse import check_reuse

            check_reuse(config)
        if config.domain == "arc" and config.arc.constrained:
            from seal.structured import check_backend

            check_backend("xgrammar")
    elif config.command == "learn":
        from seal.domains.knowledge.documents import read_documents

        read_documents(config.learn.paths, config.learn.max_words)
    elif config.domain == "arc":
        from seal.domains.arc.trials import load_tasks

        load_tasks(config.arc)
        if config.arc.constrained or "constrained" in config.conditions:
            from seal.structured import check_backend

            check_backend("xgrammar")
    else:
        from seal.domains.knowledge.trials import check_conditions, passages_for

        check_conditions(config, passages_for(config))
        if config.self_edits_from:
            from seal.domains.knowledge.self_edits import check_self_edits_from

            check_self_edits_from(config)
    check_models(config)
    check_backend_fits(config)
    check_trackers(config.log_to)
    if config.executor.kind == "ray":
        from seal.executors.ray_pool import check_ray

        check_ray()


def check_models(config: RunConfig) -> None:
    """Every model the run will load, and the judge endpoint, checked before a run directory is made."""
    from seal.models import check_model

    check_model(config.model.name)
    if config.command == "learn" and config.learn.generator:
        check_model(config.learn.generator)
    for condition in config.conditions if config.command != "learn" else []:
        if condition.startswith("generator:"):
            name = condition.removeprefix("generator:")
            if config.domain == "knowledge":  # a `seal train` run's directory: the generator it started from
                from seal.domains.knowledge.self_edits import generator_model

                name = generator_model(name)
            check_model(name)
    inner = config.inner
    if inner.grader == "judge" and inner.judge_url:
        from seal.domains.knowledge.grading import EndpointJudge

        EndpointJudge(inner.judge_model, inner.judge_url).check()
    elif inner.grader == "judge" and inner.judge_model != "local":
        check_model(inner.judge_model)


def check_backend_fits(config: RunConfig) -> None:
    """vLLM reads the model's files: commands that change the model in memory between answers cannot use it."""
    if config.model.backend != "vllm":
        return
    if config.command in ("continual", "learn"):
        raise SealError(f"seal {config.command} merges adapters into the model in memory between answers; "
                        "run it with --backend transformers")
    if config.inner.rank > config.model.vllm.max_lora_rank:
        raise SealError(f"inner.rank {config.inner.rank} is above model.vllm.max_lora_rank "
                        f"{config.model.vllm.max_lora_rank}")
    from seal.backends.vllm import check_vllm

    check_vllm()
