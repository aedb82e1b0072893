"""``rag show`` lists a directory artifact's files in path order, a folder's files under it
(``a/z`` before ``a-b``, as ``Path`` objects sort; a plain string sort puts ``a-b`` first),
with each shard's files under its own prefix and the sizes summed."""

from __future__ import annotations

from pathlib import PurePosixPath

from orchestrator.cli.show import dir_info


def test_files_are_listed_in_path_order_per_shard(tmp_path):
    names = ["b.txt", "a-b.txt", "a/z.txt", "a/b/c.txt", "a.txt", "A.txt"]
    shards = [tmp_path / "shard-00000", tmp_path / "shard-00001"]
    for d in shards:
        for n in names:
            (d / "data" / n).parent.mkdir(parents=True, exist_ok=True)
            (d / "data" / n).write_text(n)
    one = dir_info(shards[:1])
    in_order = [str(p) for p in sorted(PurePosixPath(n) for n in names)]
    assert list(one["files"]) == in_order == ["A.txt", "a/b/c.txt", "a/z.txt", "a-b.txt",
                                              "a.txt", "b.txt"]
    two = dir_info(shards)
    assert list(two["files"]) == [f"shard-{i:05d}/{n}" for i in (0, 1) for n in in_order]
    assert two["size"] == f"{2 * sum(len(n) for n in names)} bytes in 12 file(s)"
