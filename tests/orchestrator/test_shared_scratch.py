"""The shards of a step share its scratch directory, whatever their count: a request cache kept
there is not paid for again when ``shards:`` changes after a crash."""

from __future__ import annotations

from tests.conftest import rag


def _recipe(toy):
    path = toy / "conf" / "ask.yaml"
    path.write_text("""
ragline:
  imports: [tests.toy.stages]
steps:
  load: {stage: toy_gen, n: 8}
  ask:  {stage: toy_teacher, inputs: {numbers: load}, shards: 2}
  total: {stage: toy_sum, inputs: {numbers: ask}}
""")
    return str(path)


def _asked(count_file):
    return sorted(line.split()[1] for line in count_file.read_text().splitlines()) \
        if count_file.exists() else []


def test_changing_shards_after_a_crash_asks_only_what_was_never_answered(toy, monkeypatch):
    runs, count = toy / "runs", toy / "count.txt"
    recipe = _recipe(toy)
    monkeypatch.setenv("TOY_COUNT_FILE", str(count))
    monkeypatch.setenv("TOY_FAIL", "ask:1")     # shard 2/2 fails at its last row, rows 4..6 kept
    assert rag("run", recipe, runs=runs) == 1
    assert _asked(count) == ["0", "1", "2", "3", "4", "5", "6"]

    monkeypatch.delenv("TOY_FAIL")
    count.unlink()
    assert rag("run", recipe, "steps.ask.shards=3", runs=runs) == 0
    assert _asked(count) == ["7"]               # before: all 8 asked again under new task keys
    scratch = toy / "runs" / "cache" / "scratch"   # removed once every shard has committed
    assert not scratch.exists() or not any(scratch.iterdir())
    assert rag("run", recipe, "steps.ask.shards=3", runs=runs) == 0
    assert _asked(count) == ["7"]               # a no-op: the step's outputs are cached


def test_rag_gc_keeps_a_failed_sharded_steps_request_cache(toy, monkeypatch):
    """Before: gc kept a scratch directory only under a task key its runs named, and a sharded
    step's scratch is named by the unsharded key, so a default `rag gc` after a failure removed
    the answers already paid for."""
    runs, count = toy / "runs", toy / "count.txt"
    recipe = _recipe(toy)
    monkeypatch.setenv("TOY_COUNT_FILE", str(count))
    monkeypatch.setenv("TOY_FAIL", "ask:1")
    assert rag("run", recipe, runs=runs) == 1
    assert rag("gc", runs=runs) == 0
    monkeypatch.delenv("TOY_FAIL")
    count.unlink()
    assert rag("run", recipe, runs=runs) == 0
    assert _asked(count) == ["7"]               # before: 4 to 7 asked again
