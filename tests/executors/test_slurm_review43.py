"""SLURM executor defects of review 43 (findings 3 and 4; /work/logs/review43.md): a list of
partitions refused, ``sbatch: {partition: X}`` checked against the default partition, and jobs
cancelled for pending reasons that do clear (``PartitionNodeLimit``, ``PartitionConfig``).

No cluster: a fake ``sinfo`` on PATH (``_fake_slurm`` of test_slurm_audit43) and a monkeypatched
``squeue_lines``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.errors import ConfigError
from orchestrator.store import Store
from tests.executors.test_slurm_audit43 import _fake_slurm

# the default partition 'cpu' is small and short; 'gpu' and 'gpu-long' differ in size and MaxTime
SINFO = ("c1|(null)|cpu*|4|8192|1:00:00\n"
         "g1|gpu:4|gpu|8|65536|4:00:00\n"
         "g2|gpu:4|gpu-long|32|262144|2-00:00:00")


def _checker(tmp_path: Path, monkeypatch):
    from orchestrator.executors.slurm import SlurmExecutor

    _fake_slurm(tmp_path, monkeypatch, SINFO)
    store = Store(tmp_path / "c")
    cpu, gpu = (SimpleNamespace(name=n, gpus=g, shards=4) for n, g in (("cpu_map", 0),
                                                                         ("gpu_map", 4)))

    def check(gpus: bool = False, **cfg):
        SlurmExecutor(store, {"name": "slurm", **cfg}).check_resources([gpu if gpus else cpu])
    return check


def test_a_list_of_partitions_is_checked_against_all_of_them(tmp_path, monkeypatch):
    """Review 43, finding 3: `partition: gpu,gpu-long` (sbatch takes a list; the job runs on
    whichever starts it first) was compared with each partition name as one string and refused
    before any step: "no partition 'gpu,gpu-long' on this cluster (have: cpu, gpu, gpu-long)".
    Now the nodes of every listed partition count: cpus_per_task and mem_gb against the largest
    node of any, time against the largest MaxTime; only a listed partition that does not exist
    is refused."""
    check = _checker(tmp_path, monkeypatch)
    both = {"partition": "gpu,gpu-long"}
    check(**both, cpus_per_task=16, mem_gb=128, time="1-00:00:00")   # fits gpu-long only
    check(True, **both, time=120)
    cases = (({"cpus_per_task": 64}, r"cpus_per_task: 64 CPUs .* partitions 'gpu,gpu-long' "
                                     r"have at most 32"),
             ({"mem_gb": 512}, r"mem_gb: 512 GB .* at most 256 GB"),
             ({"time": "3-00:00:00"}, r"time: 4320 minutes .* at most 2880 \(its MaxTime\)"),
             ({"partition": "gpu,nope"}, r"^ragline.executor.partition: no partition 'nope' "
                                         r"on this cluster \(have: cpu, gpu, gpu-long\)"))
    for cfg, pattern in cases:
        with pytest.raises(ConfigError, match=pattern) as e:
            check(**{**both, **cfg})
        assert e.value.hint


def test_partition_set_through_sbatch_is_the_one_checked(tmp_path, monkeypatch):
    """Review 43, finding 3: with `sbatch: {partition: gpu-long}` and `partition` unset, the
    job settings were checked against the default partition 'cpu' (time=1-00:00:00 refused
    with "the default partition 'cpu' allows at most 60") and a typo there was not caught.
    Now that partition is checked, and the messages name ragline.executor.sbatch.partition."""
    check = _checker(tmp_path, monkeypatch)
    check(sbatch={"partition": "gpu-long"}, cpus_per_task=16, time="1-00:00:00")
    check(True, sbatch={"partition": "gpu"}, time=120)
    with pytest.raises(ConfigError, match=r"time: 2880 minutes .* partition 'gpu' allows at "
                                          r"most 240") as e:
        check(sbatch={"partition": "gpu"}, time="2-00:00:00")
    with pytest.raises(ConfigError, match=r"^ragline.executor.sbatch.partition: no partition "
                                          r"'gpu-lng' .*did you mean 'gpu-long'") as e:
        check(sbatch={"partition": "gpu-lng"})
    assert "set ragline.executor.sbatch.partition" in e.value.hint


def _waiting(tmp_path: Path, monkeypatch, cfg: dict, answers: list[list[str]]):
    """An executor whose one job ``7`` squeue reports with ``answers`` (one per poll; done
    after the last), and the warnings it logs."""
    from orchestrator.executors import slurm

    _fake_slurm(tmp_path, monkeypatch, SINFO)
    monkeypatch.setattr(slurm, "POLL_S", 0)
    monkeypatch.setattr(slurm, "NOTE_S", 0)
    monkeypatch.setattr(slurm.time, "sleep", lambda s: None)
    ex = slurm.SlurmExecutor(Store(tmp_path / "c"), {"name": "slurm", **cfg})
    ex._active = [SimpleNamespace(job_id="7", done=lambda: not answers)]
    monkeypatch.setattr(slurm, "squeue_lines", lambda ids: answers.pop(0))
    warned: list[str] = []
    monkeypatch.setattr(slurm.log, "warning", lambda *a: warned.append(a[0] % a[1:]))
    return ex, warned


def test_partition_node_limit_and_config_are_waited_for(tmp_path, monkeypatch):
    """Review 43, finding 4: PartitionNodeLimit (also "required nodes are DOWN or DRAINED")
    and PartitionConfig ("not available now") were taken as reasons SLURM never clears: a
    4-node gang with one node drained was scancelled after 30 s and its step failed as bad
    input ("change ragline.executor.partition"). Now both are waited for, with the periodic
    "waiting" line, and the job runs when the nodes come back."""
    ex, warned = _waiting(tmp_path, monkeypatch, {"partition": "gpu"},
                          [["7|PENDING|PartitionNodeLimit"], ["7|PENDING|PartitionConfig"]])
    assert ex._wait(SimpleNamespace(name="train")) is None
    assert warned == ["train: waiting: 1 SLURM job(s) pending (PartitionNodeLimit)",
                      "train: waiting: 1 SLURM job(s) pending (PartitionConfig)"]


def test_partition_time_limit_of_one_listed_partition_is_waited_for(tmp_path, monkeypatch):
    """Review 43, finding 3 (with the never-clearing reasons of audit 43): a job listing
    `gpu,gpu-long` may show PartitionTimeLimit for 'gpu' while it fits 'gpu-long' (squeue
    gives the reason of the last partition tried); it was cancelled as "will never start".
    Now, with several partitions, that reason is waited for (a time over every listed MaxTime
    is refused before submission); with one, it still fails the step."""
    ex, warned = _waiting(tmp_path, monkeypatch, {"partition": "gpu,gpu-long", "time": 600},
                          [["7|PENDING|PartitionTimeLimit"]])
    assert ex._wait(SimpleNamespace(name="train")) is None
    assert warned == ["train: waiting: 1 SLURM job(s) pending (PartitionTimeLimit)"]
    (tmp_path / "one").mkdir()
    ex, _ = _waiting(tmp_path / "one", monkeypatch, {"partition": "gpu", "time": 600},
                     [["7|PENDING|PartitionTimeLimit"], []])
    failure = ex._wait(SimpleNamespace(name="train"))
    assert failure and "ragline.executor.time=600" in failure.message


def test_a_task_that_started_is_not_labelled_never_started(tmp_path, monkeypatch):
    """Review 43, finding 4: after the jobs were cancelled because some array tasks pended
    for a reason SLURM never clears, every task submitit did not yet know to be done got
    "SLURM will never start the job", the one running at the last poll too. Now a task squeue
    showed started is "cancelled after it started" (naming the reason and the setting); the
    pending ones keep "will never start"."""
    from orchestrator.executors import slurm

    _fake_slurm(tmp_path, monkeypatch, SINFO)
    monkeypatch.setattr(slurm, "POLL_S", 0)
    monkeypatch.setattr(slurm.time, "sleep", lambda s: None)
    monkeypatch.setattr(slurm, "squeue_lines", lambda ids: [
        "7_0|RUNNING|None", "7_[1-2]|PENDING|PartitionTimeLimit"])
    cancelled = []
    jobs = [SimpleNamespace(job_id=f"7_{i}", done=lambda: False,
                            cancel=lambda check, i=i: cancelled.append(i)) for i in range(3)]
    tasks = [SimpleNamespace(key=f"k{i}", log=str(tmp_path / "logs" / f"{i}.log"))
             for i in range(3)]
    ex = slurm.SlurmExecutor(Store(tmp_path / "c"), {"name": "slurm", "partition": "gpu",
                                                      "time": 600})
    monkeypatch.setattr(ex, "_submit", lambda *a: setattr(ex, "_active", jobs))
    monkeypatch.setattr(slurm, "write_task_files",
                        lambda ts: {t.key: tmp_path / f"{t.key}.task" for t in ts})
    monkeypatch.setattr(slurm, "remove_task_files", lambda files: None)
    results = ex.run(SimpleNamespace(name="cpu_map", gpus=0), tasks)
    assert sorted(cancelled) == [0, 1, 2]
    started = results["k0"].message
    assert "will never start" not in started and "7_0 was cancelled after it started" in started
    assert "pending for PartitionTimeLimit (ragline.executor.time=600)" in started, started
    for key in ("k1", "k2"):
        assert results[key].message.startswith("SLURM will never start the job"), results[key]
        assert results[key].bad_input
