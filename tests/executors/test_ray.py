"""The Ray executor's own checks: a private local cluster even when another one is running (no
stale ``ray_current_cluster`` trap), the shared-cache check, gang shapes. The conformance suite
(test_conformance.py) runs the whole recipe on a real Ray cluster started by tests/engines/ray.sh."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
import textwrap

import pytest

from tests.executors.conftest import REPO


def test_formulas():
    pytest.importorskip("ray")
    from orchestrator.executors import ray as ray_executor

    assert doctest.testmod(ray_executor).failed == 0


def test_gang_that_cannot_be_split_is_a_config_error():
    pytest.importorskip("ray")
    from orchestrator.errors import ConfigError
    from orchestrator.executors.ray import gang_shape

    assert gang_shape(16, [8, 8]) == [8, 8]
    with pytest.raises(ConfigError, match="cannot be split into equal groups"):
        gang_shape(12, [8])


def _in_subprocess(code: str, tmp_path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                       text=True, timeout=300, env={**env, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.engines
def test_address_local_starts_a_private_cluster_beside_a_running_one(ray_cluster, tmp_path):
    """With a head running (so /tmp/ray/ray_current_cluster names it), address=local must still
    start a private cluster, with its own resources, and check that it sees the cache."""
    out = _in_subprocess(f"""
        from orchestrator.executors.ray import RayExecutor
        from orchestrator.store import Store
        ex = RayExecutor(Store({str(tmp_path / 'cache')!r}), {{"address": "local", "num_cpus": 1, "num_gpus": 0}})
        ray = ex.connect()
        print(ray.cluster_resources().get("CPU"), ex.gpus_per_node())
        """, tmp_path)
    assert out.split()[:2] == ["1.0", "[0]"]


@pytest.mark.engines
def test_attach_sees_the_clusters_gpus(ray_cluster, tmp_path):
    out = _in_subprocess(f"""
        from types import SimpleNamespace as S
        from orchestrator.errors import ConfigError
        from orchestrator.executors.ray import RayExecutor
        from orchestrator.store import Store
        ex = RayExecutor(Store({str(tmp_path / 'cache')!r}), {{"address": "auto"}})
        print(ex.gpus_per_node())
        ex.check_resources([S(name="train", gpus=2, shards=1), S(name="m", gpus=1, shards=4)])
        try:
            ex.check_resources([S(name="m", gpus=3, shards=4)])
        except ConfigError as e:
            print(e.message)
        """, tmp_path)
    assert out.splitlines()[0] == "[2]"
    assert "steps.m.gpus: 3 GPU(s) per shard asked for, but no Ray node has that many" in out
