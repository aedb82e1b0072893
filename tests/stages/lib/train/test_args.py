"""stages/lib/train/args.py: the trainer configs' choices, ranges and cross-field rules."""

from __future__ import annotations

import json
import re
import typing

import pytest

from orchestrator.api import ConfigError
from stages.lib.train.args import (
    DPO_LOSSES_LEFT_OUT,
    SCHEDULERS_LEFT_OUT,
    DpoConfig,
    DpoLoss,
    Scheduler,
    SftConfig,
    TrainArgs,
    validated,
)


def test_defaults_are_the_papers_and_shared_fields_are_declared_once():
    sft, dpo = SftConfig(), DpoConfig()
    assert (sft.lr, sft.epochs, sft.per_device_batch_size, sft.grad_accum) == (1e-5, 3.0, 2, 2)
    assert (dpo.lr, dpo.epochs, dpo.per_device_batch_size, dpo.grad_accum) == (5e-6, 1.0, 1, 4)
    assert (dpo.beta, dpo.loss_type, dpo.tasks) == (0.1, "sigmoid", ["generator", "reranker"])
    shared = set(TrainArgs.__dataclass_fields__)
    assert set(SftConfig.__dataclass_fields__) - shared == {"loss_on", "special_tokens",
                                                            "new_token_init", "masked_spans",
                                                            "loss_average", "shuffle"}
    assert set(DpoConfig.__dataclass_fields__) - shared == {
        "beta", "loss_type", "tasks", "max_prompt_length", "precompute_ref_log_probs"}


@pytest.mark.parametrize("cls, values, message", [
    (DpoConfig, {"loss_type": "sigmodi"}, r"DpoConfig\.loss_type: .*'sigmoid'.*got 'sigmodi'"),
    (DpoConfig, {"beta": 0}, r"DpoConfig\.beta: Input should be greater than 0, got 0"),
    (SftConfig, {"warmup_ratio": 1.5}, r"SftConfig\.warmup_ratio: .*less than 1"),
    (SftConfig, {"lr_scheduler": "cosin"}, r"SftConfig\.lr_scheduler: .*got 'cosin'"),
    (SftConfig, {"per_device_batch_size": 0}, r"per_device_batch_size: .*greater than or equal to 1"),
    (SftConfig, {"loss_on": "prompt"}, r"SftConfig\.loss_on: .*'completion'"),
])
def test_choices_and_ranges_are_refused_with_the_field_named(cls, values, message):
    with pytest.raises(ConfigError, match=message):
        validated(cls(**values))


def test_cross_field_rules_run_when_the_config_is_built(tmp_path):
    with pytest.raises(ConfigError, match=r"max_steps must be -1 \(train by epochs\) or > 0, got 0"):
        SftConfig(max_steps=0)
    with pytest.raises(ConfigError, match="epochs must be > 0 when max_steps is -1"):
        SftConfig(epochs=0)
    assert SftConfig(epochs=0, max_steps=5).max_steps == 5
    with pytest.raises(ConfigError, match="masked_spans: .* needs two different, non-empty tokens"):
        SftConfig(masked_spans=[("<p>", "<p>")])
    with pytest.raises(ConfigError, match="special_tokens lists a token twice"):
        SftConfig(special_tokens=["[R]", "[R]"])
    with pytest.raises(ConfigError, match=r"max_prompt_length \(64\) must be below max_length"):
        DpoConfig(max_prompt_length=64, max_length=64)
    with pytest.raises(ConfigError, match="does not exist"):
        SftConfig(deepspeed=str(tmp_path / "none.json"))
    zero3 = tmp_path / "z3.json"
    zero3.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    with pytest.raises(ConfigError, match="stage3_gather_16bit_weights_on_model_save"):
        DpoConfig(deepspeed=str(zero3))


def test_validated_returns_an_equal_config_with_numbers_normalised():
    cfg = validated(DpoConfig(lr=1, beta=0.2, target_modules=["q_proj", "v_proj"]))
    assert isinstance(cfg, DpoConfig) and cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.target_modules == ["q_proj", "v_proj"] and cfg.beta == 0.2


