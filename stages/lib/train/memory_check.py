"""The plan-time memory check of a training step: its config and GPUs -> a note, or a refusal.

``TrainArgs.plan_notes`` calls :func:`memory_notes`; ``rag plan`` prints the note under the step
and exits 2 on the ``ConfigError`` of a plan that cannot fit, naming the setting that would make
it fit. The arithmetic is :mod:`stages.lib.train.memory`; this module only reads the settings:

* the model's sizes from ``memory_model`` (a preset such as ``llama3-8b``, a checkpoint
  directory or its ``config.json``); without it there is no estimate, only a note saying so;
* precision: a DeepSpeed config with bf16/fp16 on (or ``"auto"``, which follows ``bf16``, on
  by default on bf16-capable GPUs) is "mixed" (16-bit weights, fp32 master and Adam states);
  without DeepSpeed ``dtype: float32`` is fp32 weights (bf16 autocast), ``bfloat16``/``float16``
  pure 16-bit training, ``auto`` the checkpoint's dtype (estimated as 16-bit);
* ZeRO stage from the DeepSpeed config (0 without one), split over the step's ``gpus``;
* activation checkpointing from ``gradient_checkpointing`` (None: on, as on every GPU);
* tokens per micro-step: ``per_device_batch_size x max_length`` (DPO: twice, chosen and
  rejected), plus DPO's frozen reference copy with full fine-tuning unless its log-probs are
  precomputed;
* the logits: in tiles when the installed TRL has its fused LM head (1.16 and later,
  :func:`trl_fused_lm_head`), else whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.api import ConfigError
from stages.lib.train.memory import estimate, load_shape, smallest_fit

SHIPPED = {2: "conf/deepspeed/zero2_bf16.json", 3: "conf/deepspeed/zero3_bf16.json"}
UNKNOWN_LENGTH = 4096      # tokens assumed when max_length is null


def deepspeed_settings(path: str | None) -> tuple[int, bool]:
    """(ZeRO stage, 16-bit mixed precision) of a DeepSpeed JSON config; (0, False) without one."""
    if not path:
        return 0, False
    ds = json.loads(Path(path).read_text())
    stage = int((ds.get("zero_optimization") or {}).get("stage", 0))
    half = any((ds.get(k) or {}).get("enabled") in (True, "auto") for k in ("bf16", "fp16"))
    return stage, half


def trl_fused_lm_head() -> bool:
    """Whether the installed TRL trains through its fused LM head, which never holds the whole
    logits (1.16 and later); read from the package's metadata, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        return Version(version("trl")) >= Version("1.16")
    except (PackageNotFoundError, ValueError):
        return False


def estimate_args(cfg: Any, gpus: int, *, dpo: bool) -> dict:
    """The :func:`~stages.lib.train.memory.estimate` keywords for a training config."""
    stage, half = deepspeed_settings(cfg.deepspeed)
    if cfg.deepspeed:
        precision = "mixed" if half else "fp32"
    else:
        precision = "fp32" if cfg.dtype == "float32" else "bf16"
    return dict(
        precision=precision, zero_stage=stage, gpus=max(1, gpus),
        batch=cfg.per_device_batch_size, seq_len=cfg.max_length or UNKNOWN_LENGTH,
        activation_checkpointing=cfg.gradient_checkpointing is not False,
        lora_r=cfg.lora_r if cfg.lora else None,
        reference_model=dpo and not cfg.lora and not cfg.precompute_ref_log_probs,
        sequences_per_example=2 if dpo else 1, fused_lm_head=trl_fused_lm_head())


def fixes_for(cfg: Any) -> list[tuple[str, dict]]:
    """The changes to try, each labelled with the step setting that makes it."""
    return [
        ("gradient_checkpointing: true", {"activation_checkpointing": True}),
        (f"deepspeed: {SHIPPED[2]} (ZeRO-2)", {"zero_stage": 2, "precision": "mixed"}),
        (f"deepspeed: {SHIPPED[3]} (ZeRO-3)", {"zero_stage": 3, "precision": "mixed"}),
        ("per_device_batch_size: 1 (raise grad_accum to keep the effective batch)", {"batch": 1}),
        (f"lora: true (r={cfg.lora_r})", {"lora_r": cfg.lora_r}),
    ]


def memory_notes(cfg: Any, resources: dict[str, Any], *, dpo: bool) -> list[str]:
    """One note with the per-GPU estimate; ``ConfigError`` when it exceeds ``gpu_memory_gib``."""
    gpus = int(resources.get("gpus") or 0)
    if gpus == 0:
        return []                   # CPU training: nothing to check against GPU memory
    if not cfg.memory_model:
        return ["GPU memory: no estimate (set memory_model: a preset such as llama3-8b, or the "
                "model's checkpoint directory)"]
    try:
        shape = load_shape(cfg.memory_model)
    except ValueError as err:
        raise ConfigError(f"memory_model: {err}") from None
    args = estimate_args(cfg, gpus, dpo=dpo)
    est = estimate(shape, **args)
    where = (f"ZeRO-{args['zero_stage']}" if args["zero_stage"] else "no ZeRO") + \
        f" over {gpus} GPU(s), {args['precision']} precision, " + \
        ("logits in tiles (TRL's fused LM head)" if args["fused_lm_head"] else "whole logits")
    note = f"GPU memory: {est.describe()}; {where}; budget {cfg.gpu_memory_gib:g} GiB"
    if est.fits(cfg.gpu_memory_gib):
        return [note]
    fix = smallest_fit(shape, cfg.gpu_memory_gib, fixes_for(cfg), **args)
    raise ConfigError(
        f"training would not fit: {note}",
        hint=(f"set {fix}" if fix else "no single setting makes it fit: use more or larger "
              "GPUs, LoRA with a smaller max_length, or a smaller model")
        + " (or raise gpu_memory_gib if your GPUs are larger)")
