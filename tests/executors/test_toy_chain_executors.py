"""The toy chain through the isolated local executor and through SLURM (submitit's local cluster)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow   # a worker per step, about 18 s on 2 cores; CI runs it (.ci/slow.sh)
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
               "ragline.executor.cluster=local", "steps.load.n=4", runs=toy / "runs") == 0
    status = json.loads((toy / "runs" / "latest" / "status.json").read_text())
    assert status["steps"]["retrieve"]["shards"] == 4 and status["state"] == "ok"
    assert status["metrics"]["evaluate"]["count"] == 4
    log = (toy / "runs" / "latest" / "logs" / "retrieve.shard-00002.log").read_text()
    assert "retrieve[2/4]: done" in log


def test_toy_executor_groups_use_the_documented_keys():
    """tests/toy/conf/executor/*.yaml in the current form: a ``ragline.executor`` block whose keys
    conf/executor/<name>.yaml documents, accepted by the executors' own check."""
    import yaml

    from orchestrator.executors import executor_settings
    from tests.conftest import REPO

    for path in sorted((REPO / "tests/toy/conf/executor").glob("*.yaml")):
        text = path.read_text()
        assert text.startswith("# @package ragline.executor\n"), path.name
        block = yaml.safe_load(text)
        documented = yaml.safe_load((REPO / "conf/executor" / f"{block['name']}.yaml").read_text())
        assert set(block) <= set(documented), (path.name, set(block) - set(documented))
        assert executor_settings({"executor": block})["name"] == block["name"]
