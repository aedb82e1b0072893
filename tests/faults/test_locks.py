"""Locks say who holds them, every RAGLINE_LOCK_NOTE_S seconds, and a lock whose recorded holder
is a dead process on this host is broken."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from tests.conftest import REPO
from tests.faults.faultkit import warnings

HOLD = """
import sys, time
from orchestrator.store import Store
lock = Store(sys.argv[1]).lock("k" * 64, what=sys.argv[2])
lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[3]))
lock.release()
"""


def hold(cache, what: str, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(cache), what, str(seconds)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_waiting_says_who_holds_the_lock_and_since_when(tmp_path, caplog, monkeypatch):
    from orchestrator.store import Store

    monkeypatch.setenv("RAGLINE_LOCK_NOTE_S", "0.3")
    holder = hold(tmp_path, "retrieve shard 2/8", 2.0)
    info = json.loads((tmp_path / "locks" / f"{'k' * 64}.lock.holder").read_text())
    assert (info["pid"], info["host"], info["what"]) == (holder.pid, socket.gethostname(),
                                                         "retrieve shard 2/8")
    since = time.strftime("%H:%M", time.localtime(info["since"]))
    lock = Store(tmp_path).lock("k" * 64, what="retrieve shard 2/8")
    lock.acquire()
    lines = warnings(caplog)
    assert len(lines) >= 2  # one line per interval while waiting
    expected = (f"waiting for retrieve shard 2/8, held by pid {holder.pid} on host "
                f"{socket.gethostname()} since {since}")
    # a note that falls between the holder's removing its .holder file and its releasing the
    # lock says "no holder recorded yet": that can only be the last one
    assert set(lines[:-1]) == {expected}
    assert lines[-1] in (expected, "waiting for retrieve shard 2/8, held by another process "
                                   "(no holder recorded yet)")
    info = json.loads((tmp_path / "locks" / f"{'k' * 64}.lock.holder").read_text())
    assert info["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / "locks" / f"{'k' * 64}.lock.holder").exists()
    assert holder.wait(timeout=30) == 0


def test_lock_of_a_dead_holder_is_broken(tmp_path, caplog, monkeypatch):
    """The recorded holder is gone but the lock is still held (a process that inherited its
    descriptor, or a filesystem without flock): the waiter breaks it instead of hanging."""
    from orchestrator.store import Store

    monkeypatch.setenv("RAGLINE_LOCK_NOTE_S", "0.2")
    inheritor = hold(tmp_path, "gen", 60)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder_file = tmp_path / "locks" / f"{'k' * 64}.lock.holder"
    holder_file.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                       "since": time.time(), "what": "gen"}))
    try:
        start = time.time()
        lock = Store(tmp_path).lock("k" * 64, what="gen")
        lock.acquire()
        assert time.time() - start < 10
        assert (f"breaking the lock of gen: its holder pid {dead.pid} on host "
                f"{socket.gethostname()} is gone") in warnings(caplog)
        lock.release()
    finally:
        inheritor.kill()
        inheritor.wait()
