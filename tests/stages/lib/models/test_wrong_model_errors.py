"""stages.lib.models.checkpoint: the wrong kind of model, wired where the types match (every
model is a ``Model`` directory), fails in one line naming the path, what it holds and what the
stage needs, before anything loads; the models the loaders really support still load.

The tiny models are random-init checkpoints built here (stages.lib.testing.tiny); checkpoints
of other real model families appear as their ``config.json`` beside a tiny tokenizer, which is
all the checks read (they refuse before any weights load).
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from orchestrator.errors import ConfigError
from stages.lib.models import checkpoint
from stages.lib.models.checkpoint import (
    check_classifier,
    check_encoder,
    check_generator,
    check_seq2seq,
    empty_vocabulary,
    kind_of,
)
from stages.lib.models.encoders import Encoder
from stages.lib.models.generation import TransformersGenerator, load_generator
from stages.lib.models.relevance import score_relevance
from stages.lib.testing.tiny import (
    tiny_causal_lm,
    tiny_classifier,
    tiny_encoder,
    tiny_seq2seq,
    tiny_tokenizer,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("wrong")
    tok = root / "tok"
    tiny_tokenizer(tok)
    return {"lm": tiny_causal_lm(root / "lm"), "enc": tiny_encoder(root / "enc"),
            "t5": tiny_seq2seq(root / "t5"), "cls": tiny_classifier(root / "cls"), "tok": tok}


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = err.value.message
    assert "\n" not in message and err.value.hint
    return message


def _config_dir(path, config: dict, tok, name: str = "config.json"):
    """A directory with ``config.json`` (or ``name``) and the tiny tokenizer: what the checks
    read of a checkpoint of another family."""
    path.mkdir(parents=True)
    (path / name).write_text(json.dumps(config))
    for f in TOKENIZER_FILES:
        shutil.copy(tok / f, path / f)
    return path


# ----------------------------------------------------------------------------- generator

def test_encoder_as_generator_is_one_line_naming_the_path_and_the_fix(tiny):
    # the tiny encoder even has a chat template: without the check it "generated" from a random
    # BertLMHeadModel head (infer_topk), or failed in TRL with an AttributeError (sft)
    with pytest.raises(ConfigError) as err:
        load_generator(str(tiny["enc"]), backend="transformers")
    message = _one_line(err)
    assert message.startswith(f"{tiny['enc']} is BertModel (bert), a text encoder")
    assert "needs a causal language model" in message
    assert "wire the generator checkpoint to this step's model input" in message
    assert "index/retrieve" in err.value.hint


def test_seq2seq_and_classifier_as_generator(tiny):
    with pytest.raises(ConfigError) as err:
        TransformersGenerator(tiny["t5"])
    assert "T5ForConditionalGeneration (t5), a sequence-to-sequence model" in _one_line(err)
    assert "rerank" in err.value.hint
    with pytest.raises(ConfigError) as err:
        TransformersGenerator(tiny["cls"])
    assert "BertForSequenceClassification (bert), a sequence classifier" in _one_line(err)


def test_base_model_without_lm_head_as_generator(tiny, tmp_path):
    # e5-mistral: an LLM embedder saved as MistralModel, its lm_head would be random
    e5 = _config_dir(tmp_path / "e5", {"architectures": ["MistralModel"], "model_type": "mistral",
                                       "tie_word_embeddings": False}, tiny["tok"])
    with pytest.raises(ConfigError) as err:
        check_generator(e5)
    assert "MistralModel (mistral), a base model without a language-model head" in _one_line(err)
    # ... but a tied head is the embeddings: such a checkpoint loads whole, so it passes
    tied = _config_dir(tmp_path / "tied", {"architectures": ["LlamaModel"], "model_type": "llama",
                                           "tie_word_embeddings": True}, tiny["tok"])
    assert check_generator(tied)[0]["model_type"] == "llama"


def test_real_generators_pass(tiny):
    assert check_generator(tiny["lm"]) == (json.loads((tiny["lm"] / "config.json").read_text()),
                                           None)
    gen = load_generator(str(tiny["lm"]), backend="transformers")
    assert gen.chat([[{"role": "user", "content": "hi"}]], max_new_tokens=2)


# ----------------------------------------------------------------------------- encoder

def test_seq2seq_as_encoder_is_refused(tiny):
    # without the check: "ValueError: You must specify exactly one of input_ids or inputs_embeds"
    with pytest.raises(ConfigError) as err:
        Encoder(tiny["t5"])
    message = _one_line(err)
    assert message.startswith(f"{tiny['t5']} is T5ForConditionalGeneration (t5)")
    assert "needs a text encoder" in message and "wire an encoder checkpoint" in message


def test_causal_lm_as_encoder_warns_and_still_encodes(tiny, caplog):
    # LLM embedders are causal LMs too: a warning, never a refusal
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        enc = Encoder(tiny["lm"])
    assert enc.encode(["hello world"]).shape == (1, 32)
    warned = [r.getMessage() for r in caplog.records if r.name == checkpoint.__name__]
    assert len(warned) == 1 and "LlamaForCausalLM (llama), a causal language model" in warned[0]
    assert "wire the sentence encoder to the encoder input" in warned[0]


def test_encoders_the_loader_supports_pass_silently(tiny, tmp_path, caplog):
    e5 = _config_dir(tmp_path / "e5", {"architectures": ["MistralModel"], "model_type": "mistral"},
                     tiny["tok"])
    bge_m3 = _config_dir(tmp_path / "m3", {"architectures": ["XLMRobertaModel"],
                                           "model_type": "xlm-roberta"}, tiny["tok"])
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        for path in (tiny["enc"], e5, bge_m3):
            check_encoder(path)
    assert not [r for r in caplog.records if r.name == checkpoint.__name__]


def test_causal_lm_adapter_as_encoder(tiny, tmp_path):
    adapter = _config_dir(tmp_path / "adapter", {"base_model_name_or_path": str(tiny["lm"]),
                                                 "peft_type": "LORA", "task_type": "CAUSAL_LM"},
                          tiny["tok"], name="adapter_config.json")
    # without the check: NoMatchingPeftModuleError (the base loads as LlamaModel, no "model.")
    with pytest.raises(ConfigError) as err:
        Encoder(adapter)
    assert "is a LoRA adapter for a causal language model" in _one_line(err)


# ----------------------------------------------------------------------------- directories

def test_directory_without_config_json(tiny, tmp_path):
    hub_cache = tmp_path / "models--org--name"
    snapshot = hub_cache / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    shutil.copy(tiny["enc"] / "config.json", snapshot / "config.json")
    # without the check: "ValueError: Couldn't instantiate the backend tokenizer from one of"
    with pytest.raises(ConfigError) as err:
        Encoder(hub_cache)
    message = _one_line(err)
    assert message.startswith(f"{hub_cache}: no config.json, so it is not a model checkpoint")
    assert str(snapshot) in message and err.value.hint == f"wire that directory instead: {snapshot}"

    gguf = tmp_path / "gguf"
    gguf.mkdir()
    (gguf / "model.Q4_1.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError) as err:
        load_generator(str(gguf), backend="transformers")
    assert "GGUF file model.Q4_1.gguf" in _one_line(err) and "smollm2" in err.value.hint

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as err:
        check_seq2seq(empty)
    assert _one_line(err).startswith(f"{empty}: no config.json, so it is not a model "
                                     "checkpoint; this step needs ")   # said once, not twice


def test_a_file_is_not_a_checkpoint_directory(tiny):
    weights = tiny["lm"] / "model.safetensors"
    with pytest.raises(ConfigError) as err:   # was: "model directory ... does not exist"
        load_generator(str(weights), backend="transformers")
    assert _one_line(err).startswith(f"{weights} is a file, not a checkpoint directory")
    assert str(tiny["lm"]) in err.value.hint
    with pytest.raises(ConfigError, match="is a file, not a checkpoint directory"):
        Encoder(tiny["enc"] / "config.json")
    data = tiny["lm"].parent / "corpus.jsonl"   # beside no config.json: no folder to suggest
    data.write_text("{}\n")
    with pytest.raises(ConfigError) as err:
        load_generator(str(data), backend="transformers")
    assert err.value.hint == "wire the directory that holds config.json (written by save_pretrained)"


def _without_tokenizer(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        if not f.name.startswith(("tokenizer", "chat_template")):
            shutil.copy(f, dst / f.name)
    return dst


def test_checkpoint_without_tokenizer(tiny, tmp_path):
    # without the check the BERT encoder loaded a 5-token tokenizer (every word [UNK]) and built
    # an index of identical vectors, silently; the generator failed with "Couldn't instantiate
    # the backend tokenizer ... You need to have sentencepiece or tiktoken installed"
    enc = _without_tokenizer(tiny["enc"], tmp_path / "enc")
    with pytest.raises(ConfigError) as err:
        Encoder(enc)
    assert _one_line(err).startswith(f"{enc}: no tokenizer files (tokenizer.json, vocab.*")
    lm = _without_tokenizer(tiny["lm"], tmp_path / "lm")
    with pytest.raises(ConfigError) as err:
        load_generator(str(lm), backend="transformers")
    assert "LlamaForCausalLM (llama) needs its tokenizer saved beside it" in _one_line(err)


def test_tokenizer_with_only_special_tokens():
    class Stub:
        all_special_ids = [0, 1, 2, 3, 4]

        def __len__(self):
            return 5

    with pytest.raises(ConfigError, match="the tokenizer has 5 tokens, all special"):
        empty_vocabulary(Stub(), "/m")


# ----------------------------------------------------------------------------- LoRA adapters

@pytest.fixture(scope="module")
def adapter(tiny, tmp_path_factory):
    """A real LoRA adapter of the tiny LM, as the sft stage keeps it (``out/adapter``)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("adapter") / "adapter"
    base = AutoModelForCausalLM.from_pretrained(str(tiny["lm"]))
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(str(out))
    return out


