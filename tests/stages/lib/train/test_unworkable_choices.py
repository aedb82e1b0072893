"""Choices that would crash the training step only after every upstream step has run are not
choices: ``rag plan`` refuses them (audit_train41, finding 5), saying why and what it accepts (a
review of b1b300b: the reasons were written but only "expected one of" was shown, and for
``cosine_with_min_lr`` a "did you mean" named another schedule)."""

from __future__ import annotations

import typing

import pytest

from orchestrator.api import ConfigError
from orchestrator.stage_config import check_step_config
from stages.lib.train.args import (
    DPO_LOSSES_LEFT_OUT,
    SCHEDULERS_LEFT_OUT,
    DpoConfig,
    Scheduler,
    SftConfig,
)

UNWORKABLE_SCHEDULERS = ["reduce_lr_on_plateau", "greedy", "cosine_with_min_lr",
                         "cosine_warmup_with_min_lr", "warmup_stable_decay"]


@pytest.mark.parametrize("scheduler", UNWORKABLE_SCHEDULERS)
def test_the_plan_refuses_a_scheduler_that_needs_an_eval_set_or_kwargs(scheduler):
    with pytest.raises(ConfigError) as err:
        check_step_config(SftConfig, {"lr_scheduler": scheduler}, "steps.sft")
    assert err.value.message == (f"steps.sft.lr_scheduler: {scheduler!r} is not offered here: "
                                 f"it {SCHEDULERS_LEFT_OUT[scheduler]}; choose one of "
                                 f"{list(typing.get_args(Scheduler))}")
    assert "did you mean" not in err.value.message


@pytest.mark.parametrize("loss_type", ["exo_pair", "robust"])
def test_the_plan_refuses_a_dpo_loss_that_needs_label_smoothing(loss_type):
    with pytest.raises(ConfigError, match=rf"^steps\.dpo\.loss_type: '{loss_type}' is not "
                                          rf"offered here: it .*label_smoothing.*; choose one of "
                                          rf"\[.*'sigmoid'.*\]$"):
        check_step_config(DpoConfig, {"loss_type": loss_type}, "steps.dpo")
    assert "label_smoothing" in DPO_LOSSES_LEFT_OUT[loss_type]


@pytest.mark.parametrize("scheduler", typing.get_args(Scheduler))
def test_every_accepted_scheduler_builds_and_steps_with_the_arguments_ragline_passes(
        tmp_path, scheduler):
    """What the Trainer does with ragline's arguments (``trl_args``: no eval set, no
    ``lr_scheduler_kwargs``), without a model: each accepted scheduler must get through it."""
    import torch
    from transformers import get_scheduler

    from stages.lib.train.trainers import RunSetup, trl_args

    setup = RunSetup(device="cpu", bf16=False, gradient_checkpointing=False,
                     checkpoint_dir=tmp_path, resumable=False)
    args = trl_args(SftConfig(lr_scheduler=scheduler, max_steps=4, warmup_ratio=0.25), setup)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-3)
    schedule = get_scheduler(args.lr_scheduler_type, optimizer=optimizer,
                             num_warmup_steps=args.get_warmup_steps(4), num_training_steps=4,
                             scheduler_specific_kwargs=args.lr_scheduler_kwargs)
    for _ in range(4):
        optimizer.step()
        schedule.step()
    assert all(lr >= 0 for lr in schedule.get_last_lr())
