"""Supervised fine-tuning of the self-edit generator on kept (prompt, self-edit) pairs: ReST-EM's M-step.

The generator is trained with a LoRA adapter (paper: r=64, alpha=128, lr 3e-4, 2 epochs) on
the chat-formatted self-edit prompt followed by the kept self-edit and the end-of-turn
token, with the loss on the self-edit tokens only; the adapter is then merged, so the next
round samples from (and adapts) an ordinary model that `save_pretrained` writes out.
"""

from __future__ import annotations

import math
import random
import time

import torch
from tqdm.auto import tqdm

from seal.config import ALL_PROJECTIONS, SFTConfig
from seal.errors import SealError
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
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    total = math.ceil(len(examples) / cfg.batch_size) * cfg.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total)
    pad = loaded.tokenizer.pad_token_id
    order_rng = random.Random(seed)
    epoch_losses = []
    start = time.perf_counter()
    model.train()
    progress = tqdm(total=total, desc="sft generator", unit="step", leave=False)
    for _ in range(cfg.epochs):
        order = list(range(len(examples)))
        order_rng.shuffle(order)
        loss_sum, n_tokens = 0.0, 0
        for b in range(0, len(order), cfg.batch_size):
            batch = [examples[i] for i in order[b:b + cfg.batch_size]]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch], device=loaded.device)
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch], device=loaded.device)
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch], device=loaded.device)
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):
                raise SealError(f"generator SFT loss became {loss.item()}; lower train.sft.lr ({cfg.lr})")
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            targets_in_batch = int((labels[:, 1:] != -100).sum())
            loss_sum += loss.item() * targets_in_batch
            n_tokens += targets_in_batch
            progress.update(1)
        epoch_losses.append(loss_sum / max(n_tokens, 1))
    progress.close()
    loaded.model = model.merge_and_unload()
    loaded.model.eval()
    return {"pairs": len(examples), "steps": total, "epoch_losses": epoch_losses,
            "seconds": round(time.perf_counter() - start, 2)}
