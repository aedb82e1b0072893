"""conf/selfrag/alpaca.jinja: ``selfrag.label``'s chat rows rendered as the seed's fine-tuning text
(retrieval_lm/utils.py PROMPT_DICT["prompt_no_input"] + output + eos), for a base model whose
tokenizer has no chat template (Llama-2-7b-hf)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[3] / "conf" / "selfrag" / "alpaca.jinja"


@pytest.fixture
def base_model(tmp_path):
    """A tiny model directory whose tokenizer has no chat template, then the file copied in."""
    from stages.lib.testing.tiny import tiny_causal_lm

    path = tiny_causal_lm(tmp_path / "lm", texts=["### Instruction: Response: Paris"])
    (path / "chat_template.jinja").unlink(missing_ok=True)
    config = path / "tokenizer_config.json"
    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    return path


def test_the_template_renders_the_seeds_prompt_and_target(base_model):
    from transformers import AutoTokenizer

    assert not AutoTokenizer.from_pretrained(str(base_model)).chat_template
    shutil.copy(TEMPLATE, base_model / "chat_template.jinja")
    tok = AutoTokenizer.from_pretrained(str(base_model))
    user = [{"role": "user", "content": "Who founded Velmora?"}]
    row = user + [{"role": "assistant", "content": "[Retrieval]<paragraph>V\nx</paragraph>Ardan."}]
    prompt = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(row, tokenize=False)
    bos, eos = tok.bos_token, tok.eos_token
    assert prompt == f"{bos}### Instruction:\nWho founded Velmora?\n\n### Response:\n"
    assert full == prompt + row[1]["content"] + eos      # SFT loss_on completion: output + eos
    system = [{"role": "system", "content": "Be brief."}] + user
    assert tok.apply_chat_template(system, tokenize=False, add_generation_prompt=True) == \
        f"{bos}Be brief.\n\n### Instruction:\nWho founded Velmora?\n\n### Response:\n"


def test_the_generator_loads_a_base_model_with_the_template(base_model):
    from orchestrator.api import ConfigError
    from stages.lib.models.generation import TransformersGenerator

    with pytest.raises(ConfigError, match="no chat template"):
        TransformersGenerator(base_model)
    shutil.copy(TEMPLATE, base_model / "chat_template.jinja")
    gen = TransformersGenerator(base_model)
    assert gen.render([{"role": "user", "content": "Hi"}]).endswith("### Instruction:\nHi\n\n### Response:\n")
