"""The toy chain through the isolated local executor and through SLURM (submitit's local cluster)."""

from __future__ import annotations

import json

import pytest


def test_isolated_executor_runs_every_step_in_a_worker(toy):
    from tests.conftest import rag

    assert rag("run", str(toy / "conf/chain.yaml"), "executor=isolated", "steps.load.n=4",
               runs=toy / "runs") == 0
    status = json.loads((toy / "runs" / "latest" / "status.json").read_text())
    assert status["metrics"]["evaluate"]["count"] == 4


def test_slurm_executor_runs_shards_as_jobs(toy):
    """The SLURM executor through submitit's local cluster: same tasks, same cache."""
    pytest.importorskip("submitit")
    from tests.conftest import rag

    assert rag("run", str(toy / "conf/chain.yaml"), "executor=slurm",
               "ragline.slurm.cluster=local", "steps.load.n=4", runs=toy / "runs") == 0
    status = json.loads((toy / "runs" / "latest" / "status.json").read_text())
    assert status["steps"]["retrieve"]["shards"] == 4 and status["state"] == "ok"
    assert status["metrics"]["evaluate"]["count"] == 4
    log = (toy / "runs" / "latest" / "logs" / "retrieve.shard-00002.log").read_text()
    assert "retrieve[2/4]: done" in log