def test_loss_types_match_the_installed_trl():
    """The Literal is TRL's list minus the losses left out, each with its reason: an upgrade
    that adds or removes one must fail here."""
    import dataclasses

    from trl import DPOConfig as TrlDpoConfig

    help_text = {f.name: f for f in dataclasses.fields(TrlDpoConfig)}["loss_type"].metadata["help"]
    installed = set(re.findall(r"`'([a-z_]+)'`", help_text))
    assert set(DPO_LOSSES_LEFT_OUT) <= installed and all(DPO_LOSSES_LEFT_OUT.values())
    assert set(typing.get_args(DpoLoss)) == installed - set(DPO_LOSSES_LEFT_OUT)


def test_schedulers_match_the_installed_transformers():
    """The Literal is transformers' list minus the schedulers left out, each with its reason."""
    from transformers.trainer_utils import SchedulerType

    installed = {t.value for t in SchedulerType}
    assert set(SCHEDULERS_LEFT_OUT) <= installed and all(SCHEDULERS_LEFT_OUT.values())
    assert set(typing.get_args(Scheduler)) == installed - set(SCHEDULERS_LEFT_OUT)


def test_warmup_steps_and_adam_beta2_reach_trl_and_stay_out_of_old_keys(tmp_path):
    """DPA-RAG's LLaMA-Factory run warms up for 20 steps with Adam's beta2 0.95; both fields
    were added later, so at their defaults they leave existing cache keys unchanged."""
    from orchestrator.stage_config import neutral_paths
    from stages.lib.train.trainers import RunSetup, trl_args

    setup = RunSetup(device="cpu", bf16=False, gradient_checkpointing=False,
                     checkpoint_dir=tmp_path, resumable=False)
    default = trl_args(SftConfig(warmup_ratio=0.05), setup)
    assert (default.warmup_steps, default.adam_beta2) == (0.05, 0.999)
    dpa = trl_args(SftConfig(warmup_steps=20, adam_beta2=0.95), setup)
    assert (dpa.warmup_steps, dpa.adam_beta2) == (20, 0.95)
    fields = {"warmup_steps": 0, "adam_beta2": 0.999}
    assert set(neutral_paths(SftConfig, fields)) == {("warmup_steps",), ("adam_beta2",)}
    # shuffle (rag_instruct.format's epoch blocks) came later too: its default keeps old keys
    assert trl_args(SftConfig(), setup).train_sampling_strategy == "random"
    assert trl_args(SftConfig(shuffle=False), setup).train_sampling_strategy == "sequential"
    assert neutral_paths(SftConfig, {"shuffle": True}) == [("shuffle",)]
    assert neutral_paths(SftConfig, {"shuffle": False}) == []
    assert neutral_paths(SftConfig, {"warmup_steps": 20, "adam_beta2": 0.95}) == []


@pytest.mark.parametrize("cls", [SftConfig, DpoConfig])
@pytest.mark.parametrize("on", [True, False])
def test_checkpointing_reaches_trl_without_the_deprecated_name(tmp_path, cls, on):
    """transformers 5.23+ warns (FutureWarning) on every use of ``gradient_checkpointing``;
    the switch goes through the new name where it exists, and TRL (which reads the old one,
    default True) still sees our value."""
    import warnings

    from stages.lib.train.trainers import RunSetup, trl_args

    setup = RunSetup(device="cpu", bf16=False, gradient_checkpointing=on,
                     checkpoint_dir=tmp_path, resumable=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*gradient_checkpointing.*")
        args = trl_args(cls(), setup)
    assert args.gradient_checkpointing is on
    assert getattr(args, "activation_checkpointing", on) is on


def test_plan_notes_a_fixed_order_repeated_over_epochs():
    """``shuffle: false`` is for rows laid out one block per epoch (rag_instruct.format's
    ``epochs``), trained once: over several epochs every epoch would repeat one order."""
    def notes(**cfg):
        return " ".join(SftConfig(**cfg).plan_notes({"gpus": 0}))

    assert "every epoch trains the rows in the same order" in notes(shuffle=False, epochs=3)
    assert "same order" not in notes(shuffle=False, epochs=1)
    assert "same order" not in notes(shuffle=False, epochs=3, max_steps=10)
    assert "same order" not in notes(epochs=3)
