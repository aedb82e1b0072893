"""The GPU-step policy the Ray and SLURM executors share (``check_node_gpus``), checked here
against a made-up cluster: no cluster is started, ``gpus_per_node`` is given."""

from __future__ import annotations

import doctest
from types import SimpleNamespace

import pytest

from orchestrator.errors import ConfigError
from orchestrator.executors import gpus
from orchestrator.executors.gpus import check_node_gpus


def _step(name: str, gpus: int, shards: int = 1, multi_gpu: str = "ranks"):
    return SimpleNamespace(name=name, gpus=gpus, shards=shards, stage=SimpleNamespace(multi_gpu=multi_gpu))


def _too_many(step, per_node):
    return ConfigError(f"{step.name}: too many, nodes {per_node}")


def _split(gpus: int, per_node: list[int]):
    if gpus % max(per_node):
        raise ConfigError(f"{gpus} GPUs do not split")


def test_formulas():
    assert doctest.testmod(gpus).failed == 0


def test_cpu_steps_do_not_ask_the_cluster():
    def never():
        raise AssertionError("gpus_per_node asked for CPU steps")

    check_node_gpus([_step("load", 0), _step("map", 0, shards=8)], never, _split, _too_many)


def test_a_shard_must_fit_on_one_node_and_a_gang_must_split():
    nodes = lambda: [4, 4]  # noqa: E731
    check_node_gpus([_step("map", 4, shards=8), _step("sft", 8)], nodes, _split, _too_many)
    with pytest.raises(ConfigError, match=r"^map: too many, nodes \[4, 4\]$"):
        check_node_gpus([_step("map", 5, shards=2)], nodes, _split, _too_many)
    with pytest.raises(ConfigError, match=r"^gen: too many"):  # one process sees all its GPUs
        check_node_gpus([_step("gen", 8, multi_gpu="one_process")], nodes, _split, _too_many)
    with pytest.raises(ConfigError) as e:
        check_node_gpus([_step("sft", 6)], nodes, _split, _too_many)
    assert e.value.message == "steps.sft.gpus: 6 GPUs do not split"
    assert e.value.hint == "ask for a multiple of a node's GPU count"


def test_no_gpu_node_is_its_own_message_when_the_executor_gives_one():
    def no_gpus(step, per_node):
        return ConfigError(f"{step.name}: no GPU node")

    with pytest.raises(ConfigError, match=r"^sft: no GPU node$"):
        check_node_gpus([_step("sft", 8)], lambda: [0, 0], _split, _too_many, no_gpus)
    with pytest.raises(ConfigError, match=r"^map: too many, nodes \[0\]$"):
        check_node_gpus([_step("map", 1, shards=2)], lambda: [0], _split, _too_many)


def test_ray_messages_without_a_cluster(tmp_path, monkeypatch):
    """The Ray executor's own wording, its node count given instead of asked of a cluster."""
    pytest.importorskip("ray")
    from orchestrator.executors.ray import RayExecutor
    from orchestrator.store import Store

    ex = RayExecutor(Store(tmp_path / "cache"), {"address": "local"})
    monkeypatch.setattr(ex, "node_resources", lambda: [(64.0, 2), (64.0, 2)])  # (CPUs, GPUs)
    ex.check_resources([_step("train", 4), _step("m", 2, shards=4)])
    with pytest.raises(ConfigError) as e:
        ex.check_resources([_step("m", 3, shards=4)])
    assert e.value.message == ("steps.m.gpus: 3 GPU(s) per shard asked for, but no Ray node has "
                               "that many (GPUs per node: [2, 2])")
    assert e.value.hint == "lower steps.m.gpus or add GPU nodes"
    with pytest.raises(ConfigError, match=r"^steps\.train\.gpus: 3 GPUs cannot be split") as e:
        ex.check_resources([_step("train", 3)])
    assert e.value.hint == "ask for a multiple of a node's GPU count"


def test_gpu_uuids_in_cuda_visible_devices_count_as_gpus(monkeypatch):
    """Container runtimes and MIG name GPUs by UUID; they were dropped, so every GPU step was
    refused with "no CUDA GPU is visible"."""
    monkeypatch.setattr(gpus, "gpu_driver_present", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5b1c, MIG-2f0a,1,")
    assert gpus.visible_gpus() == ["GPU-5b1c", "MIG-2f0a", 1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpus.visible_gpus() == []


def test_a_cluster_worker_takes_the_gpus_its_scheduler_set(monkeypatch, tmp_path):
    """A SLURM job or Ray task arrives with ``gpus: []`` (the scheduler, not the driver, picks
    them) and CUDA_VISIBLE_DEVICES set: the step's context must see them, or every GPU step of
    a cluster run trained on the CPU."""
    from orchestrator import worker
    from orchestrator.executors import base

    seen = {}
    monkeypatch.setattr(gpus, "gpu_driver_present", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setattr(base, "run_reporting",
                        lambda task, store, main_process: seen.setdefault("gpus", task.gpus))
    monkeypatch.setattr(base, "result_to_json", lambda result: {})
    monkeypatch.setattr("orchestrator.logs.worker_logging", lambda path: None)
    task_file = tmp_path / "task.json"
    task_file.write_text(_task_json(tmp_path))
    worker.main([str(task_file)], local=False)
    assert seen["gpus"] == [2, 3]


def _task_json(tmp_path) -> str:
    import dataclasses
    import json

    from orchestrator.task import Task

    fields = {f.name: f for f in dataclasses.fields(Task)}
    values = {n: f.default for n, f in fields.items()
              if f.default is not dataclasses.MISSING}
    values.update({n: f.default_factory() for n, f in fields.items()
                   if f.default_factory is not dataclasses.MISSING})
    for n in fields:
        values.setdefault(n, str(tmp_path / n))
    values["gpus"] = []
    return json.dumps(values)
