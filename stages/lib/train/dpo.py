"""``dpo_train``: direct preference optimisation on conversational pairs (TRL ``DPOTrainer``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.lib.train.args import DpoConfig, validated
from stages.lib.train.examples import dpo_examples, keep_prompt_end
from stages.lib.train.finetune import Finetune
from stages.lib.train.hooks import TrainHooks
from stages.lib.train.trainers import dpo_trainer


def dpo_train(model_dir: str | Path, rows: Sequence[dict], out_dir: str | Path,
              cfg: DpoConfig, hooks: TrainHooks | None = None) -> dict[str, Any]:
    """DPO of the causal LM in ``model_dir`` on ``rows`` and write a full checkpoint.

    ``rows`` are dicts with ``prompt`` (messages ending with a user turn), ``chosen`` and
    ``rejected`` (messages ending with an assistant turn): TRL's conversational preference
    format. Pairs whose chosen and rejected are identical carry no signal and are dropped.
    The reference model is the initial policy, frozen: a second copy with full fine-tuning
    (scored once up front with ``precompute_ref_log_probs``), the policy with its adapter
    disabled with LoRA (a new adapter starts at zero, so that is the initial model).

    ``max_length`` truncates prompt + answer keeping the start; ``max_prompt_length`` first
    cuts the prompt to its last tokens (:func:`keep_prompt_end`). Pairs whose prompt alone
    fills ``max_length`` are dropped.

    Returns the run's stats plus ``reference``, ``identical_pairs_dropped``,
    ``reward_margins`` (``[step, margin]``), ``first_reward_margin``, ``last_reward_margin``
    and ``last_reward_accuracy``.
    """
    cfg = validated(cfg)
    hooks = hooks or TrainHooks()
    examples, identical = dpo_examples(rows)
    if identical and hooks.is_main:
        hooks.log.warning("dpo: dropped %d pair(s) whose chosen and rejected are identical",
                          identical)
    with Finetune("dpo", model_dir, out_dir, cfg, hooks) as ft:
        tokenizer = ft.prepare()
        if cfg.max_prompt_length is not None:
            examples = [{**ex, "prompt": keep_prompt_end(ex["prompt"], tokenizer,
                                                         cfg.max_prompt_length)}
                        for ex in examples]
        ft.build_trainer(lambda setup: dpo_trainer(ft.model_dir, examples, tokenizer, cfg, setup),
                         len(examples))
        ft.train()
        stats = ft.export()
    return {**stats, **reward_stats(ft.record["history"]), "reference": ft.reference,
            "identical_pairs_dropped": identical}


def reward_stats(history: list[dict]) -> dict[str, Any]:
    """DPO reward margins and accuracy from the trainer's log history (training steps only).

    >>> reward_stats([{"step": 1, "loss": 0.69, "rewards/margins": 0.0, "rewards/accuracies": 0.0},
    ...               {"step": 2, "loss": 0.6, "rewards/margins": 0.2, "rewards/accuracies": 1.0}])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'reward_margins': [[1, 0.0], [2, 0.2]], 'first_reward_margin': 0.0,
     'last_reward_margin': 0.2, 'last_reward_accuracy': 1.0}
    """
    steps = [h for h in history if "loss" in h]
    margins = [[h["step"], float(h["rewards/margins"])] for h in steps if "rewards/margins" in h]
    accs = [float(h["rewards/accuracies"]) for h in steps if "rewards/accuracies" in h]
    return {"reward_margins": margins,
            "first_reward_margin": margins[0][1] if margins else math.nan,
            "last_reward_margin": margins[-1][1] if margins else math.nan,
            "last_reward_accuracy": accs[-1] if accs else math.nan}
