"""The content-addressed store: atomic, single-flight commits."""

from __future__ import annotations

import threading
import time

from orchestrator.store import Store


def test_store_commit_is_atomic_and_single_flight(tmp_path):
    store = Store(tmp_path)
    order = []

    def worker(name):
        with store.lock("k1"):
            if store.has("k1"):
                order.append(f"{name}:hit")
                return
            time.sleep(0.2)
            tmp = store.new_tmp("k1")
            (tmp / "outputs").mkdir()
            store.commit(tmp, "k1", {"outputs": {}})
            order.append(f"{name}:computed")

    threads = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(x.split(":")[1] for x in order) == ["computed", "hit"]
    assert store.lookup("k1").meta == {"outputs": {}}
    leftover = store.new_tmp("k2")  # a writer that died: gc finds it, lookup ignores it
    assert store.lookup("k2") is None and leftover.exists()
