"""A cache copied without its timestamps (`cp -r`), or touched, keeps its entries: each is hashed
again once, kept when its bytes are the committed ones, and recorded with its new stats. Before,
every entry read as changed, was quarantined, and the next run computed everything again."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import counts, rag
from tests.faults.faultkit import (BLOB, artifact_dir, entry_dir, flip_byte, recipe, status,
                                   total, warnings, writable)

PART = "outputs/out/part-00000.parquet"
SHARDED = """ragline:
  imports: [tests.toy.stages, tests.faults.toy_faults]
steps:
  gen: {stage: toy_gen, n: 8}
  mul: {stage: toy_map, inputs: {numbers: gen}, shards: 2}
  total: {stage: toy_sum, inputs: {numbers: mul}}
  blob: {stage: toy_blob, inputs: {numbers: gen}, shards: 2}
  read: {stage: toy_read_blob, inputs: {blob: blob}}
"""


def later(path, seconds: int = 5) -> None:
    """A touch: a later mtime, the same bytes."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


def test_cache_copied_without_timestamps_is_reused_not_recomputed(toy, monkeypatch, caplog):
    runs, conf = toy / "runs", recipe(toy, SHARDED)
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0
    subprocess.run(["cp", "-r", str(runs), str(toy / "copy")], check=True)  # new mtimes
    copy = toy / "copy"
    monkeypatch.setenv("RAGLINE_CACHE", str(copy / "cache"))
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    caplog.clear()
    assert rag("run", str(conf), runs=copy) == 0 and total(copy) == 28.0
    assert counts(toy / "count.txt") == {}   # nothing computed again
    assert {s["cache"] for s in status(copy)["steps"].values()} == {"hit"}
    kept = [w for w in warnings(caplog) if "hashed again, is the committed one: kept" in w]
    assert len(kept) == 7 and len(warnings(caplog)) == 7   # gen, 2 + 2 shards, total, read
    assert "(timestamps recorded)" in kept[0]
    assert not (copy / "cache" / "quarantine").exists()
    caplog.clear()
    assert rag("run", str(conf), "--force", "read", runs=copy) == 0   # reads the gathered shards
    assert warnings(caplog) == []   # the new stats were recorded: stat checks pass again
    import pyarrow.parquet as pq

    assert pq.read_table(artifact_dir(copy, "read")).num_rows == 8
    links = list((copy / "cache" / "gather").glob("*/shard-*"))
    assert len(links) == 2 and all(p.resolve().is_relative_to(copy) for p in links)


def test_touched_file_is_kept_and_a_changed_one_named(toy, capsys, caplog):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    gen, mul = entry_dir(runs, "gen"), entry_dir(runs, "mul")
    later(gen / PART)
    later(gen / "outputs/out/_manifest.json")
    flip_byte(mul / PART, 4)
    later(mul / PART)   # a rewrite of the same size, with a new mtime
    caplog.clear()
    assert rag("plan", str(conf), "--runs-dir", str(runs)) == 0
    said = warnings(caplog)
    assert len(said) == 2
    assert said[0].startswith(f"cache entry {gen.name[:12]} of step 'gen': its files have new "
                              "timestamps (a copy or a touch: outputs/out/")   # the first found
    assert said[0].endswith("), and their content, hashed again, is the committed one: kept "
                            "(timestamps recorded)")
    assert said[1].startswith(f"cache entry {mul.name[:12]} of step 'mul' is not usable: "
                              f"artifact changed on disk after commit: {PART}; moved to ")
    meta = json.loads((gen / "_entry.json").read_text())
    assert meta["files"][PART][1] == os.stat(gen / PART).st_mtime_ns
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0
    assert status(runs)["steps"]["gen"]["cache"] == "hit"
    assert status(runs)["steps"]["mul"]["cache"] == "miss"


