"""Stage ``dpo``: direct preference optimisation of a causal LM on ``Preferences`` pairs (TRL).

Seed step: DynamicRAG DPO (SEEDS 1.3 step 12, 1.6): from the SFT checkpoint, on generator and
reranker pairs jointly, full fine-tuning, lr 5e-6, 1 epoch, per-device batch 1 x grad-accum 4,
cutoff 8192, cosine with 10% warmup, bf16, beta 0.1 with the sigmoid loss (LLaMA-Factory's
defaults, which the seed did not override); DeepSpeed ZeRO-3 on 8 GPUs in the paper (effective
batch 32: ``gpus: 8``).

The reference model is the input model, frozen: a second copy in memory with full fine-tuning
(or log-probs precomputed once with ``precompute_ref_log_probs``), and the input model with the
LoRA adapter disabled with ``lora: true``. ``tasks`` keeps only pairs of those roles (both by
default, as in the paper). Differences from the seed: TRL ``DPOTrainer``; the model's own chat
template. A crashed step resumes from its last checkpoint. See :mod:`stages.lib.train`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from orchestrator.api import DataError, StageContext, nonsemantic, stage
from stages.lib.train import dpo_train, progress_callback
from stages.schemas import Model, Preferences


@dataclass
class DpoConfig:
    beta: float = 0.1                    # LLaMA-Factory pref_beta default (paper)
    loss_type: str = "sigmoid"           # LLaMA-Factory pref_loss default (paper)
    tasks: list[str] = field(default_factory=lambda: ["generator", "reranker"])
    lr: float = 5e-6                     # paper
    epochs: float = 1.0                  # paper
    max_steps: int = -1                  # > 0 overrides epochs (smoke runs)
    per_device_batch_size: int = 1       # paper
    grad_accum: int = 4                  # paper
    max_length: int = 8192               # paper's cutoff_len (prompt + answer, keeps the start)
    max_prompt_length: int | None = None  # keep only the prompt's last N tokens (None: no cut)
    warmup_ratio: float = 0.1            # paper
    lr_scheduler: str = "cosine"         # paper
    weight_decay: float = 0.0
    seed: int = 42
    precompute_ref_log_probs: bool = False   # score the data with the reference once, then free it
    lora: bool = False                   # paper: full fine-tuning
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    bf16: bool | None = None             # None: on when a bf16-capable GPU is used
    dtype: str = "float32"
    gradient_checkpointing: bool | None = nonsemantic(None)
    deepspeed: str | None = nonsemantic(None)
    save_steps: int = nonsemantic(500)
    save_total_limit: int = nonsemantic(1)
    logging_steps: int = nonsemantic(1)
    dataset_num_proc: int | None = nonsemantic(None)


@stage("dpo", version=1)
def dpo(pairs: Preferences, model: Model, cfg: DpoConfig, ctx: StageContext) -> Model:
    """DPO of ``model`` on the pairs of the roles in ``tasks``; returns a full checkpoint."""
    rows = pairs.rows()
    present: dict[str, int] = {}
    for row in rows:
        present[row.get("task") or "-"] = present.get(row.get("task") or "-", 0) + 1
    kept = [row for row in rows if row.get("task") in cfg.tasks]
    ctx.log.info("dpo: %d of %d pairs kept for tasks %s (pairs by task: %s) from %s",
                 len(kept), len(rows), cfg.tasks, present, model.path)
    if rows and not kept:
        raise DataError(f"dpo: no preference pair has a task in {cfg.tasks} "
                        f"(pairs by task: {present})", hint="fix the step's 'tasks' list")
    out = ctx.new_dir("model")
    stats = dpo_train(
        model.path, kept, out,
        beta=cfg.beta, loss_type=cfg.loss_type, lora=cfg.lora, lora_r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules, lr=cfg.lr, epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_batch_size=cfg.per_device_batch_size, grad_accum=cfg.grad_accum,
        max_length=cfg.max_length, max_prompt_length=cfg.max_prompt_length,
        warmup_ratio=cfg.warmup_ratio, lr_scheduler=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay, seed=cfg.seed,
        precompute_ref_log_probs=cfg.precompute_ref_log_probs, bf16=cfg.bf16, dtype=cfg.dtype,
        gradient_checkpointing=cfg.gradient_checkpointing,
        checkpoint_dir=ctx.scratch / "trainer", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps,
        logger=ctx.log, progress=progress_callback(ctx.progress, f"{ctx.step} steps"),
        deepspeed=cfg.deepspeed, device=ctx.device, dataset_num_proc=cfg.dataset_num_proc,
    )
    if (out / "config.json").is_file():  # rank 0 (the only one whose output is committed)
        stats["pairs_by_task"] = {t: n for t, n in present.items() if t in cfg.tasks}
        (out / "training_stats.json").write_text(json.dumps(stats, indent=1))
    return out
