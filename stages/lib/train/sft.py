"""``sft_train``: supervised fine-tuning on conversational rows (TRL ``SFTTrainer``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.lib.train.args import SftConfig, validated
from stages.lib.train.examples import sft_examples
from stages.lib.train.finetune import Finetune
from stages.lib.train.hooks import TrainHooks
from stages.lib.train.trainers import sft_trainer
from stages.lib.train.vocab import add_tokens


def sft_train(model_dir: str | Path, rows: Sequence[dict], out_dir: str | Path,
              cfg: SftConfig, hooks: TrainHooks | None = None) -> dict[str, Any]:
    """Fine-tune the causal LM in ``model_dir`` on ``rows`` and write a full checkpoint.

    ``rows`` are dicts with ``messages`` (``{"role", "content"}`` dicts; ``id`` names a row in
    errors). The loss covers what ``cfg.loss_on`` says (see :mod:`stages.lib.train`).

    Returns the run's stats (:meth:`Finetune.stats`) plus ``loss_on``. Raises ``DataError``
    for empty or malformed rows, or when ``max_length`` drops every example; ``ConfigError``
    for a config out of range, a model without chat template, or ``loss_on="assistant"`` with
    a template that cannot mask assistant turns.
    """
    cfg = validated(cfg)
    examples = sft_examples(rows, cfg.loss_on)
    with Finetune("sft", model_dir, out_dir, cfg, hooks or TrainHooks()) as ft:
        tokenizer = ft.prepare()
        added = add_tokens(tokenizer, cfg.special_tokens)
        ft.build_trainer(lambda setup: sft_trainer(ft.model_dir, examples, tokenizer, cfg, setup,
                                                   added, ft.log), len(examples))
        ft.train()
        stats = ft.export()
    return {**stats, "loss_on": cfg.loss_on, "loss_average": cfg.loss_average,
            "shuffle": cfg.shuffle, "special_tokens": added}
