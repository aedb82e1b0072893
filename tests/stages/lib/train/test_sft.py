"""stages/lib/train/sft.py: SFT with TRL on a tiny random model (CPU, a few seconds each)."""

from __future__ import annotations

import json
import shutil

import pytest

from orchestrator.api import ConfigError, DataError
from stages.lib.train import SftConfig, TrainHooks, sft_train
from tests.stages.lib.train.conftest import FAST, chat_rows, make_logger, n_changed, state_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # 49 s instead of 10 s with 2 threads


def test_lora_merges_into_a_plain_checkpoint(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger, handler = make_logger("sft_lora")
    out = tmp_path / "model"
    cfg = SftConfig(lora=True, lora_r=8, lora_alpha=16, lora_dropout=0.0, max_steps=8, **FAST)
    stats = sft_train(tiny_lm, chat_rows(), out, cfg, TrainHooks(log=logger))
    assert stats["steps"] == 8 and stats["lora"] and stats["loss_on"] == "completion"
    assert 0 < stats["trainable_params"] < stats["total_params"]
    assert stats["last_loss"] < stats["first_loss"]
    step_lines = [m for m in handler.messages if m.startswith("sft step ")]
    assert len(step_lines) == 8 and "loss" in step_lines[0] and "lr" in step_lines[0]
    # a plain checkpoint: no PEFT wrapper needed to load it, same parameter names as the input
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert not hasattr(model, "peft_config")
    assert n_changed(state_dict(tiny_lm), model.state_dict()) > 0
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and (out / "adapter" / "adapter_model.safetensors").is_file()
    assert AutoTokenizer.from_pretrained(str(out)).chat_template == \
        AutoTokenizer.from_pretrained(str(tiny_lm)).chat_template


def test_full_finetuning_changes_every_weight(tiny_lm, sft_full):
    out, stats, messages = sft_full
    assert stats["steps"] == 6 and not stats["lora"]
    assert stats["trainable_params"] == stats["total_params"]
    assert stats["last_loss"] < stats["first_loss"]
    assert [s for s, _ in stats["losses"]] == [1, 2, 3, 4, 5, 6]
    before, after = state_dict(tiny_lm), state_dict(out)
    assert n_changed(before, after) == len(before)
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert any("full fine-tuning" in m for m in messages)


def test_errors_found_before_training(tiny_lm, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match="empty"):
        sft_train(tiny_lm, [], out, SftConfig())
    with pytest.raises(ConfigError, match="generation"):
        sft_train(tiny_lm, chat_rows(), out, SftConfig(loss_on="assistant"))
    with pytest.raises(ConfigError, match="warmup_ratio"):
        sft_train(tiny_lm, chat_rows(), out, SftConfig(warmup_ratio=1.5))
    with pytest.raises(ConfigError, match="no config.json, so it is not a model checkpoint; "):
        sft_train(tmp_path, chat_rows(), out, SftConfig())
    with pytest.raises(DataError, match="every one of the 16 examples was dropped"):
        sft_train(tiny_lm, chat_rows(), out, SftConfig(**{**FAST, "max_length": 4}, max_steps=1))
    assert not out.exists()


GENERATION_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\\n' }}{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.mark.parametrize("loss_on", ["all", "assistant"])
def test_other_loss_masks(tiny_lm, tmp_path, loss_on):
    from transformers import AutoTokenizer

    model = tmp_path / "lm"
    shutil.copytree(tiny_lm, model)
    if loss_on == "assistant":   # a template with {% generation %} markers
        tok = AutoTokenizer.from_pretrained(str(model))
        tok.chat_template = GENERATION_TEMPLATE
        tok.save_pretrained(str(model))
    rows = chat_rows(4)
    rows[0]["messages"] = rows[0]["messages"] + [{"role": "user", "content": "more?"},
                                                 {"role": "assistant", "content": "[3]"}]
    stats = sft_train(model, rows, tmp_path / "out",
                      SftConfig(loss_on=loss_on, max_steps=2, **FAST))
    assert stats["loss_on"] == loss_on and stats["steps"] == 2 and stats["num_examples"] == 4


def test_added_tokens_and_masked_spans(tiny_lm, tmp_path, caplog):
    """Self-RAG's generator setup: reflection tokens added, retrieved text left out of the loss.
    The model grown here is handed to TRL loaded, without TRL's warning that the loading
    arguments it was also given are ignored (the Self-RAG demo printed it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    special = ["[Retrieval]", "<paragraph>", "</paragraph>", "[Relevant]", "[Irrelevant]"]
    rows = [{"id": f"q{i}", "messages": [
        {"role": "user", "content": f"Query: question {i}"},
        {"role": "assistant", "content": f"[Retrieval]<paragraph>Topic t{i} Content c{i}</paragraph>"
                                         f"{'[Relevant]' if i % 2 else '[Irrelevant]'} [{i % 3 + 1}]"}]}
        for i in range(8)]
    with pytest.raises(ConfigError, match="special_tokens needs full fine-tuning"):
        SftConfig(special_tokens=special, lora=True)
    cfg = SftConfig(special_tokens=special, masked_spans=[("<paragraph>", "</paragraph>")],
                    max_steps=3, **FAST)
    out = tmp_path / "out"
    stats = sft_train(tiny_lm, rows, out, cfg)
    assert not [r.getMessage() for r in caplog.records if "model_init_kwargs" in r.getMessage()]
    before = len(AutoTokenizer.from_pretrained(str(tiny_lm)))
    ids = json.loads((out / "special_tokens.json").read_text())
    assert ids == stats["special_tokens"] and sorted(ids.values()) == list(range(before, before + 5))
    tok = AutoTokenizer.from_pretrained(str(out))
    assert {t: tok.convert_tokens_to_ids(t) for t in special} == ids
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.get_input_embeddings().num_embeddings == len(tok)
    base = state_dict(tiny_lm)
    after = model.state_dict()
    same_shape = {k: v for k, v in base.items() if after[k].shape == v.shape}
    assert n_changed(same_shape, {k: after[k] for k in same_shape}) == len(same_shape)
    emb = model.get_input_embeddings().weight
    rows_new = emb[sorted(ids.values())]
    assert rows_new.shape[0] == 5 and bool((rows_new.std(dim=0) > 0).any())
    assert stats["steps"] == 3 and stats["num_examples"] == 8


@pytest.mark.gpu
def test_lora_sft_on_cuda_changes_weights(tiny_lm, tmp_path):
    """Two LoRA SFT steps on the GPU (bf16 where supported): the merged checkpoint differs."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    cfg = SftConfig(lora=True, lr=1e-2, max_steps=2, per_device_batch_size=4, grad_accum=1,
                    max_length=256)
    stats = sft_train(tiny_lm, chat_rows(8), tmp_path / "out", cfg,
                      TrainHooks(checkpoint_dir=tmp_path / "ckpt", device="cuda"))
    assert stats["steps"] == 2 and stats["device"] == "cuda"
    assert n_changed(state_dict(tiny_lm), state_dict(tmp_path / "out")) > 0


