"""The recipes' own model loaders check the kind of model too (stages.lib.models.checkpoint):
DPA-RAG's reranker (an encoder under a fresh 2-way head), DPA-RAG's NLI filter (a 3-way
sequence classifier) and Reinforced-IR's bi-encoder (an encoder, pooled). The wrong kind fails
in one line naming the path, what it holds and what the step needs, before any weights load;
the kinds each loader really uses still load.

The tiny checkpoints and helpers are test_wrong_model_errors.py's.
"""

from __future__ import annotations

import logging

import pytest

from orchestrator.api import StageContext
from orchestrator.errors import ConfigError
from stages.dpa_rag import reranker_model
from stages.dpa_rag.nli_filter import NliFilterConfig, _classify
from stages.lib.models import checkpoint
from stages.lib.models.checkpoint import check_classifier
from stages.reinforced_ir.bi_encoder import Embedder
from tests.stages.lib.models import test_wrong_model_errors as wrong
from tests.stages.lib.models.test_wrong_model_errors import _config_dir, _one_line

pytestmark = pytest.mark.usefixtures("one_torch_thread")
tiny = wrong.tiny   # the fixture: the tiny lm, enc, t5, cls checkpoints and a tokenizer (tok)

TEMPLATE = " Title: {title} Content: {text}"
QUERY = "who wrote hamlet?"
PASSAGES = ["Hamlet is a tragedy by William Shakespeare.", "Paris is the capital of France."]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == checkpoint.__name__]


# ----------------------------------------------------------------------------- DPA-RAG reranker

def test_seq2seq_as_reranker_encoder_is_refused(tiny):
    # without the check: T5Model's forward wants decoder inputs, a ValueError at the first batch
    with pytest.raises(ConfigError) as err:
        reranker_model.build(tiny["t5"], TEMPLATE, 32, "cpu")
    message = _one_line(err)
    assert message.startswith(f"{tiny['t5']} is T5ForConditionalGeneration (t5), a "
                              "sequence-to-sequence model")
    assert "this step needs an encoder to put the reranker's 2-way head on" in message
    assert message.endswith("wire an encoder checkpoint to the train_reranker step's model input")


def test_causal_lm_under_cls_pooling_is_refused_as_reranker_encoder(tiny):
    with pytest.raises(ConfigError) as err:
        reranker_model.build(tiny["lm"], TEMPLATE, 32, "cpu", pooling="cls")
    message = _one_line(err)
    assert message.startswith(f"{tiny['lm']} is LlamaForCausalLM (llama), a causal language "
                              "model")
    assert "pooling: cls reads the first token's state" in message
    assert "set pooling: mean, or wire an encoder checkpoint" in message
    assert "attends both ways" in err.value.hint


