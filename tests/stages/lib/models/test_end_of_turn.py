"""A base checkpoint given a chat template (Llama-3 base + the llama3 template: EOS
``<|end_of_text|>``, turns closed by ``<|eot_id|>``) stops at the end of its answer once trained:
SFT trains the template's end-of-turn token, and the saved checkpoint and both generation
backends stop there. It stopped only on the base EOS, so a trained model answered
``Paris<|im_end|>\\nParis<|im_end|>...`` up to ``max_new_tokens``."""

from __future__ import annotations

import logging

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from stages.lib.models.turns import end_of_turn_id, stop_ids
from stages.lib.testing.tiny import tiny_causal_lm

QUESTION = [{"role": "user", "content": "Capital of France?"}]


def _base_model(path, hidden_size: int = 32):
    """The tiny ChatML model made a "base" one: EOS ``<|endoftext|>`` in its tokenizer, config
    and generation config, while its template still ends turns with ``<|im_end|>``."""
    lm = tiny_causal_lm(path, texts=["Capital of France? Paris"], hidden_size=hidden_size)
    tok = AutoTokenizer.from_pretrained(str(lm))
    tok.eos_token = "<|endoftext|>"
    tok.save_pretrained(str(lm))
    model = AutoModelForCausalLM.from_pretrained(str(lm))
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id,
                                               eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(str(lm))
    return lm, tok


def test_the_end_of_turn_token_is_found_from_the_template(tmp_path):
    lm, base = _base_model(tmp_path / "base")
    chatml = AutoTokenizer.from_pretrained(str(tiny_causal_lm(tmp_path / "chat")))
    eot = base.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn_id(base) == end_of_turn_id(chatml) == eot != base.eos_token_id
    assert stop_ids(base.eos_token_id, base) == [base.eos_token_id, eot]
    assert stop_ids(chatml.eos_token_id, chatml) == [eot]           # an instruct model: as was
    base.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
                          "{{ eos_token }}{% endfor %}")          # a turn closed by EOS
    assert end_of_turn_id(base) == base.eos_token_id
    base.chat_template = None
    assert end_of_turn_id(base) is None


def trained_base_model(tmp_path, hidden_size: int = 32):
    """A base model after 40 SFT steps on "Capital of France?" -> "Paris" (its template's
    ``<|im_end|>`` trained after the answer); (checkpoint, base tokenizer)."""
    from stages.lib.train import SftConfig, sft_train

    lm, tok = _base_model(tmp_path / "base", hidden_size)
    rows = [{"id": f"r{i}", "messages": QUESTION + [{"role": "assistant", "content": "Paris"}]}
            for i in range(8)]
    sft_train(lm, rows, tmp_path / "out", SftConfig(max_steps=40, lr=1e-2,
                                                    per_device_batch_size=4, grad_accum=1,
                                                    warmup_ratio=0.0, max_length=64))
    return tmp_path / "out", tok


@pytest.mark.timeout(300)
def test_a_base_model_trained_on_a_template_stops_at_the_end_of_its_answer(tmp_path, caplog):
    from stages.lib.models.generation import TransformersGenerator

    with caplog.at_level(logging.INFO, logger="stages.lib.train"):
        out, tok = trained_base_model(tmp_path)
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    saved = AutoModelForCausalLM.from_pretrained(str(out)).generation_config.eos_token_id
    assert saved == [tok.eos_token_id, eot]
    assert "ends a turn with <|im_end|>" in caplog.text
    gen = TransformersGenerator(out)
    paris = tok("Paris", add_special_tokens=False)["input_ids"]
    assert gen.generate_ids([QUESTION], max_new_tokens=12) == [[paris]]   # it ran on to 12
    assert gen.chat([QUESTION], max_new_tokens=12) == [["Paris"]]
