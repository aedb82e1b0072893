"""Content hashes and the size+mtime memo of sources."""

from __future__ import annotations

from orchestrator.hashing import SourceMemo, hash_file


def test_source_memo_does_not_reread_unchanged_files(tmp_path, monkeypatch):
    f = tmp_path / "data.txt"
    f.write_text("hello")
    memo = SourceMemo(tmp_path / "memo.json")
    first = memo.hash(f)
    memo.save()
    calls = []
    import orchestrator.hashing as hashing

    monkeypatch.setattr(hashing, "hash_file", lambda p: calls.append(p) or "x")
    memo2 = SourceMemo(tmp_path / "memo.json")
    assert memo2.hash(f) == first and calls == []
    f.write_text("hello!")
    assert memo2.hash(f) == "x" and len(calls) == 1


def test_hash_file_is_xxh3_of_the_bytes(tmp_path):
    import xxhash

    f = tmp_path / "b"
    f.write_bytes(b"abc" * 1000)
    assert hash_file(f) == xxhash.xxh3_128(b"abc" * 1000).hexdigest()


def test_processes_that_save_the_memo_in_turn_keep_each_others_rows(tmp_path):
    """Two processes (a sweep's members, or a run and ``rag gc``) load the memo, each learns or
    forgets rows, and each saves: the file ends with all of it, not the last saver's view."""
    a, b, gone = (tmp_path / n for n in ("a.txt", "b.txt", "gone.txt"))
    for f in (a, b, gone):
        f.write_text(f.name)
    path = tmp_path / "memo.json"
    first = SourceMemo(path)
    first.hash(gone)
    first.save()
    gone.unlink()
    run, gc = SourceMemo(path), SourceMemo(path)
    run.hash(a)
    gc.prune()
    run.save()
    gc.save()       # the later saver forgets the gone file and keeps the run's new row
    late = SourceMemo(path)
    late.hash(b)
    late.save()
    rows = SourceMemo(path).memo
    assert sorted(rows) == sorted(str(f.resolve()) for f in (a, b))


def test_a_forgotten_row_that_another_process_learned_again_is_kept(tmp_path):
    f, path = tmp_path / "data.txt", tmp_path / "memo.json"
    f.write_text("one")
    first = SourceMemo(path)
    first.hash(f)
    first.save()
    f.unlink()
    gc = SourceMemo(path)
    gc.prune()
    f.write_text("two, written again")
    run = SourceMemo(path)
    run.hash(f)
    run.save()
    gc.save()
    assert SourceMemo(path).memo[str(f.resolve())][3] == hash_file(f)