def test_why_cls_pooling_of_a_causal_lm_is_refused(tiny):
    """What the check prevents: the causal LM built by hand (no check) under cls pooling gives
    every passage of a query the same vector, so the reranker could never tell them apart."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    reranker = reranker_model.Reranker(AutoModel.from_pretrained(str(tiny["lm"])),
                                       torch.nn.Linear(32, 2),
                                       AutoTokenizer.from_pretrained(str(tiny["lm"])),
                                       TEMPLATE, 32, "cpu", pooling="cls")
    with torch.no_grad():
        first = reranker.embed([QUERY] * 2, PASSAGES)
        reranker.pooling = "mean"
        mean = reranker.embed([QUERY] * 2, PASSAGES)
    assert torch.equal(first[0], first[1])
    assert not torch.allclose(mean[0], mean[1])


def test_causal_lm_under_mean_pooling_builds_with_a_warning(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        reranker = reranker_model.build(tiny["lm"], TEMPLATE, 32, "cpu", pooling="mean")
    assert reranker.logits([QUERY], PASSAGES[:1]).shape == (1, 2)
    warned = _warnings(caplog)
    assert len(warned) == 1 and "LlamaForCausalLM (llama), a causal language model" in warned[0]


@pytest.mark.parametrize("name", ["enc", "cls"])
def test_encoders_and_cross_encoders_build_silently(tiny, caplog, name):
    # a cross-encoder is the paper's start (bge-reranker-large): AutoModel drops its head
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        reranker = reranker_model.build(tiny[name], TEMPLATE, 32, "cpu")
    assert reranker.logits([QUERY] * 2, PASSAGES).shape == (2, 2)
    assert not _warnings(caplog)


def test_rerank_names_what_it_was_given_instead_of_a_reranker(tiny, tmp_path):
    with pytest.raises(ConfigError) as err:
        reranker_model.load(tiny["enc"], "cpu")
    message = _one_line(err)
    assert message.startswith(f"{tiny['enc']} is BertModel (bert), a text encoder")
    assert "not a DPA-RAG reranker (no reranker.json / head.safetensors): wire the model " \
           "input to a dpa_rag.train_reranker step's output" in message
    # a saved reranker (the tiny encoder, mean pooling) loads and scores as it was saved
    built = reranker_model.build(tiny["enc"], TEMPLATE, 32, "cpu", pooling="mean")
    reranker_model.save(built, tmp_path / "reranker")
    loaded = reranker_model.load(tmp_path / "reranker", "cpu")
    assert loaded.pooling == "mean"
    assert reranker_model.score(loaded, [QUERY], PASSAGES[:1], 4) == \
        pytest.approx(reranker_model.score(built, [QUERY], PASSAGES[:1], 4))


# ----------------------------------------------------------------------------- DPA-RAG NLI filter

NLI_LABELS = {"0": "entailment", "1": "neutral", "2": "contradiction"}


def _nli(model_dir, tmp_path):
    ctx = StageContext("nli_filter", 0, 1, tmp_path / "work", tmp_path / "scratch",
                       logging.getLogger("test.nli_filter"))
    return _classify(model_dir, [QUERY], ["who is the author of hamlet?"], NliFilterConfig(), ctx)


@pytest.mark.parametrize("name, found", [
    ("enc", "BertModel (bert), a text encoder"),
    ("lm", "LlamaForCausalLM (llama), a causal language model"),
    ("t5", "T5ForConditionalGeneration (t5), a sequence-to-sequence model"),
])
def test_a_model_without_a_classification_head_is_refused_as_nli(tiny, tmp_path, name, found):
    # before: "the labels ['LABEL_0', 'LABEL_1'] are not NLI labels", the kind not named
    with pytest.raises(ConfigError) as err:
        _nli(tiny[name], tmp_path)
    message = _one_line(err)
    assert message.startswith(f"{tiny[name]} is {found}")
    assert "this step needs a 3-way NLI classifier" in message
    assert message.endswith("its classification head would be random; wire an NLI checkpoint "
                            "(paper: MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7)")
    assert "entailment, neutral, contradiction" in err.value.hint
    assert "method:" not in message   # rerank's advice is not the NLI filter's


def test_an_encoder_with_nli_labels_but_no_head_is_refused(tiny, tmp_path):
    # an NLI model's encoder saved alone (AutoModel) keeps its id2label: the label check passed
    # and AutoModelForSequenceClassification added a random head, whose argmax decided silently
    headless = _config_dir(tmp_path / "headless", {
        "architectures": ["DebertaV2Model"], "model_type": "deberta-v2", "id2label": NLI_LABELS},
        tiny["tok"])
    with pytest.raises(ConfigError) as err:
        _nli(headless, tmp_path)
    assert _one_line(err).startswith(f"{headless} is DebertaV2Model (deberta-v2), a text encoder")


def test_nli_classifiers_pass(tiny, tmp_path):
    assert _nli(tiny["cls"], tmp_path)[0] in {"entailment", "neutral", "contradiction"}
    # facebook/bart-large-mnli: an encoder-decoder with a classification head
    bart = _config_dir(tmp_path / "bart", {
        "architectures": ["BartForSequenceClassification"], "model_type": "bart",
        "is_encoder_decoder": True, "id2label": NLI_LABELS}, tiny["tok"])
    assert check_classifier(bart, "an NLI classifier", do="wire one")["model_type"] == "bart"


# ----------------------------------------------------------------------------- Reinforced-IR

def test_seq2seq_as_bi_encoder_is_refused(tiny):
    with pytest.raises(ConfigError) as err:
        Embedder(tiny["t5"], "mean", False, 32, "cpu")
    message = _one_line(err)
    assert message.startswith(f"{tiny['t5']} is T5ForConditionalGeneration (t5)")
    assert "this step needs a text encoder for embeddings" in message
    assert message.endswith("wire an encoder checkpoint to the encoder input")


def test_causal_lm_under_cls_pooling_is_refused_as_bi_encoder(tiny):
    with pytest.raises(ConfigError) as err:
        Embedder(tiny["lm"], "cls", False, 32, "cpu")
    message = _one_line(err)
    assert message.startswith(f"{tiny['lm']} is LlamaForCausalLM (llama)")
    assert "pooling: cls reads the first token's state" in message


def test_causal_lm_adapter_as_bi_encoder_is_refused(tiny, tmp_path):
    adapter = _config_dir(tmp_path / "adapter", {"base_model_name_or_path": str(tiny["lm"]),
                                                 "peft_type": "LORA", "task_type": "CAUSAL_LM"},
                          tiny["tok"], name="adapter_config.json")
    with pytest.raises(ConfigError) as err:
        Embedder(adapter, "mean", False, 32, "cpu")
    message = _one_line(err)
    assert message.startswith(f"{adapter} is a LoRA adapter for a causal language model")
    assert "this step needs a text encoder" in message


def test_bi_encoders_the_loader_supports(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        for pooling in ("mean", "cls"):
            assert tuple(Embedder(tiny["enc"], pooling, True, 32, "cpu")(PASSAGES).shape) == (2, 32)
    assert not _warnings(caplog)
    # a causal LM under mean pooling (an LLM embedder): a warning, never a refusal
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        assert tuple(Embedder(tiny["lm"], "mean", False, 32, "cpu")(PASSAGES).shape) == (2, 32)
    assert len(_warnings(caplog)) == 1


def test_a_causal_lm_without_a_pad_token_pads_with_its_eos(tiny, tmp_path):
    """LLM tokenizers often have no pad token; the first batch of two lengths failed."""
    import shutil

    from transformers import AutoTokenizer

    lm = tmp_path / "lm"
    shutil.copytree(tiny["lm"], lm)
    tok = AutoTokenizer.from_pretrained(str(lm))
    tok.pad_token = None
    tok.save_pretrained(str(lm))
    assert AutoTokenizer.from_pretrained(str(lm)).pad_token is None
    assert tuple(Embedder(lm, "mean", False, 32, "cpu")(PASSAGES).shape) == (2, 32)
    reranker = reranker_model.build(lm, TEMPLATE, 32, "cpu", pooling="mean")
    assert reranker.logits([QUERY] * 2, PASSAGES).shape == (2, 2)
