"""stages.lib.models.relevance: monoT5, cross-encoder, causal-LM judge and has_answer on tiny models."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.errors import ConfigError
from stages.lib.metrics.answer_in_passages import has_answer
from stages.lib.models.relevance import MONOT5_TEMPLATE, score_relevance
from stages.lib.prompts import load_prompt
from stages.lib.testing.tiny import tiny_causal_lm, tiny_encoder, tiny_seq2seq
from tests.conftest import REPO

QUESTIONS = ["who wrote hamlet?", "what is the capital of france?", "the quick brown fox"]
PASSAGES = ["Hamlet is a tragedy by William Shakespeare.",
            "Paris is the capital and largest city of France. " * 3, "no"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    from transformers import BertForSequenceClassification

    root = tmp_path_factory.mktemp("rel")
    texts = QUESTIONS + PASSAGES
    enc = tiny_encoder(root / "bert", texts=texts)
    for labels in (1, 2):
        model = BertForSequenceClassification.from_pretrained(enc, num_labels=labels)
        model.save_pretrained(root / f"ce{labels}")
        (root / f"ce{labels}").joinpath("tokenizer.json").write_bytes(
            (enc / "tokenizer.json").read_bytes())
        (root / f"ce{labels}").joinpath("tokenizer_config.json").write_bytes(
            (enc / "tokenizer_config.json").read_bytes())
    return {"t5": tiny_seq2seq(root / "t5", texts=texts), "ce1": root / "ce1",
            "ce2": root / "ce2", "lm": tiny_causal_lm(root / "lm", texts=texts)}


def _check(result, threshold=0.5):
    assert len(result) == len(QUESTIONS)
    for label, score in result:
        assert isinstance(label, bool) and 0.0 <= score <= 1.0
        assert label == (score > threshold)


def test_monot5_is_true_vs_false_softmax_at_first_decoder_step(models):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    got = score_relevance("monot5", models["t5"], QUESTIONS, PASSAGES, batch_size=2)
    _check(got)
    tok = AutoTokenizer.from_pretrained(models["t5"])
    model = AutoModelForSeq2SeqLM.from_pretrained(models["t5"])
    t, f = (tok.encode(w, add_special_tokens=False)[0] for w in ("true", "false"))
    enc = tok([MONOT5_TEMPLATE.format(q=QUESTIONS[1], d=PASSAGES[1])], return_tensors="pt")
    start = torch.tensor([[model.config.decoder_start_token_id]])
    with torch.no_grad():
        logits = model(**enc, decoder_input_ids=start).logits[0, 0]
    expected = torch.softmax(logits[[t, f]], -1)[0].item()
    assert got[1][1] == pytest.approx(expected, abs=1e-5)
    single = score_relevance("monot5", models["t5"], QUESTIONS, PASSAGES, batch_size=1)
    np.testing.assert_allclose([s for _, s in single], [s for _, s in got], atol=1e-5)


@pytest.mark.parametrize("labels", [1, 2])
def test_cross_encoder_sigmoid_or_softmax(models, labels):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    got = score_relevance("cross_encoder", models[f"ce{labels}"], QUESTIONS, PASSAGES,
                          batch_size=2)
    _check(got)
    tok = AutoTokenizer.from_pretrained(models[f"ce{labels}"])
    model = AutoModelForSequenceClassification.from_pretrained(models[f"ce{labels}"]).eval()
    with torch.no_grad():
        logits = model(**tok([QUESTIONS[0]], [PASSAGES[0]], return_tensors="pt")).logits[0]
    expected = torch.sigmoid(logits[0]) if labels == 1 else torch.softmax(logits, -1)[1]
    assert got[0][1] == pytest.approx(expected.item(), abs=1e-5)


JUDGE = load_prompt(REPO / "conf" / "prompts" / "common" / "relevance.yaml")


def test_causal_lm_yes_no_judge(models):
    got = score_relevance("causal_lm", models["lm"], QUESTIONS, PASSAGES, batch_size=2,
                          prompt=JUDGE)
    _check(got)
    again = score_relevance("causal_lm", models["lm"], QUESTIONS, PASSAGES, batch_size=3,
                            prompt=JUDGE)
    np.testing.assert_allclose([s for _, s in got], [s for _, s in again], atol=1e-5)
    low = score_relevance("causal_lm", models["lm"], QUESTIONS, PASSAGES, threshold=-1.0,
                          prompt=JUDGE)
    assert all(label for label, _ in low)
    with pytest.raises(ConfigError, match="'causal_lm' needs a prompt file"):
        score_relevance("causal_lm", models["lm"], QUESTIONS, PASSAGES)


def test_has_answer_dpr_style():
    answers = [["Shakespeare"], ["Paris", "paris france"], ["fox"]]
    got = score_relevance("has_answer", None, QUESTIONS, PASSAGES, answers=answers)
    assert got == [(True, 1.0), (True, 1.0), (False, 0.0)]
    assert has_answer(["The Beatles"], "recorded by the beatles.")
    assert not has_answer(["Beat"], "recorded by the Beatles")
    assert not has_answer([""], "anything")
    assert has_answer(["Café"], "a cafe? no: un café")


def test_errors_are_config_errors(models):
    with pytest.raises(ConfigError, match="did you mean 'monot5'"):
        score_relevance("monot5x", models["t5"], QUESTIONS, PASSAGES)
    with pytest.raises(ConfigError, match="answers"):
        score_relevance("has_answer", None, QUESTIONS, PASSAGES)
    with pytest.raises(ConfigError, match="needs a model directory"):
        score_relevance("monot5", None, QUESTIONS, PASSAGES)
    with pytest.raises(ValueError):
        score_relevance("monot5", models["t5"], QUESTIONS, PASSAGES[:1])
    assert score_relevance("monot5", models["t5"], [], []) == []
