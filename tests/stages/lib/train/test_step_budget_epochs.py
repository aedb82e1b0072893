"""The step-budget warning counted epochs as ``max_steps x rows a step / examples``: 6 steps of
batch 4 over 5 examples were "4.8 epochs" and warned, where the Trainer runs 2 steps an epoch
(the last batch short), 3.0 epochs (a review of 58137ff)."""

from __future__ import annotations

import pytest

from stages.lib.train import SftConfig, TrainHooks, sft_train
from tests.stages.lib.train.conftest import FAST, chat_rows, make_logger

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("steps, warned", [(6, None), (7, "3.5 epochs")])
def test_epochs_are_counted_as_the_trainer_counts_them(tiny_lm, tmp_path, steps, warned):
    logger, handler = make_logger(f"budget_{steps}")
    cfg = SftConfig(**{**FAST, "per_device_batch_size": 4, "max_steps": steps, "epochs": 1})
    stats = sft_train(tiny_lm, chat_rows(5), tmp_path / "sft", cfg, TrainHooks(log=logger))
    assert stats["steps"] == steps
    budget = [m for m in handler.messages if "max_steps wins" in m]
    assert (budget == []) if warned is None else (warned in budget[0]), budget