def test_loss_average_weighs_tokens_or_micro_batches(tiny_lm, tmp_path):
    """One optimizer step over a 1-token answer and a long one, a micro-batch each: by default
    the step's loss is the mean over both answers' tokens; with ``loss_average: micro_batch``
    it is the mean of the two micro-batches' own means (RAG-Instruct's training loop)."""
    rows = chat_rows(2)
    rows[0]["messages"][-1]["content"] = "[1]"
    rows[1]["messages"][-1]["content"] = " ".join(f"word{i} [{i % 3 + 1}]" for i in range(12))
    one = dict(lr=1e-2, per_device_batch_size=1, max_length=96, warmup_ratio=0.0, max_steps=1)

    def first_loss(examples, name, **cfg):
        stats = sft_train(tiny_lm, examples, tmp_path / name, SftConfig(**one, **cfg))
        return stats["losses"][0][1], stats

    alone = [first_loss([row], f"alone{i}", grad_accum=1)[0] for i, row in enumerate(rows)]
    tokens, stats = first_loss(rows, "tokens", grad_accum=2)
    micro, micro_stats = first_loss(rows, "micro", grad_accum=2, loss_average="micro_batch")
    assert stats["loss_average"] == "tokens" and micro_stats["loss_average"] == "micro_batch"
    assert micro == pytest.approx(sum(alone) / 2, rel=1e-3)
    assert abs(tokens - alone[1]) < abs(micro - alone[1])   # the long answer's tokens dominate
    assert tokens != pytest.approx(micro, rel=1e-3)


def test_shuffle_false_trains_the_rows_in_their_order(tiny_lm, tmp_path):
    """``shuffle: false`` is a data step's own epoch layout (rag_instruct.format's ``epochs``):
    step i trains row i. Each step's loss is the loss of its row alone (lr so small the weights
    barely move); the default draws the rows in a seeded shuffle."""
    rows = chat_rows(3)
    for i, row in enumerate(rows):
        row["messages"][-1]["content"] = " ".join(f"word{j} [{j % 3 + 1}]" for j in range(i + 1))
    one = dict(lr=1e-9, per_device_batch_size=1, grad_accum=1, max_length=96, warmup_ratio=0.0)

    def losses(examples, name, **cfg):
        stats = sft_train(tiny_lm, examples, tmp_path / name, SftConfig(**one, **cfg))
        return [loss for _, loss in stats["losses"]]

    alone = [losses([row], f"alone{i}", max_steps=1)[0] for i, row in enumerate(rows)]
    in_order = losses(rows, "in_order", max_steps=3, shuffle=False)
    shuffled = losses(rows, "shuffled", max_steps=3)
    assert in_order == pytest.approx(alone, rel=1e-4)
    assert sorted(shuffled) == pytest.approx(sorted(alone), rel=1e-4)
    assert shuffled != pytest.approx(alone, rel=1e-4)   # seed 42 draws another order
