"""gc never deletes live work: a shared cache with two runs directories, a live run (lease),
the upstream of --only runs; gc removes what killed runs leave and reports what it could not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import rag, rag_process
from tests.faults.faultkit import recipe, status, total

def keys_of(runs: Path) -> set[str]:
    return {k for s in status(runs)["steps"].values() for k in s["keys"]}


def cached(cache: Path) -> set[str]:
    return {p.name for p in (cache / "objects").glob("*/*") if (p / "_entry.json").is_file()}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_live_lease_and_other_runs_dirs_keep_their_entries(toy, capsys):
    conf, cache = recipe(toy), toy / "runs" / "cache"
    runs_a, runs_b = toy / "A", toy / "B"
    assert rag("run", str(conf), runs=runs_a) == 0
    assert rag("run", str(conf), "steps.gen.n=4", runs=runs_b) == 0
    keys_a, keys_b = keys_of(runs_a), keys_of(runs_b)
    assert keys_a.isdisjoint(keys_b) and cached(cache) == keys_a | keys_b
    from orchestrator.store import Store

    for key in keys_a | keys_b:  # written a while ago, not while B was running
        os.utime(cache / "objects" / key[:2] / key, (time.time() - 60, time.time() - 60))
    with Store(cache).lease(runs_b) as lease:  # B is running
        lease.add_run((runs_b / "latest").resolve())
        capsys.readouterr()
        assert rag("gc", "--keep-runs", "0", runs=runs_a) == 0
        err = capsys.readouterr().err
    assert cached(cache) == keys_b
    assert "removed 3 entries (" in err
    assert f"1 live run(s) (pid {os.getpid()}): their plans and everything written since they " \
           "started are kept" in err
    # after the run: B's runs dir is registered, so gc from A keeps B's newest runs
    assert rag("gc", runs=runs_a) == 0
    assert cached(cache) == keys_b
    assert "kept what 2 run(s) in 2 runs dir(s) reference (6 keys)" in capsys.readouterr().err
    assert not list((cache / "leases").glob("*.json"))  # the lease file went with the run


def test_runs_refused_before_their_first_step_do_not_count_as_kept_runs(toy, capsys):
    """Before: each refused attempt wrote a run record that took one of --keep-runs' places, so
    a few typos in a row let gc remove what the last good run computed."""
    conf, cache, runs = recipe(toy), toy / "runs" / "cache", toy / "runs"
    assert rag("run", str(conf), runs=runs) == 0
    good = keys_of(runs)
    wired = "steps.gen={stage: toy_gen, inputs: {path: numbers}}"
    for _ in range(3):   # a source that does not exist: refused once the run has its record
        assert rag("run", str(conf), wired, "+sources.numbers=/nonexistent/n.txt", runs=runs) == 2
    assert len(list((runs / "c").glob("*/status.json"))) == 4
    capsys.readouterr()
    assert rag("gc", "--keep-runs", "1", runs=runs) == 0
    assert cached(cache) == good
    assert "removed 0 entries" in capsys.readouterr().err


def test_gc_from_another_runs_dir_during_a_live_run(toy):
    conf, cache = recipe(toy), toy / "runs" / "cache"
    runs_a, runs_b = toy / "A", toy / "B"
    assert rag("run", str(conf), "steps.gen.n=4", runs=runs_b) == 0  # B's upstream is cached
    assert rag("run", str(conf), runs=runs_a) == 0
    env = {"RAGLINE_CACHE": str(cache), "RAGLINE_LEASE_HEARTBEAT_S": "0.5"}
    proc = rag_process("run", str(conf), "steps.gen.n=4", "steps.mul.mul=3", "steps.mul.sleep=6",
                       "--runs-dir", str(runs_b), "--no-progress", env=env)
    deadline = time.time() + 60
    while "running stage toy_map" not in proc.stdout.readline():   # "" once B has exited
        assert time.time() < deadline and proc.poll() is None, "B never reached mul"
    assert rag("gc", "--keep-runs", "0", runs=runs_a) == 0  # B's gen entry is in B's live plan
    assert proc.poll() is None, "gc ran after B's mul: this test no longer tests a live run"
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert total(runs_b) == 18.0  # (0+1+2+3) * 3


def test_only_runs_keep_their_upstream(toy, capsys):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    time.sleep(0.05)
    assert rag("run", str(conf), "--only", "total", "steps.total.label=x", runs=runs) == 0
    assert rag("gc", "--keep-runs", "1", runs=runs) == 0
    capsys.readouterr()
    assert rag("run", str(conf), "--only", "total", "steps.total.label=x", runs=runs) == 0
    assert status(runs)["steps"]["total"]["cache"] == "hit"


def leftovers(cache) -> tuple[int, Path, Path]:
    """What a killed run leaves in a cache: a temporary entry directory, a task file and an
    hour-old lock file, all of a dead process: (its pid, the directory, the lock file)."""
    pid = dead_pid()
    left = cache / "tmp" / f"{'a' * 64}.{pid}.abcd1234"
    left.mkdir(parents=True)
    (cache / "tmp" / "tasks").mkdir(exist_ok=True)
    (cache / "tmp" / "tasks" / f"{'a' * 64}.{pid}.json").write_text("{}")
    old_lock = cache / "locks" / f"{'b' * 64}.lock"
    old_lock.write_text("")
    (cache / "locks" / f"{'b' * 64}.lock.holder").write_text(json.dumps({"pid": pid}))
    os.utime(old_lock, (time.time() - 3600, time.time() - 3600))
    return pid, left, old_lock


def test_gc_removes_what_killed_runs_leave(toy, capsys):
    runs, conf, cache = toy / "runs", recipe(toy), toy / "runs" / "cache"
    assert rag("run", str(conf), runs=runs) == 0
    import socket

    pid, _, old_lock = leftovers(cache)
    (cache / "leases").mkdir(exist_ok=True)
    dead_lease = cache / "leases" / f"{socket.gethostname()}.{pid}.abc.json"
    dead_lease.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "runs": []}))
    capsys.readouterr()
    assert rag("gc", "--dry-run", runs=runs) == 0
    err = capsys.readouterr().err
    assert ("would remove 0 entries (0.0 MB), 1 temporary directories, 1 task files, "
            "1 lock files, 1 dead leases") in err
    assert old_lock.exists()
    assert rag("gc", runs=runs) == 0
    assert ("removed 0 entries (0.0 MB), 1 temporary directories, 1 task files, 1 lock files, "
            "1 dead leases") in capsys.readouterr().err
    assert not old_lock.exists() and not dead_lease.exists()
    assert not list((cache / "tmp" / "tasks").iterdir())
    assert len(list((cache / "locks").glob("*.lock"))) == 3  # the run's own, recent locks stay


def test_a_dry_run_leaves_a_stale_lock_stale_where_taking_it_truncates(toy, monkeypatch, capsys):
    """filelock 3.12 and 4.1 (the newest for Python 3.10) truncate a lock file when they take
    it; gc's probe of whether a lock is held used to leave it touched, so the gc that followed
    a dry run kept it for another minute."""
    import filelock

    class Truncating(filelock.FileLock):
        def acquire(self, *args, **kwargs):
            held = super().acquire(*args, **kwargs)
            os.truncate(self.lock_file, 0)
            return held

    runs, conf, cache = toy / "runs", recipe(toy), toy / "runs" / "cache"
    assert rag("run", str(conf), runs=runs) == 0
    old_lock = cache / "locks" / f"{'c' * 64}.lock"
    old_lock.write_text("")
    os.utime(old_lock, (time.time() - 3600, time.time() - 3600))
    mtime = old_lock.stat().st_mtime_ns
    monkeypatch.setattr(filelock, "FileLock", Truncating)
    capsys.readouterr()
    assert rag("gc", "--dry-run", runs=runs) == 0
    assert "1 lock files" in capsys.readouterr().err
    assert old_lock.stat().st_mtime_ns == mtime
    assert rag("gc", runs=runs) == 0
    assert "1 lock files" in capsys.readouterr().err and not old_lock.exists()


def test_gc_reports_what_it_could_not_remove(toy, capsys, monkeypatch):
    runs, conf, cache = toy / "runs", recipe(toy), toy / "runs" / "cache"
    assert rag("run", str(conf), runs=runs) == 0
    before = cached(cache)

    def read_only(path, ignore_errors=False, onerror=None):
        onerror(os.rmdir, str(path), (OSError, OSError(30, "Read-only file system"), None))

    def no_rename(src, dst):     # an entry is moved aside before it is deleted
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(shutil, "rmtree", read_only)
    monkeypatch.setattr(os, "rename", no_rename)
    capsys.readouterr()
    assert rag("gc", "--keep-runs", "0", runs=runs) == 1
    err = capsys.readouterr().err
    assert "removed 0 entries (0.0 MB)" in err
    assert "could not remove 3 (read-only cache?): " in err and ": Read-only file system (+2 more)" in err
    assert cached(cache) == before


def test_a_dry_run_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    assert rag("gc", "--dry-run", runs=tmp_path / "runs") == 0
    assert "would remove 0 entries" in capsys.readouterr().err
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_entry_is_removed_whole_or_not_at_all_and_twice_is_no_error(toy, capsys):
    """Before: a gc killed while deleting a large entry left a folder without _entry.json that
    no later gc or verify saw, and two gcs at once each reported the other's deletions as
    failures (exit 1)."""
    from orchestrator.cli.gc import remove

    runs, conf, cache = toy / "runs", recipe(toy), toy / "runs" / "cache"
    assert rag("run", str(conf), runs=runs) == 0
    entry = next(p for p in (cache / "objects").glob("*/*") if (p / "_entry.json").is_file())
    assert remove(entry) is None and not entry.exists()
    assert not list((cache / "tmp").glob(f"{entry.name}.*"))   # the moved-aside copy is gone too
    assert remove(entry) is None                                # a second gc: already gone


def test_a_gc_killed_while_deleting_leaves_no_half_entry(toy, monkeypatch):
    from orchestrator.cli.gc import remove

    runs, conf, cache = toy / "runs", recipe(toy), toy / "runs" / "cache"
    assert rag("run", str(conf), runs=runs) == 0
    entry = next(p for p in (cache / "objects").glob("*/*") if (p / "_entry.json").is_file())

    def killed(path, ignore_errors=False, onerror=None):   # _entry.json went first, then a kill
        (Path(path) / "_entry.json").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    try:
        remove(entry)
    except KeyboardInterrupt:
        pass
    assert not entry.exists()        # before: a folder without _entry.json, listed by nothing
    aside = list((cache / "tmp").glob(f"{entry.name}.{os.getpid()}.gc"))
    assert aside                     # what a later gc removes once this process is gone


def test_a_damaged_registration_or_lease_keeps_every_entry_and_says_so(toy, capsys):
    """Before: gc skipped an unreadable runs-dir registration or live-run lease without a word,
    and removed the entries they protect (a live run's input among them)."""
    conf, cache = recipe(toy), toy / "runs" / "cache"
    runs_a, runs_b = toy / "A", toy / "B"
    assert rag("run", str(conf), runs=runs_a) == 0
    assert rag("run", str(conf), "steps.gen.n=4", runs=runs_b) == 0
    keys_b = keys_of(runs_b)
    (registration,) = [f for f in (cache / "runs-dirs").glob("*.json")
                       if json.loads(f.read_text())["path"] == str(runs_b.resolve())]
    registration.write_text('{"path": "/tr')          # truncated
    capsys.readouterr()
    assert rag("gc", "--keep-runs", "0", runs=runs_a) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert keys_b <= cached(cache)
    assert f"warning: {registration} cannot be read: it registers a runs directory or a live " \
           "run whose entries are unknown, so no entry was removed" in err
    assert rag("run", str(conf), "steps.gen.n=4", runs=runs_b) == 0   # registers B again
    capsys.readouterr()
    assert rag("gc", "--keep-runs", "0", runs=runs_a) == 0
    assert "cannot be read" not in capsys.readouterr().err and not cached(cache)
    assert rag("run", str(conf), "steps.gen.n=4", runs=runs_b) == 0
    lease = cache / "leases" / "x.json"
    lease.write_text('{"pid": 12')                    # a live run's lease, truncated
    assert rag("gc", "--keep-runs", "0", runs=runs_b) == 0
    assert keys_b <= cached(cache) and lease.exists()
    os.utime(lease, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert rag("gc", "--keep-runs", "0", runs=runs_b) == 0   # a day old: no run still going
    assert not lease.exists()


def test_own_damaged_registration_and_a_dead_runs_damaged_lease_hide_nothing(toy, capsys):
    """A dry run read the given runs directory's own damaged registration as hiding entries
    ("would remove 0 entries ... no entry was removed") while the real gc, which writes it again
    first, removed them; a damaged lease whose name's pid is gone on this host blocked gc for a
    day."""
    from orchestrator.leases import HOST

    conf, cache = recipe(toy), toy / "runs" / "cache"
    runs_a, runs_b = toy / "A", toy / "B"
    assert rag("run", str(conf), runs=runs_a) == 0
    assert rag("run", str(conf), "steps.gen.n=4", runs=runs_b) == 0
    shutil.rmtree(runs_b)
    (own,) = [f for f in (cache / "runs-dirs").glob("*.json")
              if json.loads(f.read_text())["path"] == str(runs_a.resolve())]
    own.write_text('{"path": "/tr')
    capsys.readouterr()
    assert rag("gc", "--dry-run", "--keep-runs", "0", runs=runs_a) == 0
    dry = capsys.readouterr()
    assert "cannot be read" not in dry.err and "would remove 6 entries" in dry.err
    dead = subprocess.Popen(["true"])
    dead.wait()
    lease = cache / "leases" / f"{HOST}.{dead.pid}.abcdef.json"
    lease.write_text('{"pid": 12')
    assert rag("gc", "--keep-runs", "0", runs=runs_a) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot be read" not in err and "removed 6 entries" in err and not lease.exists()


def test_an_entry_that_cannot_be_moved_aside_is_named_once(toy, monkeypatch, capsys):
    import errno

    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    real = os.rename

    def read_only(src, dst):   # what a read-only objects/ab/ gives
        if "/objects/" in str(src):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(src, dst)
    monkeypatch.setattr(os, "rename", read_only)
    capsys.readouterr()
    rag("gc", "--keep-runs", "0", runs=runs)
    err = " ".join(capsys.readouterr().err.split())
    head = err.split("could not remove 3 (read-only cache?): ")[1].split(" (+2 more)")[0]
    assert head.endswith(": Permission denied") and head.count("/objects/") == 1


def test_a_live_run_still_planning_or_forcing_keeps_what_it_will_reuse(toy, capsys):
    """A live run named only the keys its plan had written: while it was still planning
    (re-hashing copied entries) gc removed every older entry, and a plan's provisional keys
    (the steps after a forced one, reused when it gives the same content) were not kept."""
    from orchestrator.store import Store

    conf, runs = recipe(toy), toy / "runs"
    assert rag("run", str(conf), runs=runs) == 0
    store, live = Store(toy / "runs" / "cache"), runs / "c" / "live-run"
    live.mkdir(parents=True)
    before = set(p.name for p in store.entries())
    with store.lease(runs) as lease:
        lease.add_run(live)                               # no plan.json yet: still planning
        capsys.readouterr()
        assert rag("gc", "--keep-runs", "0", runs=runs) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert "is still planning, so every entry is kept" in err
        assert set(p.name for p in store.entries()) == before
        plan = [{"step": "gen", "keys": sorted(before)[:1], "final": True},
                {"step": "mul", "keys": sorted(before)[1:], "final": False}]
        (live / "plan.json").write_text(json.dumps({"steps": plan}))
        assert rag("gc", "--keep-runs", "0", runs=runs) == 0
        assert set(p.name for p in store.entries()) == before   # provisional keys kept too


def test_an_entry_a_force_swapped_out_is_garbage_not_an_entry(toy, capsys):
    """``<key>.old.<rand>``, what a --force killed between its swap and its delete leaves, was
    listed as an entry: rag verify --all could call it damaged while it was being deleted."""
    conf, runs = recipe(toy), toy / "runs"
    assert rag("run", str(conf), runs=runs) == 0
    cache = runs / "cache"
    entry = next((cache / "objects").glob("*/*"))
    old = entry.with_name(f"{entry.name}.old.1a2b3c4d")
    shutil.copytree(entry, old)
    capsys.readouterr()
    assert rag("verify", "--all", "--runs-dir", str(runs)) == 0
    assert "verified 3 entries" in capsys.readouterr().out
    assert rag("gc", runs=runs) == 0
    assert "1 replaced entries" in " ".join(capsys.readouterr().err.split()) and not old.exists()


def test_a_lock_another_process_holds_is_not_stale_however_old(toy, capsys):
    """gc asks whether a lock is held by taking it as filelock does (flock): one held is kept,
    whatever its age; released, it is removed."""
    import filelock

    runs, conf, cache = toy / "runs", recipe(toy), toy / "runs" / "cache"
    assert rag("run", str(conf), runs=runs) == 0
    old_lock = cache / "locks" / f"{'d' * 64}.lock"
    held = filelock.FileLock(str(old_lock))
    held.acquire()
    os.utime(old_lock, (time.time() - 3600, time.time() - 3600))
    capsys.readouterr()
    assert rag("gc", "--dry-run", runs=runs) == 0
    assert "lock files" not in capsys.readouterr().err  # --dry-run counts lock files, lists none
    held.release()
    assert rag("gc", "--dry-run", runs=runs) == 0
    assert "1 lock files" in capsys.readouterr().err
    assert rag("gc", runs=runs) == 0
    assert not old_lock.exists()


def test_gc_removes_paid_answers_unused_for_keep_answers_days(toy, capsys):
    """answers/ (a server's answers, shared by every step) is no run's entry: gc removes the
    answers neither written nor served for --keep-answers-days (30), and keeps the rest."""
    runs, conf, cache = toy / "runs", recipe(toy), toy / "runs" / "cache"
    assert rag("run", str(conf), runs=runs) == 0
    folder = cache / "answers" / "127.0.0.1-8000-v1-abcd1234" / "ab"
    folder.mkdir(parents=True)
    old, fresh = folder / f"ab{'1' * 62}.json", folder / f"ab{'2' * 62}.json"
    left = folder / f"ab{'3' * 62}.123.456.tmp"    # a writer killed before its rename
    for f in (old, fresh, left):
        f.write_text("{}")
    os.utime(old, (time.time() - 40 * 86400, time.time() - 40 * 86400))
    os.utime(left, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    capsys.readouterr()
    assert rag("gc", "--dry-run", runs=runs) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == [str(old), str(left)] and "2 unused answers" in out.err
    assert rag("gc", "--keep-answers-days", "50", runs=runs) == 0
    assert old.exists()
    assert rag("gc", runs=runs) == 0
    assert not old.exists() and fresh.exists()