def test_manifest_rewritten_to_the_same_size_is_not_kept(toy, caplog):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    manifest = entry_dir(runs, "gen") / "outputs/out/_manifest.json"
    text = manifest.read_text()
    digest = json.loads(text)["content_hash"]
    writable(manifest).write_text(text.replace(digest, digest[::-1]))   # same size, new mtime
    caplog.clear()
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0
    assert status(runs)["steps"]["gen"]["cache"] == "miss"
    assert "after commit: outputs/out/_manifest.json; moved to" in warnings(caplog)[0]


def test_verify_keeps_a_touched_entry(toy, capsys):
    runs, conf = toy / "runs", recipe(toy, BLOB)
    assert rag("run", str(conf), runs=runs) == 0
    later(artifact_dir(runs, "blob") / "0.txt")
    capsys.readouterr()
    assert rag("verify", "--runs-dir", str(runs)) == 0
    assert "3 intact, 0 damaged" in capsys.readouterr().out


def test_runs_dir_moved_whole_keeps_its_run_records(toy, monkeypatch, capsys, caplog):
    """Before: each run record linked its artifacts by absolute path, so after `mv runs` every
    `rag show` of an earlier run said the artifact was no longer in the cache."""
    runs, conf = toy / "runs", recipe(toy, SHARDED)
    assert rag("run", str(conf), runs=runs) == 0
    first = (runs / "latest").resolve().name
    moved = toy / "elsewhere" / "runs"
    moved.parent.mkdir()
    os.rename(runs, moved)
    monkeypatch.setenv("RAGLINE_CACHE", str(moved / "cache"))
    for step in ("mul", "blob", "total"):
        capsys.readouterr()
        assert rag("show", step, "--runs-dir", str(moved), "--json") == 0, step
        assert str(moved) in json.loads(capsys.readouterr().out)["path"]
    caplog.clear()
    assert rag("run", str(conf), "--force", "read", runs=moved) == 0 and warnings(caplog) == []
    assert rag("show", "blob", "--run", first, "--runs-dir", str(moved)) == 0


def test_an_entry_that_cannot_be_read_again_is_a_miss_not_a_crash(toy, monkeypatch, caplog):
    """The re-hash reads every byte: an entry moved away meanwhile (a gc) or unreadable raised
    out of the lookup ("internal error: FileNotFoundError")."""
    import orchestrator.recheck as recheck

    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    later(entry_dir(runs, "gen") / PART)

    def gone(dest, kind):
        raise FileNotFoundError(2, "No such file or directory")
    monkeypatch.setattr(recheck, "rehash", gone)
    caplog.clear()
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0
    assert status(runs)["steps"]["gen"]["cache"] == "miss"
    assert (f"after commit: {PART} (cannot be read again: No such file or directory); moved to"
            ) in warnings(caplog)[0]


def test_new_stats_are_recorded_only_under_the_key_and_over_the_file_read(toy, caplog):
    """A --force elsewhere commits under the key's lock: the re-stamp takes that lock too, and
    writes nothing once ``_entry.json`` is another file than the lookup read (it wrote the old
    entry's metadata over the new entry's bytes, which the next lookup then quarantined)."""
    import orchestrator.recheck as recheck
    from orchestrator.store import Store

    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    gen = entry_dir(runs, "gen")
    store = Store(runs / "cache")
    later(gen / PART)
    with store.lock(gen.name):
        caplog.clear()
        assert store.lookup(gen.name, "gen") is not None
    assert "(timestamps not recorded: another process holds its key)" in warnings(caplog)[0]
    real = recheck.content_problem

    def recommitted_meanwhile(entry, now):
        text = (gen / "_entry.json").read_text()
        os.rename(gen / "_entry.json", toy / "old_entry.json")
        (gen / "_entry.json").write_text(text)     # another file: what a commit leaves
        written.append(os.stat(gen / "_entry.json").st_ino)
        return real(entry, now)
    written: list[int] = []
    recheck.content_problem = recommitted_meanwhile
    try:
        caplog.clear()
        assert Store(runs / "cache").lookup(gen.name, "gen") is not None
    finally:
        recheck.content_problem = real
    assert "(timestamps not recorded: the entry was committed again meanwhile)" in \
        warnings(caplog)[0]
    assert os.stat(gen / "_entry.json").st_ino == written[0]   # the other file, left alone
