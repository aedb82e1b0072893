"""The local executor against the executor protocol, task by task (no runner): Done, Reused,
Failed with log and traceback, cancel() stopping workers and releasing locks, GPU slots, routing,
and non-main ranks that compute without committing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.artifacts import Ref
from orchestrator.executors import Router, executor_settings, make_executor
from orchestrator.executors.base import Done, Failed, Reused
from orchestrator.executors.local import LocalExecutor
from orchestrator.store import Store
from orchestrator.task import Task, run_task

IMPORTS = ["tests.toy.stages"]


def _step(name: str, shards: int = 1, gpus: int = 0, multi_gpu: str = "ranks"):
    return SimpleNamespace(name=name, shards=shards, gpus=gpus,
                           stage=SimpleNamespace(multi_gpu=multi_gpu))


def _task(tmp: Path, stage: str, config: dict, inputs: dict | None = None, key: str = "",
          shard: tuple[int, int] = (0, 1)) -> Task:
    key = key or (stage + "0" * 64)[:64]
    return Task(step=stage, stage=stage, config=config, inputs=inputs or {}, key=key,
                material={"k": key}, shard=list(shard), log=str(tmp / "logs" / f"{key}.log"),
                imports=IMPORTS, cache_root=str(tmp / "cache"))


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # workers import tests.toy.stages
    monkeypatch.setenv("PYTHONPATH", str(Path.cwd()))
    store = Store(tmp_path / "cache")
    return tmp_path, store, LocalExecutor(store, {"max_parallel": 2})


def test_done_then_reused(setup):
    tmp, store, ex = setup
    task = _task(tmp, "toy_gen", {"n": 4, "start": 0.0})
    assert ex.run(_step("gen"), [task]) == {task.key: Done()}
    assert store.lookup(task.key) is not None
    assert ex.run(_step("gen"), [task]) == {task.key: Reused()}
    assert not list(tmp.glob("logs/*.task.json*")), "task files are removed"


def test_failure_is_one_line_with_the_traceback_in_the_log(setup):
    tmp, store, ex = setup
    bad = tmp / "bad.txt"
    bad.write_text("1\nnot a number\n")
    ref = Ref("file", "", "h", [str(bad)], producer="source bad")
    task = _task(tmp, "toy_gen", {"n": 1, "start": 0.0},
                 {"path": {"ref": ref.to_json(), "start": 0, "stop": None}})
    result = ex.run(_step("gen"), [task])[task.key]
    assert isinstance(result, Failed)
    assert result.message == f"{bad}:2: expected a number, got 'not a number'"
    assert "Traceback (most recent call last)" in result.traceback
    assert "toy_gen failed:" in Path(result.log).read_text()
    assert store.lookup(task.key) is None


def test_cancel_stops_workers_and_releases_locks(setup, monkeypatch):
    tmp, store, ex = setup
    monkeypatch.setenv("TOY_COUNT_FILE", str(tmp / "count.txt"))
    monkeypatch.setenv("RAGLINE_STOP_GRACE_S", "5")
    gen = _task(tmp, "toy_gen", {"n": 4, "start": 0.0})
    ex.run(_step("gen"), [gen])
    numbers = store.lookup(gen.key).outputs()["out"]
    tasks = [_task(tmp, "toy_map", {"add": 0.0, "mul": 1.0, "sleep": 60.0},
                   {"numbers": {"ref": numbers.to_json(), "start": i * 2, "stop": i * 2 + 2}},
                   key=f"{i}" * 64, shard=(i, 2)) for i in range(2)]
    results: dict = {}
    runner = threading.Thread(target=lambda: results.update(ex.run(_step("map", 2), tasks)))
    runner.start()
    end = time.time() + 60
    while time.time() < end and not ((tmp / "count.txt").exists()
                                     and len((tmp / "count.txt").read_text().splitlines()) == 2):
        time.sleep(0.05)
    pids = [int(line.split()[2]) for line in (tmp / "count.txt").read_text().splitlines()]
    assert len(pids) == 2, "both shards' workers should have started within 60 s"
    ex.cancel()
    runner.join(timeout=30)
    assert not runner.is_alive()
    # two results: had ex.run raised, the thread would have ended with none
    assert len(results) == 2 and all(isinstance(r, Failed) for r in results.values())
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not list((tmp / "cache" / "tmp").glob("*")), "temporary dirs are removed"
    for t in tasks:
        lock = store.lock(t.key)
        lock.acquire(timeout=0)  # released: no filelock.Timeout
        lock.release()


def test_gpu_slots_are_disjoint(setup, monkeypatch):
    _, _, ex = setup
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4")
    monkeypatch.setattr("orchestrator.executors.gpus.gpu_driver_present", lambda: True)
    assert ex.slots(_step("s", 8, gpus=2)) == [[0, 1], [2, 3]]
    assert ex.slots(_step("s", 8, gpus=0)) == [[], []]  # max_parallel CPU slots


def test_multi_gpu_step_runs_as_ranks_or_one_process(setup):
    _, _, ex = setup
    ranks = ex.command(_step("train", gpus=2), Path("t.json"))
    assert ranks[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    one = ex.command(_step("infer", gpus=2, multi_gpu="one_process"), Path("t.json"))
    assert one[1:] == ["-m", "orchestrator.worker", "t.json"]


def test_router_keeps_light_steps_in_process(setup):
    _, store, _ = setup
    router = make_executor(store, {"executor": {"name": "local", "isolate": "auto"}})
    assert isinstance(router, Router) and router.name == "local"
    assert router.in_process(_step("a")) and not router.in_process(_step("b", shards=2))
    assert not router.in_process(_step("c", gpus=1))
    always = make_executor(store, {"executor": {"name": "local", "isolate": "always"}})
    assert not always.in_process(_step("a"))


def test_settings_old_and_new_forms():
    assert executor_settings({"executor": "local", "isolate": "never", "max_parallel": 3}) == \
        {"name": "local", "isolate": "never", "max_parallel": 3}
    assert executor_settings({"executor": {"name": "slurm", "partition": "gpu"},
                              "max_parallel": 0})["partition"] == "gpu"
    from orchestrator.errors import ConfigError

    with pytest.raises(ConfigError, match=r"ragline.executor.partiton: not a setting of the slurm "
                                          r"executor \(did you mean 'partition'\?\)"):
        executor_settings({"executor": {"name": "slurm", "partiton": "gpu"}})
    with pytest.raises(ConfigError, match="unknown executor 'slrum' \\(did you mean 'slurm'\\?\\)"):
        executor_settings({"executor": {"name": "slrum"}})


def test_non_main_rank_computes_without_committing(setup, monkeypatch):
    tmp, store, _ = setup
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "t1")
    monkeypatch.setenv("MASTER_PORT", "29999")
    task = _task(tmp, "toy_gen", {"n": 4, "start": 0.0})
    result: dict = {}
    other = threading.Thread(target=lambda: result.update(
        rank1=run_task(task, store, main_process=False)))
    other.start()  # waits for the main rank to hold the key
    time.sleep(0.5)
    assert other.is_alive() and store.lookup(task.key) is None
    entry, cached = run_task(task, store)  # the main rank computes and commits
    other.join(timeout=30)
    assert entry is not None and not cached
    assert result["rank1"] == (None, False)  # computed beside it, committed nothing
    # A later launch whose main rank finds the key cached tells the others so.
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "t2")
    assert run_task(task, store) == (store.lookup(task.key), True)
    assert run_task(task, store, main_process=False) == (None, True)
