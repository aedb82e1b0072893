"""Three things a training run did silently (found by an audit of the training stages):

- an example longer than ``max_length`` was trained with the end of its answer cut off (TRL
  keeps a long row's start), and nothing counted it: it is now counted and warned about;
- a run resumed the checkpoints of a run of another shape (the task key leaves out the number
  of processes, so a rerun on fewer GPUs mixed two batch sizes): they are dropped, said;
- with ``logging_steps`` above the run's steps no loss was logged (the stats were NaN), and
  the last partial logging window never was: the last step is always logged.
"""

from __future__ import annotations

import json
import math

import pytest
from transformers import TrainerCallback

from stages.lib.train import DpoConfig, SftConfig, TrainHooks, dpo_train, sft_train
from tests.stages.lib.train.conftest import FAST, chat_rows, make_logger, pref_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LONG = "Paris is the capital of France, and has been for a very long time. " * 3


def test_answers_cut_by_max_length_are_counted_and_warned(tiny_lm, tmp_path):
    rows = chat_rows(4)
    rows[0]["messages"][-1]["content"] = LONG      # its answer does not fit in 64 tokens
    logger, handler = make_logger("cut_sft")
    stats = sft_train(tiny_lm, rows, tmp_path / "sft", SftConfig(max_steps=1, **FAST),
                      TrainHooks(log=logger))
    assert stats["answers_cut"] == 1 and stats["dropped_examples"] == 0
    assert any("1 of 4 examples are longer than max_length=64" in m for m in handler.messages)

    pairs = pref_rows(4)
    pairs[1]["rejected"] = [{"role": "assistant", "content": LONG}]
    logger, handler = make_logger("cut_dpo")
    cfg = DpoConfig(max_steps=1, **FAST)
    stats = dpo_train(tiny_lm, pairs, tmp_path / "dpo", cfg, TrainHooks(log=logger))
    assert stats["answers_cut"] == 1
    assert any("dpo: 1 of 4 examples are longer" in m for m in handler.messages)
    stats = sft_train(tiny_lm, chat_rows(4), tmp_path / "fits", SftConfig(max_steps=1, **FAST))
    assert stats["answers_cut"] == 0


class Crash(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise RuntimeError("simulated crash at step 3")


def test_checkpoints_of_another_shape_are_not_resumed(tiny_lm, tmp_path):
    """The crash ran with accumulation 1, the rerun with 2: at the library level that stands
    for a rerun on another number of GPUs, which the task key does not see (checked across
    2 processes and 1 by hand: "processes 2 -> 1", trained from step 0)."""
    scratch, base = tmp_path / "scratch", dict(FAST, save_steps=2, epochs=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sft_train(tiny_lm, chat_rows(8), tmp_path / "a", SftConfig(**base),
                  TrainHooks(checkpoint_dir=scratch, callbacks=[Crash()]))
    assert (scratch / "checkpoint-2").is_dir()
    assert json.loads((scratch / "run_shape.json").read_text())["grad_accum"] == 1
    logger, handler = make_logger("shape")
    stats = sft_train(tiny_lm, chat_rows(8), tmp_path / "b", SftConfig(**dict(base, grad_accum=2)),
                      TrainHooks(log=logger, checkpoint_dir=scratch))
    assert stats["resumed_from_step"] == 0 and stats["steps"] == 2
    assert any("another shape (grad_accum 1 -> 2)" in m for m in handler.messages)

    with pytest.raises(RuntimeError, match="simulated crash"):    # the same shape resumes
        sft_train(tiny_lm, chat_rows(16), tmp_path / "c", SftConfig(**base),
                  TrainHooks(checkpoint_dir=tmp_path / "same", callbacks=[Crash()]))
    stats = sft_train(tiny_lm, chat_rows(16), tmp_path / "c", SftConfig(**base),
                      TrainHooks(checkpoint_dir=tmp_path / "same"))
    assert stats["resumed_from_step"] == 2


def test_the_last_step_is_always_logged(tiny_lm, tmp_path):
    stats = sft_train(tiny_lm, chat_rows(8), tmp_path / "o",
                      SftConfig(max_steps=3, logging_steps=5, **FAST))
    assert [s for s, _ in stats["losses"]] == [3] and math.isfinite(stats["last_loss"])
    stats = sft_train(tiny_lm, chat_rows(8), tmp_path / "p",
                      SftConfig(max_steps=5, logging_steps=2, **FAST))
    assert [s for s, _ in stats["losses"]] == [2, 4, 5]


def test_a_step_budget_far_above_the_epochs_set_beside_it_is_warned(tiny_lm, tmp_path):
    """The demos train a fixed number of steps tuned to their data: on 10 of a user's own
    questions that was 20 epochs where the recipe said 2, and nothing said so."""
    logger, handler = make_logger("budget")
    sft_train(tiny_lm, chat_rows(4), tmp_path / "o",
              SftConfig(max_steps=8, **dict(FAST, epochs=1)), TrainHooks(log=logger))
    assert any("sft: max_steps=8 over 4 examples (2 a step) is 4.0 epochs, where epochs is 1: "
               "max_steps wins" in m for m in handler.messages), handler.messages
    logger, handler = make_logger("budget_ok")
    sft_train(tiny_lm, chat_rows(4), tmp_path / "p",
              SftConfig(max_steps=6, **dict(FAST, epochs=1)), TrainHooks(log=logger))
    assert not any("max_steps wins" in m for m in handler.messages)
