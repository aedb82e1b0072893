"""Two shards that read the same damaged part both hash it again and both set it aside.

CI (a 2-core machine) once saw the second shard's message say "fix: rerun with --force gen"
instead of "it was moved to quarantine": its ``set_aside`` tried the key's lock once
(``timeout=0``) while the first shard held it to move the entry, left the entry "in place", and
read the entry's stamp before the first shard's move had happened. ``set_aside`` now waits a few
seconds for the lock, so the second shard sees the move.
"""

from __future__ import annotations

import threading
import time

from tests.conftest import rag
from tests.faults.faultkit import entry_dir, flip_byte, recipe

PART = "outputs/out/part-00000.parquet"


def test_a_reader_that_finds_the_lock_held_by_another_mover_reports_the_move(toy):
    from orchestrator.artifacts import Ref
    from orchestrator.store import Store

    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    gen = entry_dir(runs, "gen")
    flip_byte(gen / PART, 4)
    ref = Ref("table", "m:T", "h", [str(gen / PART)], rows=[8], producer="gen.out")
    store, other = Store(runs / "cache"), Store(runs / "cache")
    held = threading.Event()

    def first_shard() -> None:   # holds the key's lock while it moves the entry aside
        with other.lock(gen.name, "first shard"):
            held.set()
            time.sleep(0.5)
            other.quarantine(gen.name, gen, "damaged (first shard)", "gen")

    thread = threading.Thread(target=first_shard)
    thread.start()
    held.wait()
    found = store.check_content(ref, "mul")
    thread.join()
    assert found is not None and found[1] == "gen"
    assert found[2] is True, "the entry was moved by the first shard, yet reported as left"
    assert not gen.exists()
