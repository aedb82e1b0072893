"""A LoRA adapter whose adapter_config.json names a Hugging Face Hub id as its base model, on a
machine that cannot download it (the Hub unreachable, or HF_HUB_OFFLINE set, and the base not
in the local cache): one line before anything loads, naming the base and how to point the
adapter at a local one, instead of huggingface_hub's retries (about 25 s) and then an OSError.
No test here touches the network: reachability is monkeypatched, or probed on a local port."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from orchestrator.errors import ConfigError
from stages.lib.models import checkpoint
from stages.lib.models.checkpoint import GENERATOR, adapter_base_cached_only
from stages.lib.models.generation import load_generator

pytestmark = pytest.mark.timeout(60)

HUB_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from stages.lib.testing.tiny import tiny_tokenizer

    path = tmp_path_factory.mktemp("tok")
    tiny_tokenizer(path)
    return path


@pytest.fixture
def adapter(tok, tmp_path, monkeypatch):
    """An adapter directory as the checks read it (adapter_config.json and a tokenizer); its
    weights are never reached. The Hub is online in name; each test says whether it answers."""
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)   # as read at import
    path = tmp_path / "adapter"
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": HUB_BASE, "peft_type": "LORA", "task_type": "CAUSAL_LM"}))
    for f in tok.iterdir():
        shutil.copy(f, path / f.name)
    return path


def _unprobed(*_):
    raise AssertionError("the Hub was asked although it is offline")


def test_an_unreachable_hub_fails_at_once_naming_the_base_and_the_fix(adapter, monkeypatch):
    monkeypatch.setattr(checkpoint, "_hub_reachable", lambda endpoint: False)
    monkeypatch.setattr(checkpoint, "_in_hf_cache", lambda repo: False)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_generator(str(adapter), backend="transformers")
    assert time.perf_counter() - start < 5
    message, hint = err.value.message, err.value.hint
    assert "\n" not in message
    assert message.startswith(f"{adapter} is a LoRA adapter whose base model '{HUB_BASE}' "
                              "(adapter_config.json base_model_name_or_path) is a Hub id, not a "
                              "local directory, and is not in the local Hugging Face cache; the "
                              "Hugging Face Hub (")
    assert ") cannot be reached, so nothing can be downloaded; this step needs" in message
    assert f"point base_model_name_or_path in {adapter / 'adapter_config.json'} at a local copy " \
           "of the base" in hint
    assert f"hf download {HUB_BASE}" in hint and "HF_HUB_OFFLINE=1" in hint


def test_hf_hub_offline_is_not_probed(adapter, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(checkpoint, "_hub_reachable", _unprobed)
    monkeypatch.setattr(checkpoint, "_in_hf_cache", lambda repo: False)
    with pytest.raises(ConfigError, match=r"HF_HUB_OFFLINE is set, so nothing can be downloaded"):
        load_generator(str(adapter), backend="transformers")
    monkeypatch.setattr(checkpoint, "_in_hf_cache", lambda repo: True)   # cached: the cache only
    assert adapter_base_cached_only(adapter, json.loads(
        (adapter / "adapter_config.json").read_text()), GENERATOR) is True


def test_a_reachable_hub_or_a_local_base_loads_as_before(adapter, tmp_path, monkeypatch):
    config = json.loads((adapter / "adapter_config.json").read_text())
    monkeypatch.setattr(checkpoint, "_hub_reachable", lambda endpoint: True)
    assert adapter_base_cached_only(adapter, config, GENERATOR) is False   # the loader downloads
    monkeypatch.setattr(checkpoint, "_hub_reachable", _unprobed)
    local = tmp_path / "base"
    local.mkdir()
    assert adapter_base_cached_only(adapter, {**config, "base_model_name_or_path": str(local)},
                                    GENERATOR) is False


def test_a_base_that_is_neither_a_directory_nor_a_hub_id(adapter, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "_hub_reachable", _unprobed)
    gone = tmp_path / "moved" / "base"
    (adapter / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": str(gone), "task_type": "CAUSAL_LM"}))
    with pytest.raises(ConfigError, match=rf"base model '{gone}' \(adapter_config.json "
                                          r"base_model_name_or_path\) is not a directory here, "
                                          r"nor a Hugging Face Hub id"):
        load_generator(str(adapter), backend="transformers")


def test_the_probe_is_one_short_request(monkeypatch):
    """A closed local port: refused at once, no retries (huggingface_hub's session)."""
    start = time.perf_counter()
    assert checkpoint._hub_reachable.__wrapped__("http://127.0.0.1:9", timeout=2.0) is False
    assert time.perf_counter() - start < 5
