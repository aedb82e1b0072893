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
template. A crashed step resumes from its last checkpoint. The config is
:class:`stages.lib.train.DpoConfig` (the shared trainer fields of ``TrainArgs`` plus ``beta``,
``loss_type``, ``tasks``, ``max_prompt_length``, ``precompute_ref_log_probs``); see
:mod:`stages.lib.train`.
"""

from __future__ import annotations

from collections import Counter

from orchestrator.api import DataError, StageContext, did_you_mean, stage
from stages.lib.train import DpoConfig, TrainHooks, dpo_train, stats_file_text
from stages.schemas import Model, Preferences

__all__ = ["DpoConfig", "dpo"]


@stage("dpo", version=2)  # 2: a template's end of turn in the saved generation_config
def dpo(pairs: Preferences, model: Model, cfg: DpoConfig, ctx: StageContext) -> Model:
    """DPO of ``model`` on the pairs of the roles in ``tasks``; returns a full checkpoint."""
    rows = pairs.rows()
    present = dict(Counter(row.get("task") or "-" for row in rows))
    kept = [row for row in rows if row.get("task") in cfg.tasks]
    ctx.log.info("dpo: %d of %d pairs kept for tasks %s (pairs by task: %s) from %s",
                 len(kept), len(rows), cfg.tasks, present, model.path)
    if rows and not kept:
        raise DataError(f"dpo: no preference pair has a task in {cfg.tasks} "
                        f"(pairs by task: {present})", hint="fix the step's 'tasks' list")
    for task in (t for t in cfg.tasks if rows and t not in present):   # a typo trains on less
        ctx.log.warning("dpo: no preference pair has the task %r of steps.%s.tasks%s (pairs by "
                        "task: %s): it trains on the other tasks' pairs only", task, ctx.step,
                        did_you_mean(task, list(present)), present)
    out = ctx.new_dir("model")
    hooks = TrainHooks.from_context(ctx)
    stats = dpo_train(model.path, kept, out, cfg, hooks)
    if hooks.is_main:  # the other ranks' output is not committed
        stats["pairs_by_task"] = {t: n for t, n in present.items() if t in cfg.tasks}
        (out / "training_stats.json").write_text(stats_file_text(stats))
    return out
