"""Supervised fine-tuning of the self-edit generator on kept (prompt, self-edit) pairs: ReST-EM's M-step.

The generator is trained with a LoRA adapter (paper: r=64, alpha=128, lr 3e-4, 2 epochs) on
the chat-formatted self-edit prompt followed by the kept self-edit and the end-of-turn
token, with the loss on the self-edit tokens only; the adapter is then merged, so the next
round samples from (and adapts) an ordinary model that `save_pretrained` writes out.
"""

from __future__ import annotations

import torch

from seal.config import ALL_PROJECTIONS, InnerLoopConfig, SFTConfig
from seal.errors import SealError
from seal.inner_loop import NonFiniteLoss, train_adapter
from seal.models import LoadedModel, format_prompt


def encode_pair(tokenizer, prompt: str, completion: str, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + completion + end of turn, and labels masking the prompt with -100."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    prompt_ids = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=not chat)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt_ids + completion_ids)[:max_len]
    labels = ([-100] * len(prompt_ids) + completion_ids)[:max_len]
    return ids, labels


def sft_generator(loaded: LoadedModel, pairs: list[tuple[str, str]], cfg: SFTConfig, seed: int) -> dict:
    """Fine-tune `loaded.model` on `pairs` in place (LoRA, then merged); returns loss statistics."""
    from peft import LoraConfig, get_peft_model

    if not pairs:
        raise SealError("no (prompt, self-edit) pairs were kept this round, so there is nothing to fine-tune on")
    examples = [encode_pair(loaded.tokenizer, p, c, cfg.max_seq_len) for p, c in pairs]
    examples = [e for e in examples if any(label != -100 for label in e[1])]
    if not examples:
        raise SealError(f"every kept pair was cut to nothing by sft.max_seq_len={cfg.max_seq_len}")
    torch.manual_seed(seed)
    present = {name.rsplit(".", 1)[-1] for name, _ in loaded.model.named_modules()}
    targets = [m for m in ALL_PROJECTIONS if m in present] or ["q_proj", "v_proj"]
    model = get_peft_model(loaded.model, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0,
                                                     target_modules=targets, task_type="CAUSAL_LM"))
    schedule = InnerLoopConfig(lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size)
    try:
        stats = train_adapter(loaded, model, [ids for ids, _ in examples], schedule, seed,
                              labels=[labels for _, labels in examples], desc="sft generator")
    except NonFiniteLoss as err:
        raise SealError(f"generator SFT: {err} (train.sft.lr)") from None
    loaded.model = model.merge_and_unload()
    loaded.model.eval()
    return {"pairs": len(examples), "steps": stats.steps, "epoch_losses": stats.epoch_losses,
            "seconds": round(stats.seconds, 2)}
