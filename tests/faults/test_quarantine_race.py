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
            time.sleep(2.0)   # the reader hashes a tiny part meanwhile (milliseconds)
            other.quarantine(gen.name, gen, "damaged (first shard)", "gen")

    thread = threading.Thread(target=first_shard)
    thread.start()
    held.wait()
    found = store.check_content(ref, "mul")
    thread.join()
    assert found is not None and found[1] == "gen"
    assert found[2] is True, "the entry was moved by the first shard, yet reported as left"
    assert not gen.exists()


def test_a_reader_whose_entry_is_moved_while_it_hashes_reports_the_move(toy, monkeypatch):
    """The other order: the first shard moves the entry while the second is hashing it (the
    second's read then fails with FileNotFoundError, which is no damage of its own). The
    second then finds the entry gone and its quarantine note, and says the step is computed
    again; before, it reported the stage's bare OSError."""
    import types

    import orchestrator.recheck as recheck
    from orchestrator.artifacts import Ref
    from orchestrator.store import HASHED_AFTER_FAILURE, Store
    from orchestrator.task import _damaged_input

    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    gen = entry_dir(runs, "gen")
    flip_byte(gen / PART, 4)
    ref = Ref("table", "m:T", "h", [str(gen / PART)], rows=[8], producer="gen.out")
    other = Store(runs / "cache")

    def moved_while_hashing(entry, now):
        other.quarantine(gen.name, gen, f"damaged ({HASHED_AFTER_FAILURE} 'mul' failed)", "gen")
        raise FileNotFoundError(2, "No such file or directory", str(gen / PART))
    monkeypatch.setattr(recheck, "content_problem", moved_while_hashing)
    task = types.SimpleNamespace(step="mul", inputs={"numbers": {"ref": ref.to_json()}})
    line = _damaged_input(task, Store(runs / "cache"), OSError("Couldn't deserialize thrift"))
    assert line is not None and "was found damaged in the cache while the step ran" in line, line
    assert line.endswith("rerun: step 'gen' is computed again"), line
