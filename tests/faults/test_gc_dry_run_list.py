"""``rag gc --dry-run`` lists on stdout what holds data (entries, temporary directories) and
only counts the empty bookkeeping files (lock, task and lease files) in its summary: a cache
used for a while listed 64 lock files around the one entry it would remove (CLI audit of
session 42, item 12g)."""

from __future__ import annotations

from tests.conftest import rag
from tests.faults.test_gc import leftovers, recipe


def test_a_dry_run_lists_data_and_counts_lock_files(toy, capsys):
    runs, cache = toy / "runs", toy / "runs" / "cache"
    assert rag("run", str(recipe(toy)), runs=runs) == 0
    _, left, _ = leftovers(cache)
    capsys.readouterr()
    assert rag("gc", "--dry-run", runs=runs) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [str(left)]
    assert "1 temporary directories, 1 task files, 1 lock files" in captured.err
