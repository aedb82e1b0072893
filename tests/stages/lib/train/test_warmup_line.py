"""The training start line showed ``warmup 0.1`` (transformers keeps a ratio in
``warmup_steps``): it now gives the warmup's optimizer steps."""

from __future__ import annotations

import pytest

from stages.lib.train import SftConfig, TrainHooks, sft_train
from tests.stages.lib.train.conftest import FAST, chat_rows, make_logger

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("warmup, steps", [({"warmup_ratio": 0.25}, 1), ({"warmup_steps": 3}, 3)])
def test_the_start_line_gives_warmup_steps(tiny_lm, tmp_path, warmup, steps):
    logger, handler = make_logger(f"warmup_{steps}")
    cfg = SftConfig(**{**FAST, "max_steps": 4, **warmup})
    sft_train(tiny_lm, chat_rows(4), tmp_path / "sft", cfg, TrainHooks(log=logger))
    start = [m for m in handler.messages if "optimizer steps" in m]
    assert start and start[0].endswith(f"warmup {steps} step(s)"), start
