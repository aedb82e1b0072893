"""Runs that share a cache and a host name but not a process table (containers started with
``--network host``, Kubernetes ``hostNetwork`` pods) each saw the other's pids as dead: one broke
the other's lock and ran the step twice, and ``rag gc`` removed a live run's lease and every
entry it was using (found by fault injection, under ``unshare --pid``). A record now names the
PID namespace it was written in, and a pid from another one counts as another host's: live
while its heartbeat is. A run on another host that went silent (suspended, a paused VM) keeps
what it uses for an hour; it lost it after 4 heartbeats."""

from __future__ import annotations

import json
import os
import time

from orchestrator.leases import HOST, LEASE_GRACE_S, PLACE_ID, live_leases
from tests.conftest import rag
from tests.faults.faultkit import recipe
from tests.faults.test_gc import cached, dead_pid, keys_of


def _lease(cache, name: str, run, where: str, silent_s: float = 0.0):
    path = cache / "leases" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": dead_pid(), "host": HOST, "where": where,
                                "started": time.time() - 600, "interval": 15,
                                "runs_dir": str(run.parent.parent), "runs": [str(run)]}))
    os.utime(path, (time.time() - silent_s, time.time() - silent_s))
    return path


def _ran(toy):
    conf, runs = recipe(toy), toy / "runs"
    assert rag("run", str(conf), runs=runs) == 0
    run, cache = (runs / "latest").resolve(), runs / "cache"
    for key in keys_of(runs):   # written before the other run started
        entry = cache / "objects" / key[:2] / key
        os.utime(entry, (time.time() - 900, time.time() - 900))
    return runs, run, cache


def test_a_live_run_in_another_pid_namespace_keeps_its_entries(toy, capsys):
    runs, run, cache = _ran(toy)
    keys = keys_of(runs)
    lease = _lease(cache, f"{HOST}.4242.abcdef-0badc0de.json", run, where=f"{HOST}~4026531836x")
    assert [x["live"] for x in live_leases(cache)] == [True]   # its pid means nothing here
    capsys.readouterr()
    assert rag("gc", "--keep-runs", "0", runs=runs) == 0
    assert keys <= cached(cache) and lease.exists()
    assert "1 live run(s)" in capsys.readouterr().err


def test_a_silent_run_on_another_host_keeps_its_entries_for_an_hour(toy, capsys):
    runs, run, cache = _ran(toy)
    keys = keys_of(runs)
    lease = _lease(cache, "gpu7.99.abcdef-12345678.json", run, where="gpu7~1", silent_s=300)
    capsys.readouterr()
    assert rag("gc", "--keep-runs", "0", runs=runs) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert keys <= cached(cache) and lease.exists()
    assert "has been silent for 300 s (suspended?): what it uses is kept until it has been " \
           "silent for 60 min" in err
    os.utime(lease, (time.time() - LEASE_GRACE_S - 60,) * 2)
    assert rag("gc", "--keep-runs", "0", runs=runs) == 0
    assert not (keys & cached(cache)) and not lease.exists()


def test_gc_leaves_a_temporary_directory_another_namespace_writes(toy):
    runs, _, cache = _ran(toy)
    theirs = cache / "tmp" / f"{'ab' * 16}.{dead_pid()}.0a0b0c0d-0badc0de"
    mine = cache / "tmp" / f"{'cd' * 16}.{dead_pid()}.0a0b0c0d-{PLACE_ID}"
    for d in (theirs, mine):
        d.mkdir(parents=True)
    assert rag("gc", runs=runs) == 0
    assert theirs.is_dir() and not mine.exists()
    os.utime(theirs, (time.time() - LEASE_GRACE_S - 60,) * 2)
    assert rag("gc", runs=runs) == 0
    assert not theirs.exists()
