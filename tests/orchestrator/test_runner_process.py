"""Process-level tests: a run killed with SIGKILL mid-step, and two runs racing on the same keys."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.conftest import counts, rag_process


def _wait_for(path, text, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_sigkill_mid_step_leaves_no_half_artifact_and_rerun_completes(toy):
    runs = toy / "runs"
    count = toy / "count.txt"
    env = {"TOY_COUNT_FILE": str(count), "RAGLINE_CACHE": str(runs / "cache")}
    proc = rag_process("run", str(toy / "conf/chain.yaml"), "steps.sft.sleep=30",
                       "--runs-dir", str(runs), env=env)
    _wait_for(count, "sft 0")
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Nothing that looks complete for sft: its entry would carry _entry.json.
    status = json.loads(next(runs.glob("chain/*/status.json")).read_text())
    sft_keys = status["steps"]["sft"]["keys"]
    assert not any((runs / "cache" / "objects" / k[:2] / k).exists() for k in sft_keys)
    proc = rag_process("run", str(toy / "conf/chain.yaml"), "steps.sft.sleep=0",
                       "--runs-dir", str(runs), env=env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    c = counts(count)
    assert c["sft:0"] == 2 and c["label:0"] == 1 and c["dpo:0"] == 1  # only sft onwards reran
    final = json.loads((runs / "latest" / "status.json").read_text())
    assert final["state"] == "ok"


def test_two_concurrent_runs_compute_each_shared_key_once(toy):
    runs = toy / "runs"
    count = toy / "count.txt"
    env = {"TOY_COUNT_FILE": str(count), "RAGLINE_CACHE": str(runs / "cache")}
    # Same upstream, different dpo: both processes need load..reward; each key computed once.
    a = rag_process("run", str(toy / "conf/chain.yaml"), "steps.label.sleep=1",
                    "--runs-dir", str(runs), env=env)
    b = rag_process("run", str(toy / "conf/chain.yaml"), "steps.label.sleep=1", "steps.dpo.add=7",
                    "--runs-dir", str(runs), env=env)
    out_a, _ = a.communicate(timeout=180)
    out_b, _ = b.communicate(timeout=180)
    assert a.returncode == 0, out_a
    assert b.returncode == 0, out_b
    c = counts(count)
    shared = [k for k in c if not k.startswith("dpo")]
    assert all(c[k] == 1 for k in shared), c
    assert c["dpo:0"] == 2
