"""``ragline.executor.autoscaling: true``: a Ray cluster that adds nodes on demand (an
autoscaler) does not have them when the run starts, and the check of every task against the
nodes alive now refused such a run before any step (executor audit 43, left). With the setting,
a task no alive node can hold is a warning naming the setting, and the run goes on and waits;
without it, it is still refused (tests/executors/test_ray_audit43.py)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import SimpleNamespace as S

import pytest

from orchestrator.errors import ConfigError
from tests.executors.conftest import Conformance
from tests.executors.test_ray_audit43 import _start


def test_autoscaling_turns_the_refusal_into_a_warning(tmp_path, caplog):
    pytest.importorskip("ray")
    from orchestrator.executors import executor_settings
    from orchestrator.executors.ray import RayExecutor
    from orchestrator.store import Store

    nodes = [{"Alive": True, "Resources": {"CPU": 4.0}}]
    for autoscaling in (False, True):
        ex = RayExecutor(Store(tmp_path / "cache"), {"address": "auto", "cpus_per_task": 16,
                                                      "autoscaling": autoscaling})
        ex.connect = lambda: S(nodes=lambda: nodes)     # no cluster: its nodes as Ray lists them
        if not autoscaling:
            with pytest.raises(ConfigError, match="cpus_per_task: 16 CPUs per Ray task"):
                ex.check_resources([S(name="map", gpus=0, shards=4)])
            continue
        with caplog.at_level(logging.WARNING, logger="ragline"):
            ex.check_resources([S(name="map", gpus=0, shards=4)])
            ex.check_resources([S(name="t", gpus=2, shards=1)])     # no GPU node yet
        assert "cpus_per_task: 16 CPUs per Ray task asked for, but the largest Ray node has " \
               "4 (CPUs per node: 4); going on, as ragline.executor.autoscaling is true" \
               in caplog.text
        assert "steps.t.gpus: 2 GPUs cannot be split" in caplog.text
    with pytest.raises(ConfigError, match="ragline.executor.autoscaling: expected true or false"):
        executor_settings({"executor": {"name": "ray", "autoscaling": "yes"}})


@pytest.mark.engines
def test_a_run_on_an_autoscaling_cluster_waits_for_its_nodes(tmp_path):
    """On a real private cluster of 1 CPU, shards asking 2 CPUs: the run is not refused (exit
    2 before any step), it warns and waits, and SIGTERM still ends it (exit 143)."""
    pytest.importorskip("ray")
    xc = Conformance(tmp_path, "ray")
    proc = _start(xc, "ragline.executor.num_cpus=1", "ragline.executor.cpus_per_task=2",
                  "ragline.executor.autoscaling=true")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    end = time.time() + 150
    while not any("autoscaling is true" in line for line in lines) and time.time() < end:
        assert proc.poll() is None, "".join(lines)[-3000:]
        time.sleep(0.5)
    time.sleep(3)
    assert proc.poll() is None, "".join(lines)[-3000:]     # waiting, not refused
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, "".join(lines)[-3000:]
    reader.join(timeout=10)
    out = "".join(lines)
    assert "2 CPUs per Ray task asked for, but the largest Ray node has 1" in out, out
