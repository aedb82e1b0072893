"""GPU steps on a machine whose torch is a CPU-only build (``+cpu``, what a CPU index or
mirror installs): a warning before anything runs, once, naming the steps and what to install;
``rag env`` flags it with exit 1; and a task given GPUs that torch cannot see is refused when
it starts (on any executor). Simulated GPUs: this test needs none."""

from __future__ import annotations

from types import SimpleNamespace as S

import pytest

from orchestrator.executors import gpus as gpus_module
from orchestrator.executors import local
from tests.conftest import rag

STEPS = [S(name="retrieve", gpus=1, shards=2), S(name="load", gpus=0, shards=1),
         S(name="sft", gpus=2, shards=1)]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "CPU-only build" in r.getMessage()]


def test_gpu_steps_with_a_cpu_only_torch_are_warned_once(monkeypatch, caplog):
    monkeypatch.setattr(local, "visible_gpus", lambda: [0, 1])
    monkeypatch.setattr(gpus_module, "cpu_only_torch", lambda: "2.13.0+cpu")
    monkeypatch.setattr(gpus_module, "_WARNED", [])
    executor = local.LocalExecutor(store=None, settings={})
    with caplog.at_level("WARNING", logger="ragline"):
        executor.check_resources(STEPS)
        executor.check_resources(STEPS[2:])      # the next member of a sweep: no repeat
    assert _warnings(caplog) == [
        "steps retrieve, sft ask for GPUs and this machine shows 2, but the installed torch "
        "2.13.0+cpu is a CPU-only build: a step that puts a model on its GPUs is refused when "
        "it starts; install a CUDA build of torch (the default torch wheel on PyPI for Linux "
        "x86_64, or pytorch.org's CUDA index) and check with rag env"]


def test_a_cuda_build_or_cpu_steps_are_not_warned(monkeypatch, caplog):
    monkeypatch.setattr(local, "visible_gpus", lambda: [0, 1])
    monkeypatch.setattr(gpus_module, "_WARNED", [])
    monkeypatch.setattr(gpus_module, "cpu_only_torch", lambda: None)     # a CUDA build
    executor = local.LocalExecutor(store=None, settings={})
    with caplog.at_level("WARNING", logger="ragline"):
        executor.check_resources(STEPS)
        monkeypatch.setattr(gpus_module, "cpu_only_torch", lambda: "2.13.0+cpu")
        executor.check_resources([S(name="load", gpus=0, shards=4)])    # no GPU step
    assert _warnings(caplog) == []


def test_cpu_only_torch_reads_the_installed_version(monkeypatch):
    monkeypatch.setattr("importlib.metadata.version", lambda name: "2.13.0+cpu")
    assert gpus_module.cpu_only_torch() == "2.13.0+cpu"
    monkeypatch.setattr("importlib.metadata.version", lambda name: "2.13.0")
    assert gpus_module.cpu_only_torch() is None


def test_rag_env_flags_a_cpu_only_torch_beside_gpus(monkeypatch, capsys):
    monkeypatch.setattr(gpus_module, "cpu_only_torch", lambda: "2.13.0+cpu")
    monkeypatch.setattr(gpus_module, "visible_gpus", lambda: [0, 1, 2, 3])
    assert rag("env") == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "gpus: 0, 1, 2, 3" in out
    assert "✗ torch 2.13.0+cpu is a CPU-only build on a machine with 4 GPU(s)" in out
    monkeypatch.setattr(gpus_module, "visible_gpus", lambda: [])
    assert rag("env") == 0                      # a CPU build on a CPU machine is right


def test_a_task_given_gpus_that_torch_cannot_see_is_refused_not_run_on_the_cpu(tmp_path,
                                                                              monkeypatch):
    """On a Ray or SLURM node (or after the warning above) a task given GPUs whose torch sees
    no CUDA device is refused when the stage asks for its device, before it loads a model;
    before, ``ctx.device`` answered "cpu" and the step trained on the CPU without a word."""
    import logging

    import torch

    from orchestrator.context import StageContext
    from orchestrator.errors import RagError

    def ctx(gpus):
        return StageContext("sft", 0, 1, tmp_path / "work", tmp_path / "scratch",
                            logging.getLogger("test"), gpus=gpus)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    with pytest.raises(RagError) as e:
        ctx([0, 1]).device
    assert e.value.message == ("step 'sft' was given GPU(s) 0, 1 but torch 2.13.0+cpu is a "
                               "CPU-only build, so it cannot use them (refused rather than run "
                               "on the CPU)")
    assert e.value.hint.endswith("; or run it on the CPU with steps.sft.gpus=0")
    monkeypatch.setattr(torch, "__version__", "2.13.0")          # a CUDA build, no driver
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with pytest.raises(RagError, match=r"torch 2.13.0 sees no CUDA device "
                                       r"\(CUDA_VISIBLE_DEVICES='3'; is the driver loaded"):
        ctx([3]).device
    assert ctx([]).device == "cpu"                                 # given no GPU: the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ctx([0]).device == "cuda"
