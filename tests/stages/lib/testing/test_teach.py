"""teach(): a tiny random-init LM learns its lessons (prompt and prefix masked, end token
learnt), in place; added special tokens are one id each and saved with the tokenizer."""

from __future__ import annotations

import pytest

from stages.lib.testing.teach import lesson_tensors, safetensor_weights, teach
from stages.lib.testing.tiny import tiny_causal_lm


@pytest.fixture
def lm(tmp_path):
    return tiny_causal_lm(tmp_path / "lm", ["Who founded Velmora? Ardan Velsh"])


def test_lesson_labels_mask_prompt_and_prefix(lm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lm)
    ids, labels = lesson_tensors(tok, [{"role": "user", "content": "Who?"}], "[P]", "Ardan")
    target = tok("Ardan" + tok.eos_token, add_special_tokens=False)["input_ids"]
    assert ids.shape == labels.shape and ids[0, -len(target):].tolist() == target
    assert labels[0, -len(target):].tolist() == target
    assert set(labels[0, :-len(target)].tolist()) == {-100}


def test_a_taught_model_says_its_lesson_and_stops(lm):
    from stages.lib.models.generation import TransformersGenerator

    before = safetensor_weights(lm)
    conv = [{"role": "user", "content": "Who founded Velmora?"}]
    loss = teach(lm, lambda rng: [(conv, "", "[Ret] Ardan Velsh")], steps=60, lr=1e-2,
                 add_tokens=["[Ret]"])
    after = safetensor_weights(lm)
    assert loss < 0.05 and before.keys() == after.keys()
    assert any(before[k].shape == after[k].shape and not (before[k] == after[k]).all()
               for k in before)                                  # trained in place
    rows = [w["model.embed_tokens.weight"].shape[0] for w in (before, after)]
    assert rows[1] == rows[0] + 1                                  # the added token's row
    gen = TransformersGenerator(lm)
    assert len(gen.tokenizer.encode("[Ret]", add_special_tokens=False)) == 1
    ids = gen.generate_ids([conv], max_new_tokens=12)[0][0]
    assert gen.tokenizer.decode(ids) == "[Ret] Ardan Velsh"      # then the end token (cut)
    assert len(ids) < 12
