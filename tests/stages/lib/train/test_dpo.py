"""stages/lib/train/dpo.py: DPO with TRL from a tiny SFT checkpoint (CPU, a few seconds each)."""

from __future__ import annotations

import math

import pytest

from orchestrator.api import DataError
from stages.lib.train import DpoConfig, TrainHooks, dpo_train
from tests.stages.lib.train.conftest import FAST, make_logger, n_changed, pref_rows, state_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_dpo_from_sft_output(sft_full, tmp_path, lora):
    sft_out = sft_full[0]
    logger, handler = make_logger(f"dpo_{lora}")
    out = tmp_path / "model"
    extra = dict(lora=True, lora_r=8, lora_dropout=0.0, max_prompt_length=16) if lora else {}
    rows = pref_rows() + [{**pref_rows(1)[0], "id": "same", "rejected": pref_rows(1)[0]["chosen"]}]
    cfg = DpoConfig(beta=0.1, max_steps=4, **FAST, **extra)
    stats = dpo_train(sft_out, rows, out, cfg, TrainHooks(log=logger))
    assert stats["steps"] == 4 and stats["identical_pairs_dropped"] == 1
    assert all(math.isfinite(v) for _, v in stats["losses"])
    assert abs(stats["first_loss"] - math.log(2)) < 1e-3   # policy == reference at step 1
    assert len(stats["reward_margins"]) == 4
    assert ("disabled LoRA adapter" in stats["reference"]) == lora
    assert any("margin" in m and m.startswith("dpo step ") for m in handler.messages)
    assert n_changed(state_dict(sft_out), state_dict(out)) > 0
    assert (out / "adapter").is_dir() == lora


def test_a_prompt_longer_than_max_length_is_dropped_unless_cut(sft_full, tmp_path):
    long = [{**r, "prompt": [{"role": "system", "content": "You are an expert. " * 12},
                             *r["prompt"][1:]]} for r in pref_rows(4)]
    cfg = DpoConfig(max_steps=1, **{**FAST, "max_length": 40})
    with pytest.raises(DataError, match="every one of the 4 examples was dropped"):
        dpo_train(sft_full[0], long, tmp_path / "a", cfg)
    cut = DpoConfig(max_steps=1, max_prompt_length=32, **{**FAST, "max_length": 40})
    assert dpo_train(sft_full[0], long, tmp_path / "b", cut)["num_examples"] == 4
