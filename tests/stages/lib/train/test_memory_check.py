"""The plan-time memory check: settings read from a training config, notes, and refusals."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from orchestrator.api import ConfigError
from stages.lib.train.memory_check import deepspeed_settings, estimate_args, memory_notes

REPO_ZERO3 = "conf/deepspeed/zero3_bf16.json"


@pytest.fixture(autouse=True)
def whole_logits(monkeypatch):
    """The cases below are worked by hand with whole logits (a TRL before 1.16, as the floors
    job installs); the fused LM head has its own test."""
    monkeypatch.setattr("stages.lib.train.memory_check.trl_fused_lm_head", lambda: False)


def cfg(**kw):
    base = dict(memory_model="llama3-8b", gpu_memory_gib=80.0, deepspeed=None, dtype="float32",
                per_device_batch_size=2, max_length=8192, gradient_checkpointing=None,
                lora=False, lora_r=16, precompute_ref_log_probs=False)
    return SimpleNamespace(**{**base, **kw})


def test_shipped_deepspeed_configs_are_read(monkeypatch):
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    assert deepspeed_settings(REPO_ZERO3) == (3, True)
    assert deepspeed_settings("conf/deepspeed/zero2_bf16.json") == (2, True)
    assert deepspeed_settings(None) == (0, False)


def test_settings_from_the_config(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"bf16": {"enabled": False}, "zero_optimization": {"stage": 1}}))
    assert estimate_args(cfg(deepspeed=str(ds)), 4, dpo=False)["precision"] == "fp32"
    sft = estimate_args(cfg(), 8, dpo=False)
    assert sft == dict(precision="fp32", zero_stage=0, gpus=8, batch=2, seq_len=8192,
                       activation_checkpointing=True, lora_r=None, reference_model=False,
                       sequences_per_example=1, fused_lm_head=False)
    dpo = estimate_args(cfg(dtype="bfloat16", per_device_batch_size=1), 8, dpo=True)
    assert (dpo["precision"], dpo["reference_model"], dpo["sequences_per_example"]) == (
        "bf16", True, 2)
    assert not estimate_args(cfg(precompute_ref_log_probs=True), 8, dpo=True)["reference_model"]
    assert not estimate_args(cfg(lora=True), 8, dpo=True)["reference_model"]
    assert estimate_args(cfg(max_length=None, gradient_checkpointing=False), 1, dpo=False)[
        "seq_len"] == 4096


def test_paper_sft_with_zero3_fits_and_says_so(monkeypatch):
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    (note,) = memory_notes(cfg(deepspeed=REPO_ZERO3), {"gpus": 8}, dpo=False)
    assert note.startswith("GPU memory: 46.1 GiB per GPU (weights 1.9")
    assert "ZeRO-3 over 8 GPU(s), mixed precision, whole logits; budget 80 GiB" in note


def test_plain_data_parallel_8b_is_refused_with_the_fix():
    with pytest.raises(ConfigError) as err:
        memory_notes(cfg(), {"gpus": 8}, dpo=False)
    assert "training would not fit: GPU memory: " in err.value.message
    assert "no ZeRO over 8 GPU(s), fp32 precision, whole logits; budget 80 GiB" in \
        err.value.message
    assert "set deepspeed: conf/deepspeed/zero2_bf16.json (ZeRO-2)" in err.value.hint


def test_paper_dpo_needs_zero3():
    with pytest.raises(ConfigError) as err:
        memory_notes(cfg(per_device_batch_size=1, gpu_memory_gib=72), {"gpus": 8}, dpo=True)
    assert "zero3_bf16.json (ZeRO-3)" in err.value.hint


def test_one_small_gpu_gets_lora_or_nothing():
    with pytest.raises(ConfigError) as err:
        memory_notes(cfg(gpu_memory_gib=40, max_length=2048), {"gpus": 1}, dpo=False)
    assert "lora: true (r=16)" in err.value.hint
    with pytest.raises(ConfigError) as err:
        memory_notes(cfg(gpu_memory_gib=8), {"gpus": 1}, dpo=False)
    assert "no single setting makes it fit" in err.value.hint


def test_no_model_no_estimate_and_cpu_has_none():
    assert memory_notes(cfg(), {"gpus": 0}, dpo=False) == []
    (note,) = memory_notes(cfg(memory_model=None), {"gpus": 8}, dpo=False)
    assert note.startswith("GPU memory: no estimate (set memory_model")
    with pytest.raises(ConfigError, match="memory_model: 'nope' is neither a preset"):
        memory_notes(cfg(memory_model="nope"), {"gpus": 8}, dpo=False)


def test_the_training_configs_call_it(monkeypatch):
    from stages.lib.train import DpoConfig, SftConfig
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    sft = SftConfig(memory_model="llama3-8b", deepspeed=REPO_ZERO3)
    assert sft.plan_notes({"gpus": 8})[0].startswith("GPU memory: 46.1 GiB per GPU")
    assert SftConfig().plan_notes({"gpus": 8})[0].startswith("GPU memory: no estimate")
    with pytest.raises(ConfigError, match="training would not fit"):
        DpoConfig(memory_model="llama3-8b").plan_notes({"gpus": 8})
    dpo = DpoConfig(memory_model="llama3-8b", deepspeed=REPO_ZERO3, max_length=8192)
    assert "reference 1.9" in dpo.plan_notes({"gpus": 8})[0]


def test_with_trls_fused_lm_head_the_paper_dpo_fits_at_zero1(monkeypatch, tmp_path):
    """Before: the estimate counted the whole logits (19.6 GiB at 16k tokens) that TRL 1.16's
    fused LM head never holds, so `rag plan` refused DPO at ZeRO-1 (91.3 GiB), which fits."""
    ds = tmp_path / "zero1.json"
    ds.write_text(json.dumps({"bf16": {"enabled": "auto"}, "zero_optimization": {"stage": 1}}))
    dpo = cfg(deepspeed=str(ds), per_device_batch_size=1)
    with pytest.raises(ConfigError, match="91.3 GiB per GPU"):
        memory_notes(dpo, {"gpus": 8}, dpo=True)
    monkeypatch.setattr("stages.lib.train.memory_check.trl_fused_lm_head", lambda: True)
    (note,) = memory_notes(dpo, {"gpus": 8}, dpo=True)
    assert note.startswith("GPU memory: 73.0 GiB per GPU") and "logits 3.0" in note
    assert "logits in tiles (TRL's fused LM head)" in note
    monkeypatch.undo()    # the real reading, from the installed TRL's metadata
    import importlib.metadata

    from packaging.version import Version

    from stages.lib.train.memory_check import trl_fused_lm_head
    assert trl_fused_lm_head() == (Version(importlib.metadata.version("trl")) >= Version("1.16"))