def test_adapter_without_tokenizer_as_generator(adapter):
    with pytest.raises(ConfigError) as err:
        load_generator(str(adapter), backend="transformers")
    message = _one_line(err)
    assert message.startswith(f"{adapter} is a LoRA adapter (adapter_config.json, base model ")
    assert "not its adapter/ folder" in message


def test_vllm_backend_checks_too(tiny, adapter, tmp_path):
    # checked before vLLM is imported: the same messages with or without vllm installed
    with pytest.raises(ConfigError, match="is BertModel \\(bert\\), a text encoder"):
        load_generator(str(tiny["enc"]), backend="vllm")
    full = tmp_path / "adapter"
    shutil.copytree(adapter, full)
    for f in TOKENIZER_FILES:
        shutil.copy(tiny["lm"] / f, full / f)
    with pytest.raises(ConfigError) as err:
        load_generator(str(full), backend="vllm")
    assert "the vLLM backend loads full checkpoints only" in _one_line(err)


def test_adapter_with_tokenizer_and_local_base_still_loads(tiny, adapter, tmp_path, caplog):
    full = tmp_path / "adapter"
    shutil.copytree(adapter, full)
    for f in TOKENIZER_FILES:
        shutil.copy(tiny["lm"] / f, full / f)
    with caplog.at_level(logging.WARNING, logger=checkpoint.__name__):
        gen = load_generator(str(full), backend="transformers")   # transformers' PEFT loading
    assert gen.chat([[{"role": "user", "content": "hi"}]], max_new_tokens=2)
    assert any("outside this step's inputs" in r.getMessage() for r in caplog.records)

    broken = json.loads((full / "adapter_config.json").read_text())
    broken["base_model_name_or_path"] = str(tmp_path)   # a directory, but no checkpoint
    (full / "adapter_config.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigError) as err:
        load_generator(str(full), backend="transformers")
    assert f"whose base model '{tmp_path}' (adapter_config.json" in _one_line(err)


# ----------------------------------------------------------------------------- relevance

QUESTIONS, PASSAGES = ["who wrote hamlet?"], ["Hamlet is a tragedy by William Shakespeare."]


def test_rerank_methods_refuse_the_wrong_model(tiny):
    # cross_encoder on an encoder or a causal LM used to "work": a random classification head
    with pytest.raises(ConfigError) as err:
        score_relevance("cross_encoder", tiny["enc"], QUESTIONS, PASSAGES)
    assert "its classification head would be random" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        score_relevance("cross_encoder", tiny["lm"], QUESTIONS, PASSAGES)
    assert "or for this model use method: causal_lm" in _one_line(err)
    # monot5 on a causal LM: was "ValueError: Unrecognized configuration class ... LlamaConfig"
    with pytest.raises(ConfigError) as err:
        score_relevance("monot5", tiny["lm"], QUESTIONS, PASSAGES)
    assert "needs a sequence-to-sequence model (monoT5" in _one_line(err)
    # causal_lm on an encoder: was "the tokenizer has no chat template"
    with pytest.raises(ConfigError) as err:
        score_relevance("causal_lm", tiny["enc"], QUESTIONS, PASSAGES, prompt=object())
    assert "a chat model (a *ForCausalLM checkpoint) for relevance method 'causal_lm'" \
        in _one_line(err)


def test_rerank_methods_take_their_models(tiny):
    assert check_classifier(tiny["cls"])["architectures"] == ["BertForSequenceClassification"]
    assert check_seq2seq(tiny["t5"])["is_encoder_decoder"] is True
    assert len(score_relevance("cross_encoder", tiny["cls"], QUESTIONS, PASSAGES)) == 1


# ----------------------------------------------------------------------------- kinds

@pytest.mark.parametrize("config, kind", [
    ({"architectures": ["BertModel"], "model_type": "bert"}, "encoder"),            # Contriever
    ({"architectures": ["MistralModel"], "model_type": "mistral"}, "base"),         # e5-mistral
    ({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}, "causal_lm"),  # gte-Qwen2
    ({"architectures": ["XLMRobertaForSequenceClassification"],
      "model_type": "xlm-roberta"}, "classifier"),                                 # bge-reranker
    ({"architectures": ["BartForSequenceClassification"], "is_encoder_decoder": True},
     "classifier"),
    ({"architectures": ["T5EncoderModel"], "model_type": "t5", "is_encoder_decoder": True},
     "seq2seq"),                                                                    # GTR
    ({"architectures": ["ChatGLMModel"],
      "auto_map": {"AutoModelForCausalLM": "x.ChatGLMForConditionalGeneration"}}, "causal_lm"),
    ({"architectures": ["BertForMaskedLM"], "model_type": "bert"}, "encoder"),
    ({"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava"}, "unknown"),
    ({"model_type": "llama"}, "unknown"),
])
def test_kind_of(config, kind):
    assert kind_of(config) == kind


def test_sft_and_dpo_refuse_an_encoder_before_loading_it(tiny, tmp_path):
    from stages.lib.train.args import TrainArgs
    from stages.lib.train.finetune import Finetune
    from stages.lib.train.hooks import TrainHooks

    with Finetune("sft", tiny["enc"], tmp_path / "out", TrainArgs(), TrainHooks()) as ft:
        with pytest.raises(ConfigError) as err:
            ft.prepare()
    message = _one_line(err)
    assert "is BertModel" in message and "a causal language model to sft-train" in message


def test_a_model_source_is_checked_at_plan_time(tiny, tmp_path):
    """``Model.check_source``: what ``rag plan`` calls on a model given as a recipe source."""
    from stages.schemas import Model

    Model.check_source(tiny["lm"])                       # a real checkpoint passes
    (tmp_path / "hub" / "snapshots" / "abc").mkdir(parents=True)
    shutil.copy(tiny["lm"] / "config.json", tmp_path / "hub" / "snapshots" / "abc")
    with pytest.raises(ConfigError) as err:
        Model.check_source(tmp_path / "hub")
    assert "no config.json, so it is not a model checkpoint (one is below it" in _one_line(err)
