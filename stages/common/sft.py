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
checkpoint in the step's scratch directory. The config is :class:`stages.lib.train.SftConfig`
(the shared trainer fields of ``TrainArgs`` plus ``loss_on``); see :mod:`stages.lib.train`.
"""

from __future__ import annotations

from collections import Counter

from orchestrator.api import StageContext, stage
from stages.lib.train import SftConfig, TrainHooks, sft_train, stats_file_text
from stages.schemas import Chat, Model

__all__ = ["SftConfig", "sft"]


@stage("sft", version=2)  # 2: a template's end of turn in generation_config; padded vocab kept
def sft(data: Chat, model: Model, cfg: SftConfig, ctx: StageContext) -> Model:
    """Fine-tune ``model`` on the chat rows; returns a full checkpoint (LoRA merged if used)."""
    rows = data.rows()
    tasks = dict(Counter(row.get("task") or "-" for row in rows))
    ctx.log.info("sft: %d chat rows by task %s from %s", len(rows), tasks, model.path)
    out = ctx.new_dir("model")
    hooks = TrainHooks.from_context(ctx)
    stats = sft_train(model.path, rows, out, cfg, hooks)
    if hooks.is_main:  # the other ranks' output is not committed
        (out / "training_stats.json").write_text(stats_file_text({**stats, "tasks": tasks}))
    return out
