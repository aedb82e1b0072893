"""The SLURM executor's own checks: GPUs counted on the partition, not on the submitting machine
(a login node has none), a multi-GPU step as one job of ranks, sbatch flags from the executor
block. The conformance suite (test_conformance.py) runs the whole recipe on a real cluster."""

from __future__ import annotations

import doctest
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.errors import ConfigError
from orchestrator.store import Store


def _step(name: str, gpus: int, shards: int = 1):
    return SimpleNamespace(name=name, gpus=gpus, shards=shards)


def test_formulas():
    from orchestrator.executors import launch, slurm

    for module in (slurm, launch):  # gpus.py: test_gpus.py
        assert doctest.testmod(module).failed == 0


@pytest.fixture
def login_node(tmp_path, monkeypatch):
    """A SLURM login node without GPUs: fake sinfo/sbatch/srun on PATH, no CUDA devices here.
    ``sinfo`` prints the nodes of the partition given with -p (two 4-GPU nodes in 'gpu')."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    nodes = {"gpu": "g1|gpu:a100:4(S:0-1)|gpu\ng2|gpu:a100:4(S:0-1)|gpu",
             "cpu": "c1|(null)|cpu*"}
    script = "#!/bin/sh\ncase \"$*\" in\n"
    for part, text in nodes.items():
        script += f"  *'-p {part}'*) printf '%s\\n' '{text}' ;;\n"
    script += f"  *) printf '%s\\n' '{nodes['cpu']}' '{nodes['gpu']}' ;;\nesac\n"
    for name, body in {"sinfo": script, "sbatch": "#!/bin/sh\nexit 1\n", "srun": "#!/bin/sh\nexit 1\n"}.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return Store(tmp_path / "cache")


def test_gpu_steps_are_checked_against_the_partition_not_the_login_node(login_node):
    """Defect 1 of the reality check: the submitting machine's GPUs were checked, so a login node
    without GPUs rejected every GPU step."""
    from orchestrator.executors.gpus import visible_gpus
    from orchestrator.executors.slurm import SlurmExecutor

    assert visible_gpus() == []  # this machine has none
    ex = SlurmExecutor(login_node, {"name": "slurm", "partition": "gpu"})
    ex.check_resources([_step("retrieve", 1, shards=8), _step("index", 4, shards=2),
                        _step("sft", 8)])            # 8 GPUs: one job on both 4-GPU nodes
    with pytest.raises(ConfigError, match=r"steps.index.gpus: 5 GPUs per shard .* at most 4"):
        ex.check_resources([_step("index", 5, shards=2)])
    with pytest.raises(ConfigError, match=r"steps.sft.gpus: 6 GPUs do not fill whole nodes"):
        ex.check_resources([_step("sft", 6)])
    one = SimpleNamespace(name="generate", gpus=8, shards=1, stage=SimpleNamespace(multi_gpu="one_process"))
    with pytest.raises(ConfigError, match=r"steps.generate.gpus: 8 GPUs per shard .* at most 4"):
        ex.check_resources([one])                    # one process: all its GPUs on one node
    cpu = SlurmExecutor(login_node, {"name": "slurm", "partition": "cpu"})
    with pytest.raises(ConfigError, match=r"partition 'cpu' has no node with GPUs") as e:
        cpu.check_resources([_step("sft", 1)])
    assert "ragline.executor.partition" in e.value.hint
    cpu.check_resources([_step("retrieve", 0, shards=8)])  # CPU steps need nothing


def test_multi_gpu_step_is_one_job_with_a_task_per_node(login_node, tmp_path):
    """Defect 2: a multi-GPU step was submitted as one process. Now: one job over whole nodes,
    one task per node that starts torchrun with a rank per GPU."""
    from orchestrator.executors.slurm import SlurmExecutor, gang_nodes

    cfg = {"name": "slurm", "partition": "gpu", "account": "lab", "qos": "high",
           "constraint": "a100", "time": "1-00:00:00", "cpus_per_task": 6, "mem_gb": 64,
           "sbatch": {"exclude": "g7", "mail-type": "END"}, "setup": ["module load cuda"]}
    ex = SlurmExecutor(login_node, cfg)
    nodes, per = gang_nodes(8, ex.gpus_per_node())
    assert (nodes, per) == (2, 4)
    text = ex.submitter(_step("sft", 8), tmp_path / "jobs", nodes, per)._executor \
        ._make_submission_file_text("python -m x", "uid")
    for flag in ("--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=4", "--partition=gpu",
                 "--account=lab", "--qos=high", "--constraint=a100", "--time=1440",
                 "--cpus-per-task=6", "--mem=64GB", "--exclude=g7", "--mail-type=END",
                 "--job-name=ragline-sft"):
        assert f"#SBATCH {flag}\n" in text, flag
    assert "module load cuda" in text


def test_launcher_starts_one_rank_per_gpu_of_its_node():
    from orchestrator.executors.launch import torchrun_argv

    argv = torchrun_argv("/c/t.json", 2, 1, 4, "g1", 21234)
    assert argv[1:3] == ["-m", "torch.distributed.run"]
    assert argv[argv.index("--nproc-per-node") + 1] == "4"
    assert argv[argv.index("--node-rank") + 1] == "1"
    assert argv[-3:] == ["-m", "orchestrator.worker", "/c/t.json"]


def test_without_sbatch_the_error_says_where_to_run(tmp_path, monkeypatch):
    from orchestrator.executors.slurm import SlurmExecutor

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="no sbatch/sinfo on this machine") as e:
        SlurmExecutor(Store(tmp_path / "c"), {"name": "slurm"})  # before anything is submitted
    assert "cluster=local" in e.value.hint


def test_heartbeat_kills_the_worker_of_a_vanished_driver(tmp_path):
    """A SIGKILLed driver cannot scancel its jobs; each job stops once the heartbeat is stale."""
    import time

    from orchestrator.executors.launch import run_worker

    beat = tmp_path / "heartbeat"
    beat.touch()
    log = tmp_path / "task.log"
    start = time.time()
    code = run_worker(["sleep", "60"], str(log), {}, None, str(beat), stale_s=1.0)
    assert code == 1 and time.time() - start < 10
    assert "the driver is gone" in log.read_text()
    assert run_worker(["true"], str(log), {}, None, str(beat), stale_s=1.0) == 1  # never starts
    assert log.read_text().count("not starting") == 1


@pytest.mark.engines
def test_real_partition_gpus(slurm_cluster, tmp_path):
    """On the real single-node cluster (2 fake GPUs in gres), from a submitter without GPUs."""
    from orchestrator.executors.slurm import SlurmExecutor

    ex = SlurmExecutor(Store(tmp_path / "c"), {"name": "slurm", "partition": "debug"})
    assert ex.gpus_per_node() == [2]
    ex.check_resources([_step("gpu_map", 1, shards=2), _step("train", 2)])
    with pytest.raises(ConfigError, match="at most 2"):
        ex.check_resources([_step("gpu_map", 3, shards=2)])
    with pytest.raises(ConfigError, match="do not fill whole nodes"):
        ex.check_resources([_step("train", 3)])


def test_docs_name_every_key():
    """conf/executor/slurm.yaml documents every key the executor reads."""
    text = (Path(__file__).resolve().parents[2] / "conf" / "executor" / "slurm.yaml").read_text()
    for key in ("partition", "account", "qos", "constraint", "time", "cpus_per_task", "mem_gb",
                "array_parallelism", "sbatch", "setup", "heartbeat_s", "cluster"):
        assert f"\n{key}:" in text, key


def test_cluster_local_runs_the_jobs_as_local_processes(tmp_path):
    """``cluster: local`` (no SLURM needed): submitit runs the job array as local processes, with
    the same worker, heartbeat and results; the recipe's CPU steps give the same keys as local."""
    from tests.executors.conftest import Conformance

    xc = Conformance(tmp_path, "slurm")
    secret = "hf_SECRET-credential-value-7731"   # a token in the driver's environment
    read = "value-the-step-reads-4410"    # a RAGLINE_* value (forwarded) the step's config reads
    os.environ["RAGLINE_TEST_TOKEN"], os.environ["RAGLINE_XC_VALUE"] = secret, read
    try:
        code, out = xc.run("ragline.executor.cluster=local", "steps.gpu_map.gpus=0",
                           "steps.train.gpus=0", "steps.cpu_map.api_key=${oc.env:RAGLINE_XC_VALUE}")
    finally:
        del os.environ["RAGLINE_TEST_TOKEN"], os.environ["RAGLINE_XC_VALUE"]
    assert code == 0, out
    # they reach the jobs from the environment sbatch exports, never through submitit's job
    # files, which stay in the run record (they held every RAGLINE_* and HF_* value)
    cpu_map = [t for t in xc.traces() if t["step"] == "cpu_map"]
    assert {t["token"] for t in cpu_map} == {secret} and {t["api_key"] for t in cpu_map} == {read}
    assert not [p for p in xc.runs.rglob("*") if p.is_file()
                and (secret.encode() in p.read_bytes() or read.encode() in p.read_bytes())]
    assert any(xc.runs.rglob("*_submitted.pkl"))
    status = xc.status()
    assert status["executor"] == "slurm"
    assert len(status["steps"]["cpu_map"]["jobs"]) == 4
    assert xc.executions("cpu_map") == {0: 1, 1: 1, 2: 1, 3: 1}
    assert status["metrics"]["total"] == {"count": 8, "sum": 64.0}
