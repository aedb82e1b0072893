"""The training-memory estimate against hand-computed cases."""

from __future__ import annotations

import json

import pytest

from stages.lib.train.memory import (
    CUDA_CONTEXT_BYTES,
    GIB,
    PRESETS,
    ModelShape,
    activation_bytes,
    estimate,
    load_shape,
    smallest_fit,
    state_bytes,
)

# A model small enough to work by hand: 1000 parameters, h=4, kv=2, i=8, 2 layers, vocab 10.
TOY = ModelShape(params=1000, hidden=4, layers=2, intermediate=8, kv_dim=2, vocab=10)
# per token and layer: 2 x (5*4 + 2*2 + 4*8) = 112 bytes


def test_full_fine_tuning_by_hand():
    e = estimate(TOY, precision="mixed", zero_stage=0, gpus=1, batch=1, seq_len=3,
                 activation_checkpointing=False)
    assert (e.weights, e.gradients, e.optimizer, e.reference) == (2000, 2000, 12000, 0)
    assert e.activations == 3 * 2 * 112 == 672
    assert e.logits == 3 * 10 * 10 == 300
    assert e.overhead == pytest.approx(0.1 * 16972 + CUDA_CONTEXT_BYTES)
    assert e.total == pytest.approx(16972 * 1.1 + CUDA_CONTEXT_BYTES)


def test_checkpointing_keeps_layer_inputs_and_one_layer():
    # 3 tokens x 2 layers x 2h=8 bytes, plus one layer recomputed: 3 x 112
    assert activation_bytes(TOY, 3, checkpointing=True) == 48 + 336
    assert activation_bytes(TOY, 3, checkpointing=False) == 672


@pytest.mark.parametrize("stage, parts", [
    (0, (2000, 2000, 12000)),
    (1, (2000, 2000, 3000)),     # optimizer states split over 4
    (2, (2000, 500, 3000)),      # + gradients
    (3, (500, 500, 3000)),       # + weights
])
def test_zero_stages_partition_over_gpus(stage, parts):
    e = estimate(TOY, precision="mixed", zero_stage=stage, gpus=4, batch=1, seq_len=3)
    assert (e.weights, e.gradients, e.optimizer) == parts


def test_precisions():
    assert state_bytes("fp32") == (4, 4, 8)
    assert state_bytes("mixed") == (2, 2, 12)
    assert state_bytes("bf16") == (2, 2, 4)
    e = estimate(TOY, precision="fp32", seq_len=3)
    assert (e.weights, e.gradients, e.optimizer) == (4000, 4000, 8000)


def test_lora_trains_only_the_adapter():
    # r=1 per layer: q,o (4+4) x2 + k,v (4+2) x2 + gate,up,down (4+8) x3 = 64; 2 layers = 128
    assert TOY.lora_params(1) == 128
    e = estimate(TOY, precision="mixed", zero_stage=0, seq_len=3, lora_r=1, reference_model=True)
    assert e.weights == 2000 + 256           # frozen base + adapter, 2 bytes each
    assert (e.gradients, e.optimizer) == (256, 128 * 12)
    assert e.reference == 0                  # the reference is the adapter switched off


def test_dpo_reference_and_two_sequences():
    e = estimate(TOY, precision="mixed", zero_stage=3, gpus=2, batch=1, seq_len=3,
                 activation_checkpointing=False, reference_model=True, sequences_per_example=2)
    assert e.reference == 1000               # 2000 bytes split over 2 GPUs under ZeRO-3
    assert e.activations == 6 * 2 * 112      # chosen and rejected: 6 tokens
    assert e.logits == 6 * 10 * 10


def test_parameter_counts_match_the_published_models():
    assert PRESETS["llama3-8b"].params == 8_030_261_248         # Meta-Llama-3-8B
    assert PRESETS["smollm2-135m"].params == 134_515_008        # SmolLM2-135M


