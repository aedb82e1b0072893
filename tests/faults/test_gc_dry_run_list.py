"""``rag gc --dry-run`` lists on stdout what holds data (entries, temporary directories) and
only counts the empty bookkeeping files (lock, task and lease files) in its summary: a cache
used for a while listed 64 lock files around the one entry it would remove (CLI audit of
session 42, item 12g)."""

from __future__ import annotations

import json
import os
import time

from tests.conftest import rag
from tests.faults.test_gc import dead_pid, recipe


def test_a_dry_run_lists_data_and_counts_lock_files(toy, capsys):
    runs, cache = toy / "runs", toy / "runs" / "cache"
    assert rag("run", str(recipe(toy)), runs=runs) == 0
    pid = dead_pid()
    left = cache / "tmp" / f"{'a' * 64}.{pid}.abcd1234"
    left.mkdir(parents=True)
    (cache / "tmp" / "tasks").mkdir(exist_ok=True)
    (cache / "tmp" / "tasks" / f"{'a' * 64}.{pid}.json").write_text("{}")
    old_lock = cache / "locks" / f"{'b' * 64}.lock"
    old_lock.write_text("")
    (cache / "locks" / f"{'b' * 64}.lock.holder").write_text(json.dumps({"pid": pid}))
    os.utime(old_lock, (time.time() - 3600, time.time() - 3600))
    capsys.readouterr()
    assert rag("gc", "--dry-run", runs=runs) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [str(left)]
    assert "1 temporary directories, 1 task files, 1 lock files" in captured.err
