"""What a worker on a cluster node sees: ``env`` (RAGLINE_*, HF_*, the executor's ``env:``) over
the node's own environment, and ``defaults`` (the variables a step reads, from the driver) only
where the node lacks them: a recipe reading ``${oc.env:HOME}`` must not move a node's HOME."""

from __future__ import annotations

import sys

from orchestrator.executors.launch import run_worker


def test_defaults_fill_in_what_the_node_lacks_and_no_more(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/node/home")
    monkeypatch.delenv("XC_ONLY_ON_DRIVER", raising=False)
    log = tmp_path / "worker.log"
    code = ("import os; print(os.environ['HOME'], os.environ['XC_ONLY_ON_DRIVER'], "
            "os.environ['RAGLINE_XC'])")
    assert run_worker([sys.executable, "-c", code], str(log), {"RAGLINE_XC": "sent"},
                      defaults={"HOME": "/driver/home", "XC_ONLY_ON_DRIVER": "from-driver"}) == 0
    assert log.read_text().split() == ["/node/home", "from-driver", "sent"]
