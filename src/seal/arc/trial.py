"""One ARC trial: a recipe (the self-edit) -> test-time training -> augmented, voted answers -> solved or not.

    adapter = attach_lora(loaded.model, inner)                          # once per process
    record  = arc_trial(loaded, adapter, task, recipe_text, seed, inner, arc)

`recipe_text=None` is in-context learning alone (no training). A reply that is not a valid
recipe, or whose training exceeds the step budget, gets the no-op adapter (the base model
answers) and is marked `invalid_recipe` / `over_budget`, so that ReST-EM never keeps it. The
base model is restored exactly after every trial, as in the passages domain.
"""

from __future__ import annotations

import time

from seal.arc.augment import GROUPS
from seal.arc.grids import Task, format_grid
from seal.arc.recipe import LR_RANGE, EPOCHS_RANGE, Recipe, RecipeError, check_budget, parse_recipe
from seal.arc.ttt import encode_ttt, is_solved, solve, ttt_examples
from seal.config import ArcConfig, InnerLoopConfig
from seal.generation import greedy_answers
from seal.inner_loop import reset_adapter, train_adapter
from seal.models import LoadedModel

RECIPE_PROMPT = (
    "Here are the demonstrations of a visual puzzle; each grid row is a line of colour digits.\n\n{demos}\n\n"
    "Before solving it, you will fine-tune yourself on augmented copies of these demonstrations. Choose the "
    "training recipe and reply with one JSON object with the keys: \"augmentations\" (a list drawn from "
    "{groups}), \"learning_rate\" (a number from {lr_low:g} to {lr_high:g}), \"epochs\" (an integer from "
    "{ep_low} to {ep_high}) and \"loss\" (\"all\" to learn every token, \"output\" to learn only output grids)."
)


def recipe_prompt(task: Task) -> str:
    demos = "\n\n".join(f"Input:\n{format_grid(e.input)}\nOutput:\n{format_grid(e.output)}" for e in task.train)
    return RECIPE_PROMPT.format(demos=demos, groups=", ".join(f'"{g}"' for g in GROUPS), lr_low=LR_RANGE[0],
                                lr_high=LR_RANGE[1], ep_low=EPOCHS_RANGE[0], ep_high=EPOCHS_RANGE[1])


UNTRAINED_STATUSES = ("icl", "invalid_recipe", "over_budget")


def untrained_answers(records) -> dict[str, dict]:
    """The untrained model's answers per task, from earlier records of trials that trained nothing."""
    return {r["task_id"]: {k: r[k] for k in ("solved", "accuracy", "attempts")} for r in records
            if r["status"] in UNTRAINED_STATUSES}


def arc_trial(loaded: LoadedModel, model, task: Task, recipe_text: str | Recipe | None, seed: int,
              inner: InnerLoopConfig, arc: ArcConfig, untrained: dict[str, dict] | None = None) -> dict:
    """One trial's record. `untrained` (task id -> answers) shares the untrained model's answers
    between the trials that train nothing (ICL, invalid and over-budget recipes): they are the
    same greedy decode of the same model, so it runs once per task."""
    record: dict = {"task_id": task.id, "seed": seed,
                    "self_edit": recipe_text.to_json() if isinstance(recipe_text, Recipe) else recipe_text}
    reset_adapter(model, seed)
    train_s = 0.0
    recipe = None
    if recipe_text is None:
        record["status"] = "icl"
    else:
        try:
            recipe = recipe_text if isinstance(recipe_text, Recipe) else parse_recipe(recipe_text)
            examples = ttt_examples(task, recipe, seed, arc.max_examples)
            encoded = [e for e in (encode_ttt(loaded.tokenizer, x, recipe.loss, arc.max_tokens) for x in examples) if e]
            if not encoded:
                raise RecipeError(f"every TTT sequence is longer than arc.max_tokens={arc.max_tokens}")
            check_budget(recipe, len(encoded), arc.max_steps)
        except RecipeError as err:
            record.update(status="over_budget" if "budget" in str(err) or "max_tokens" in str(err) else "invalid_recipe",
                          error=str(err))
            recipe = None
        else:
            start = time.perf_counter()
            stats = train_adapter(loaded, model, [i for i, _ in encoded], inner, seed, lr=recipe.learning_rate,
                                  epochs=recipe.epochs, labels=[lab for _, lab in encoded])
            train_s = time.perf_counter() - start
            record.update(status="ok", recipe=recipe.to_json(), train={"sequences": len(encoded), "steps": stats.steps,
                                                                       "tokens": stats.tokens, "epoch_losses": stats.epoch_losses})

    def generate_fn(prompts, max_new_tokens):
        return greedy_answers(loaded, prompts, max_new_tokens=max_new_tokens, batch_size=inner.answer_batch_size,
                              chat=False, stop=["\n\n"])  # a blank line ends the grid

    start = time.perf_counter()
    if recipe is None and untrained is not None and task.id in untrained:
        record.update(untrained[task.id], answers_reused=True)
        reset_adapter(model, seed)
    else:
        try:
            attempts = solve(generate_fn, task, arc.attempts)
        finally:
            reset_adapter(model, seed)
        solved = is_solved(task, attempts)
        record.update(solved=solved, accuracy=float(solved), attempts=[[format_grid(g) for g in a] for a in attempts])
        if recipe is None and untrained is not None:
            untrained[task.id] = {k: record[k] for k in ("solved", "accuracy", "attempts")}
    record["timings"] = {"train_s": round(train_s, 3), "eval_s": round(time.perf_counter() - start, 3)}
    return record