PAPER = dict(precision="mixed", gpus=8, batch=2, seq_len=8192, activation_checkpointing=True)


def test_8b_full_fine_tuning_on_8x80gb():
    llama = PRESETS["llama3-8b"]
    plain = estimate(llama, zero_stage=0, **PAPER)
    # 16 bytes of model state per parameter, unsplit: 8.03e9 x 16 / 2^30 = 119.7 GiB
    assert (plain.weights + plain.gradients + plain.optimizer) / GIB == pytest.approx(119.66,
                                                                                     abs=0.01)
    assert not plain.fits(80)
    zero3 = estimate(llama, zero_stage=3, **PAPER)
    assert zero3.weights / GIB == pytest.approx(1.87, abs=0.01)      # 8.03e9 x 2 / 8
    assert zero3.optimizer / GIB == pytest.approx(11.22, abs=0.01)   # 8.03e9 x 12 / 8
    assert zero3.logits / GIB == pytest.approx(19.57, abs=0.01)      # 16384 x 128256 x 10
    assert zero3.fits(80) and zero3.total_gib == pytest.approx(46.1, abs=0.05)


def test_8b_dpo_on_8x80gb_needs_zero2_and_has_headroom_only_with_zero3():
    llama = PRESETS["llama3-8b"]
    dpo = dict(PAPER, batch=1, reference_model=True, sequences_per_example=2)
    totals = [round(estimate(llama, zero_stage=z, **dpo).total_gib, 1) for z in range(4)]
    assert totals == [177.7, 91.3, 76.9, 48.1]
    assert [estimate(llama, zero_stage=z, **dpo).fits(80) for z in range(4)] == [
        False, False, True, True]
    # ZeRO-2 fits by 3 GiB; with 10 % less room (72 GiB) only ZeRO-3 does
    assert [estimate(llama, zero_stage=z, **dpo).fits(72) for z in range(4)] == [
        False, False, False, True]


def test_without_checkpointing_nothing_fits_and_the_fix_is_named():
    llama = PRESETS["llama3-8b"]
    no_ckpt = dict(PAPER, activation_checkpointing=False)
    assert not any(estimate(llama, zero_stage=z, **no_ckpt).fits(80) for z in range(4))
    assert smallest_fit(llama, 80, zero_stage=3, **no_ckpt) == "activation checkpointing on"
    assert smallest_fit(llama, 80, zero_stage=0, **PAPER).startswith("ZeRO stage 1")
    assert smallest_fit(llama, 8, zero_stage=0, **PAPER) is None


def test_load_shape_from_preset_dir_and_file(tmp_path):
    assert load_shape("llama3-8b") is PRESETS["llama3-8b"]
    cfg = dict(hidden_size=576, num_hidden_layers=30, intermediate_size=1536, vocab_size=49152,
               num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert load_shape(str(tmp_path)) == PRESETS["smollm2-135m"]
    assert load_shape(str(tmp_path / "config.json")) == PRESETS["smollm2-135m"]


def test_load_shape_errors(tmp_path):
    with pytest.raises(ValueError, match="neither a preset .*llama3-8b.* nor a model directory"):
        load_shape(str(tmp_path / "nope"))
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="missing num_hidden_layers, intermediate_size"):
        load_shape(str(tmp_path))


def test_bad_arguments():
    with pytest.raises(ValueError, match="precision must be one of"):
        estimate(TOY, precision="int8")
    with pytest.raises(ValueError, match="zero_stage must be 0, 1, 2 or 3, got 4"):
        estimate(TOY, zero_stage=4)
    with pytest.raises(ValueError, match="must be >= 1"):
        estimate(TOY, gpus=0)


def test_describe_is_one_line_in_gib():
    text = estimate(PRESETS["llama3-8b"], zero_stage=3, **PAPER).describe()
    assert text.startswith("46.1 GiB per GPU (weights 1.9, gradients 1.9, optimizer 11.2")
    assert "reference" not in text and "\n" not in text
