"""The remembered hashes of source files: a directory source hashes the same walked with
strings as it did with ``Path`` objects (a changed hash would recompute every step downstream of
a model checkpoint), and ``rag gc`` forgets the files that are gone (``sources.json`` kept every
file of every directory ever read, and every run and every shard loads it)."""

from __future__ import annotations

import json

from orchestrator.hashing import SourceMemo, hash_file, hash_strings
from orchestrator.store import Store
from tests.conftest import rag


def test_a_directory_hashes_as_its_sorted_relative_paths_and_file_hashes(tmp_path):
    src = tmp_path / "ckpt"
    (src / "b" / "c").mkdir(parents=True)
    (src / "z.json").write_text("{}")
    (src / "a.bin").write_bytes(b"\0" * 10)
    (src / "b" / "c" / "w.safetensors").write_bytes(b"w")
    (src / "b" / "t.txt").write_text("t")
    memo = SourceMemo(tmp_path / "memo.json")
    files = ["a.bin", "z.json", "b/t.txt", "b/c/w.safetensors"]   # a folder's files first
    expected = hash_strings([x for f in files for x in (f, hash_file(src / f))])
    assert memo.hash(src) == expected
    assert memo.hash(str(src) + "/") == expected
    assert sorted(memo.memo) == sorted(str((src / f).resolve()) for f in files)


def test_gc_forgets_the_remembered_hashes_of_files_that_are_gone(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    root = Store.for_runs(runs).root
    kept, gone = tmp_path / "kept.txt", tmp_path / "gone.txt"
    kept.write_text("k")
    gone.write_text("g")
    memo = SourceMemo(root / "sources.json")
    memo.hash(kept), memo.hash(gone)
    memo.save()
    gone.unlink()

    assert rag("gc", "--dry-run", runs=runs) == 0
    assert "1 source memo rows" in capsys.readouterr().err
    assert len(json.loads((root / "sources.json").read_text())) == 2    # a dry run keeps it
    assert rag("gc", runs=runs) == 0
    assert "removed 0 entries (0.0 MB), 1 source memo rows" in capsys.readouterr().err
    assert list(json.loads((root / "sources.json").read_text())) == [str(kept.resolve())]
