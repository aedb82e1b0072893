"""A process stat-checks a cache entry's files once; after that, one stat of its ``_entry.json``
says whether it is still the entry it checked (a sweep's members share their upstream entries:
50 members over a 20,000-file artifact statted its files 100 times, 30 s of a no-op sweep)."""

from __future__ import annotations

import json

from tests.conftest import rag


def test_an_entry_is_checked_file_by_file_once_while_its_record_is_unchanged(toy, monkeypatch):
    import orchestrator.store as store_module
    from orchestrator.store import Store

    runs, conf = toy / "runs", toy / "conf" / "chain.yaml"
    assert rag("run", str(conf), runs=runs) == 0
    key = json.loads((runs / "latest" / "status.json").read_text())["steps"]["sft"]["keys"][0]
    checked: list[str] = []
    real = store_module.changed_file
    monkeypatch.setattr(store_module, "changed_file", lambda e: checked.append(e.key) or real(e))
    store = Store.for_runs(runs)
    assert store.lookup(key) is not None and store.lookup(key) is not None
    assert checked == [key]
    # another command's --force commits a new _entry.json under the key: checked again
    assert rag("run", str(conf), "--force", "sft", runs=runs) == 0
    checked.clear()
    assert store.lookup(key) is not None and checked == [key]


def test_a_sweep_member_that_computes_checks_its_inputs_anew(toy):
    """A member with steps to run asks for the entries an earlier member checked to be checked
    again (recheck_before): a file deleted meanwhile is found, the entry quarantined and its
    step recomputed by that member, as before the memo; a no-op member trusts them."""
    import time

    from orchestrator.store import Store

    runs, conf = toy / "runs", toy / "conf" / "chain.yaml"
    assert rag("run", str(conf), runs=runs) == 0
    key = json.loads((runs / "latest" / "status.json").read_text())["steps"]["sft"]["keys"][0]
    store = Store.for_runs(runs)
    entry = store.lookup(key)
    part = next(p for p in entry.path.rglob("*.parquet"))
    part.chmod(0o644)
    part.unlink()
    assert store.lookup(key) is entry                     # trusted: a no-op member
    assert store.recheck_before(time.monotonic())         # a member that computes
    assert store.lookup(key) is None and "(deleted)" in store.miss_reason(key)
