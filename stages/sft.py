"""Stage ``sft``: supervised fine-tuning of a causal LM on conversational ``Chat`` rows (TRL).

Seed step: DynamicRAG SFT (SEEDS 1.3 step 8, 1.6): one model trained for both roles at once on
reranker behaviour-cloning rows, generator rows (and Alpaca rows if the recipe adds them), full
fine-tuning, lr 1e-5, 3 epochs, per-device batch 2 x grad-accum 2, cutoff 8192, cosine with 10%
warmup, bf16; LLaMA-Factory, DeepSpeed ZeRO-3 on 8 GPUs in the paper. The defaults below are
those; the paper's effective batch (2 x 2 x 8 GPUs = 32) needs ``gpus: 8`` in the recipe (with
``gpus: 1`` the same config trains with an effective batch of 4).

Differences from the seed: TRL ``SFTTrainer`` instead of LLaMA-Factory; rows are rendered with
the model's own chat template (the one inference uses) instead of a separately configured
LLaMA-Factory template; the loss is on the final assistant turn (LLaMA-Factory's default for
single-turn rows). ``lora: true`` trains a LoRA adapter and merges it, so the output is always a
plain checkpoint (the adapter is kept in ``adapter/``). A crashed step resumes from its last
checkpoint in the step's scratch directory. See :mod:`stages.lib.train`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from orchestrator.api import StageContext, nonsemantic, stage
from stages.lib.train import progress_callback, sft_train
from stages.schemas import Chat, Model


@dataclass
class SftConfig:
    lr: float = 1e-5                     # paper
    epochs: float = 3.0                  # paper
    max_steps: int = -1                  # > 0 overrides epochs (smoke runs)
    per_device_batch_size: int = 2       # paper
    grad_accum: int = 2                  # paper
    max_length: int = 8192               # paper's cutoff_len; longer rows keep their start
    warmup_ratio: float = 0.1            # paper
    lr_scheduler: str = "cosine"         # paper
    weight_decay: float = 0.0
    seed: int = 42
    loss_on: Literal["completion", "assistant", "all"] = "completion"
    lora: bool = False                   # paper: full fine-tuning
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    bf16: bool | None = None             # None: on when a bf16-capable GPU is used
    dtype: str = "float32"               # weights while training: float32 (+bf16 autocast) or bfloat16
    gradient_checkpointing: bool | None = nonsemantic(None)   # None: on GPU, off on CPU
    deepspeed: str | None = nonsemantic(None)   # DeepSpeed JSON config (ZeRO-3 in the paper)
    save_steps: int = nonsemantic(500)   # checkpoint interval in optimizer steps (resume)
    save_total_limit: int = nonsemantic(1)
    logging_steps: int = nonsemantic(1)
    dataset_num_proc: int | None = nonsemantic(None)


@stage("sft", version=1)
def sft(data: Chat, model: Model, cfg: SftConfig, ctx: StageContext) -> Model:
    """Fine-tune ``model`` on the chat rows; returns a full checkpoint (LoRA merged if used)."""
    rows = data.rows()
    tasks: dict[str, int] = {}
    for row in rows:
        tasks[row.get("task") or "-"] = tasks.get(row.get("task") or "-", 0) + 1
    ctx.log.info("sft: %d chat rows by task %s from %s", len(rows), tasks, model.path)
    out = ctx.new_dir("model")
    stats = sft_train(
        model.path, rows, out,
        lora=cfg.lora, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules, lr=cfg.lr, epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_batch_size=cfg.per_device_batch_size, grad_accum=cfg.grad_accum,
        max_length=cfg.max_length, warmup_ratio=cfg.warmup_ratio, lr_scheduler=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay, seed=cfg.seed, loss_on=cfg.loss_on, bf16=cfg.bf16,
        dtype=cfg.dtype, gradient_checkpointing=cfg.gradient_checkpointing,
        checkpoint_dir=ctx.scratch / "trainer", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps,
        logger=ctx.log, progress=progress_callback(ctx.progress, f"{ctx.step} steps"),
        deepspeed=cfg.deepspeed, device=ctx.device, dataset_num_proc=cfg.dataset_num_proc,
    )
    if (out / "config.json").is_file():  # rank 0 (the only one whose output is committed)
        (out / "training_stats.json").write_text(json.dumps({**stats, "tasks": tasks}, indent=1))
    return out
