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
