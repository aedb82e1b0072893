"""On Ray, the variables a step reads reach both kinds of task (a shard's, and a gang's launcher
on each node) through the two maps the executor sends: the driver's value of an ordinary one,
and a node-local one (``LD_*``, ``PATH``, ``HOME``...) only where the node lacks it, so a node's
own ``PATH`` stays its own. The other Ray tests set no variable of the second kind, so a call
site that dropped its ``defaults`` went unseen."""

from __future__ import annotations

import os

import pytest


@pytest.mark.engines
def test_node_local_variables_fill_in_only_where_the_node_lacks_them(ray_cluster, tmp_path,
                                                                     monkeypatch):
    from tests.executors.conftest import Conformance

    # The cluster was started before these were set: its nodes lack LD_XC_PROBE, and their PATH
    # lacks the driver's first entry.
    monkeypatch.setenv("LD_XC_PROBE", "from-the-driver")
    monkeypatch.setenv("PATH", "/xc-driver-only:" + os.environ["PATH"])
    xc = Conformance(tmp_path, "ray")
    code, out = xc.run("steps.gpu_map.gpus=0",
                       "steps.cpu_map.api_key=${oc.env:LD_XC_PROBE}",
                       "steps.train.api_key=${oc.env:LD_XC_PROBE}|${oc.env:PATH}")
    assert code == 0, out
    traces = xc.traces()
    assert {t["api_key"] for t in traces if t["step"] == "cpu_map"} == {"from-the-driver"}
    train = [t["api_key"].split("|") for t in traces if t["step"] == "train"]
    assert len(train) == 2, traces                     # a gang of 2 ranks
    assert {probe for probe, _ in train} == {"from-the-driver"}
    assert all(path and "/xc-driver-only" not in path for _, path in train), train
