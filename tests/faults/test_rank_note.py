"""The main rank's note to the other ranks of a multi-process step is a tmp name that ``rag gc``
reads right (a review of 33b086f): its ``rank0-<run id>-<port>`` tail was read as another
place's id, so gc removed the note of a live rank 0 after an hour and kept a dead one's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types


def test_gc_keeps_a_live_main_ranks_note_and_drops_a_dead_ones(tmp_path, monkeypatch):
    from orchestrator.store import Store
    from orchestrator.task import _main_rank_says, _tell_other_ranks

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-7.a")
    monkeypatch.setenv("MASTER_PORT", "29500")
    store, task = Store(tmp_path / "cache"), types.SimpleNamespace(key="k" * 64)
    _tell_other_ranks(store, task, "compute")
    assert _main_rank_says(store, task) == "compute"
    (note,) = (tmp_path / "cache" / "tmp").glob("k*")
    two_hours_ago = time.time() - 7200
    os.utime(note, (two_hours_ago, two_hours_ago))
    assert note not in store.stale_tmp(), "this process (rank 0) is alive: the note is kept"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    gone = note.with_name(note.name.replace(f".{os.getpid()}.", f".{dead}.", 1))
    note.rename(gone)
    assert gone in store.stale_tmp(), "its rank 0 is gone: the note is stale at once"
