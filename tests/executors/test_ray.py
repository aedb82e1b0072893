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


@pytest.mark.engines
def test_gang_larger_than_a_node_spans_nodes(ray_cluster, tmp_path):
    """A second Ray node (2 more fake GPUs) joins the head for this test: a step asking for 4 GPUs
    runs as one gang of 4 torchrun ranks over both nodes, 2 per node, world size 4."""
    from tests.executors.conftest import Conformance

    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    node = subprocess.Popen([ray_bin, "start", "--address=127.0.0.1:6390", "--num-cpus=1",
                             "--num-gpus=2", "--block", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RAY_AUTH_MODE": "token"},  # the CLI does not detect it
                            start_new_session=True)
    try:
        _in_subprocess("""
            import time, ray
            ray.init(address="auto", logging_level="ERROR")
            end = time.time() + 120
            while sum(1 for n in ray.nodes() if n["Alive"]) < 2:
                assert time.time() < end, "second node did not join"
                time.sleep(0.5)
            """, tmp_path)
        xc = Conformance(tmp_path / "xc", "ray")
        code, out = xc.run("steps.train.gpus=4", "steps.gpu_map.gpus=0")
        assert code == 0, out
        train = [t for t in xc.traces() if t["step"] == "train"]
        assert sorted(t["rank"] for t in train) == ["0", "1", "2", "3"], train
        assert {t["world"] for t in train} == {"4"} and {t["cvd"] for t in train} == {"0,1"}
    finally:
        node.terminate()
        node.wait(timeout=60)


@pytest.mark.engines
def test_a_variable_the_step_reads_reaches_a_node_started_elsewhere(ray_cluster, tmp_path):
    """The cluster was started before the variable was set, as on nodes started by hand: a
    step reading ``${oc.env:NAME}`` (or naming it as ``api_key_env``) gets it from the driver,
    whatever its name; it failed in the worker with "environment variable ... is not set"."""
    from tests.executors.conftest import Conformance

    xc = Conformance(tmp_path, "ray")
    os.environ["XC_JUDGE_VALUE"] = "sk-xc-judge-5521"
    try:
        code, out = xc.run("steps.gpu_map.gpus=0", "steps.train.gpus=0",
                           "steps.cpu_map.api_key=${oc.env:XC_JUDGE_VALUE}")
    finally:
        del os.environ["XC_JUDGE_VALUE"]
    assert code == 0, out
    assert {t["api_key"] for t in xc.traces() if t["step"] == "cpu_map"} == {"sk-xc-judge-5521"}
