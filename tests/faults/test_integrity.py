"""Integrity on every cache hit: a changed, truncated or deleted artifact file is a miss, is
quarantined and recomputed; committed files are read-only; a --force repair cannot leave
downstream steps cached on corrupted data; `rag verify` finds what a stat check cannot."""

from __future__ import annotations

import json
import os
import stat

from tests.conftest import counts, rag
from tests.faults.faultkit import (BLOB, artifact_dir, entry_dir, flip_byte, recipe, rewrite_table,
                                   status, total, truncate, warnings)

PART = "outputs/out/part-00000.parquet"


def plan_steps(capsys, *args) -> dict:
    capsys.readouterr()
    assert rag("plan", *args, "--json") == 0
    return {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}


def test_committed_files_are_read_only_and_their_stats_recorded(toy):
    runs = toy / "runs"
    assert rag("run", str(recipe(toy)), runs=runs) == 0
    entry = entry_dir(runs, "mul")
    meta = json.loads((entry / "_entry.json").read_text())
    st = os.stat(entry / PART)
    assert meta["files"][PART] == [st.st_size, st.st_mtime_ns]
    assert meta["files"]["outputs/out"][0] is None  # directories: mtime only
    assert set(meta["files"]) >= {"outputs/out/_manifest.json", "outputs/out/_preview.jsonl", "_log.txt"}
    files = [p for p in entry.rglob("*") if p.is_file()]
    assert len(files) == 5
    assert all(stat.S_IMODE(os.stat(p).st_mode) & 0o222 == 0 for p in files)  # chmod a-w
    manifest = json.loads((entry / "outputs/out/_manifest.json").read_text())
    assert set(manifest["hashes"]) == {"part-00000.parquet"}


def test_rewritten_table_is_stale_quarantined_and_recomputed(toy, capsys, caplog):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    entry = entry_dir(runs, "gen")
    rewrite_table(entry / PART, 100.0)  # valid Parquet, different numbers
    steps = plan_steps(capsys, str(conf), "--runs-dir", str(runs))
    assert steps["gen"]["state"] == "STALE"
    assert steps["gen"]["cause"] == f"artifact changed on disk after commit: {PART}"
    cache = toy / "runs" / "cache"
    assert warnings(caplog) == [
        f"cache entry {entry.name[:12]} of step 'gen' is not usable: artifact changed on disk after "
        f"commit: {PART}; moved to {cache}/quarantine/"]
    quarantined = list((cache / "quarantine").glob(f"{entry.name}.*"))
    assert len(quarantined) == 1 and (quarantined[0] / PART).is_file()  # kept, not deleted
    note = json.loads((quarantined[0] / "_quarantine.json").read_text())
    assert note["step"] == "gen" and note["reason"] == f"artifact changed on disk after commit: {PART}"
    # the cause stays visible to later plans until the step is recomputed
    assert plan_steps(capsys, str(conf), "--runs-dir", str(runs))["gen"]["cause"] == \
        f"artifact changed on disk after commit: {PART}"
    assert rag("run", str(conf), runs=runs) == 0
    assert status(runs)["steps"]["gen"]["cache"] == "miss"
    assert total(runs) == 28.0


def test_force_repair_chain_never_leaves_downstream_on_corrupted_data(toy, monkeypatch):
    """The review's chain: corrupt gen, run with a new mul (it used to read the bad bytes and
    exit 0 with 11200.0), then --force gen (mul and total used to stay cached on bad data)."""
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0
    rewrite_table(entry_dir(runs, "gen") / PART, 100.0)
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(conf), "steps.mul.mul=4", runs=runs) == 0
    assert total(runs) == 112.0
    assert status(runs)["steps"]["gen"]["cache"] == "miss"
    assert rag("run", str(conf), "steps.mul.mul=4", "--force", "gen", runs=runs) == 0
    assert total(runs) == 112.0
    assert {n: s["cache"] for n, s in status(runs)["steps"].items()} == \
        {"gen": "miss", "mul": "hit", "total": "hit"}
    assert counts(toy / "count.txt") == {"mul:0": 1}  # mul computed once, on good data


def test_truncated_and_deleted_files_are_misses(toy, capsys):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    truncate(entry_dir(runs, "gen") / PART)
    (entry_dir(runs, "mul") / PART).unlink()
    steps = plan_steps(capsys, str(conf), "--runs-dir", str(runs))
    assert steps["gen"]["cause"] == f"artifact changed on disk after commit: {PART}"
    assert steps["mul"]["state"] == "STALE"
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0


def test_file_deleted_or_added_inside_a_directory_artifact(toy, capsys):
    runs, conf = toy / "runs", recipe(toy, BLOB)
    assert rag("run", str(conf), runs=runs) == 0
    data = artifact_dir(runs, "blob")
    (data / "1.txt").unlink()
    cause = plan_steps(capsys, str(conf), "--runs-dir", str(runs))["blob"]["cause"]
    assert cause == "artifact changed on disk after commit: outputs/out/data/1.txt (deleted)"
    assert rag("run", str(conf), runs=runs) == 0
    assert (artifact_dir(runs, "blob") / "1.txt").is_file()
    (artifact_dir(runs, "blob") / "stray.txt").write_text("9")
    cause = plan_steps(capsys, str(conf), "--runs-dir", str(runs))["blob"]["cause"]
    assert cause == "artifact changed on disk after commit: outputs/out/data/stray.txt (added)"


def test_stage_that_writes_into_its_input_fails_with_its_name(toy, capsys):
    runs = toy / "runs"
    conf = recipe(toy, BLOB.replace("  read: {stage: toy_read_blob, inputs: {blob: blob}}",
                                    "  mutate: {stage: fault_mutate, inputs: {blob: blob}}"))
    assert rag("run", str(conf), runs=runs) == 1
    err = capsys.readouterr().err
    data = artifact_dir(runs, "blob")
    # before: "wrote into its input", also when another process had changed it
    assert (f"✗ mutate failed: step 'mutate' (stage 'fault_mutate'): its input 'blob' changed "
            f"while the step ran ({data}/0.txt): a stage must not modify its inputs (copy them "
            "into ctx.new_dir() first), nor may anything else change the cache during a run"
            ) in " ".join(err.split())
    steps = plan_steps(capsys, str(conf), "--runs-dir", str(runs))
    assert steps["blob"]["state"] == "STALE"
    assert steps["blob"]["cause"] == "artifact changed on disk after commit: outputs/out/data/0.txt"


def test_verify_finds_bit_rot_that_keeps_size_and_mtime(toy, capsys):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    entry = entry_dir(runs, "mul")
    flip_byte(entry / PART, 4)
    capsys.readouterr()
    assert rag("verify", "--runs-dir", str(runs)) == 1
    err = capsys.readouterr().out
    assert (f"DAMAGED step 'mul' ({entry.name[:12]}): content differs from its commit: {PART}") in err
    assert f"verified 3 entries of run {(runs / 'latest').resolve()}: 2 intact, 1 damaged" in err
    assert "rerun with --quarantine to move them aside; the next run recomputes them" in err
    assert entry.is_dir()  # reported only
    assert rag("verify", "--all", "--quarantine", "--runs-dir", str(runs)) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "quarantined 1; the next run recomputes them" in out
    # before: nothing said that total was computed from mul's damaged bytes, and then it
    # stayed cached: recomputing mul gives its old content, so total was a hit on wrong bytes
    assert ("1 entry was computed from the damaged outputs (steps total): their results may "
            "hold the damage, so they were quarantined too") in out
    assert not entry.exists() and not entry_dir(runs, "total").exists()
    assert rag("verify", "--all", "--runs-dir", str(runs)) == 0
    assert rag("verify", "--all", "no-such-run", "--runs-dir", str(runs)) == 2   # was ignored
    assert "error: name a run (no-such-run) or --all, not both" in capsys.readouterr().err
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0
    assert rag("verify", "--all", "--runs-dir", str(runs)) == 0


def test_verify_help_has_examples(capsys):
    assert rag("verify", "--help") == 0
    out = capsys.readouterr().out
    assert "rag verify --all --quarantine" in out and "exit codes: 0 all intact, 1 something is damaged" in out


def test_verify_tells_keys_a_run_never_computed_from_keys_removed_since(toy, capsys):
    """Before: both were "N not in the cache", so a run that stopped at its first step read as
    if its work had been lost."""
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), "--only", "total", runs=runs) == 2   # upstream not cached
    capsys.readouterr()
    assert rag("verify", "--runs-dir", str(runs)) == 0
    assert (f"verified 0 entries of run {(runs / 'latest').resolve()}: 0 intact, 0 damaged, "
            "1 never computed (the run stopped before them)") in capsys.readouterr().out
    assert rag("run", str(conf), runs=runs) == 0
    flip_byte(entry_dir(runs, "mul") / PART, 4)
    assert rag("verify", "--all", "--quarantine", "--runs-dir", str(runs)) == 1
    capsys.readouterr()
    assert rag("verify", "--runs-dir", str(runs)) == 0
    assert (f"verified 1 entries of run {(runs / 'latest').resolve()}: 1 intact, 0 damaged, "
            "2 in quarantine (1 found damaged, 1 computed from it; the next run recomputes "
            "them)") in capsys.readouterr().out   # was: "removed by rag gc"; total moved too
    assert rag("verify", "--all", "--runs-dir", str(runs)) == 0
    assert (f"verified 1 entries of cache {runs / 'cache'}: 1 intact, 0 damaged; 2 more in "
            f"{runs / 'cache' / 'quarantine'} (moved aside as damaged, never used again; rag gc "
            "removes them)") in capsys.readouterr().out
    assert rag("gc", "--runs-dir", str(runs)) == 0
    capsys.readouterr()
    assert rag("verify", "--runs-dir", str(runs)) == 0
    assert ", 2 no longer in the cache (removed by rag gc" in capsys.readouterr().out


SHARDED = CHAIN_SHARDED = """ragline:
  imports: [tests.toy.stages, tests.faults.toy_faults]
steps:
  gen: {stage: toy_gen, n: 8}
  mul: {stage: toy_map, inputs: {numbers: gen}, shards: 2}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""


def test_verify_names_dependents_through_a_sharded_step(toy, capsys):
    """A step that reads a sharded step records the shards' hash together, which matched no
    single shard: a damaged shard of mul named no dependent (total stayed cached on its bytes),
    and a damaged gen named mul's shards but not total."""
    runs, conf = toy / "runs", recipe(toy, SHARDED)
    assert rag("run", str(conf), runs=runs) == 0
    shard = (runs / "latest" / "artifacts" / "mul.out" / "shard-00001").resolve()
    flip_byte(shard / "part-00000.parquet", 4)
    capsys.readouterr()
    assert rag("verify", "--all", "--quarantine", "--runs-dir", str(runs)) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "verified 4 entries of cache" in out and "1 damaged" in out
    assert "more in" not in out     # was: "1 more in quarantine", the entry it had just moved
    assert ("1 entry was computed from the damaged outputs (steps total): their results may "
            "hold the damage, so they were quarantined too") in out
    assert rag("run", str(conf), runs=runs) == 0
    flip_byte(entry_dir(runs, "gen") / PART, 4)
    assert rag("verify", "--all", "--runs-dir", str(runs)) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert ("3 entries were computed from the damaged outputs (steps mul, total): if the damage "
            "came first, their results are wrong too; recompute them: rag run RECIPE --from gen, "
            "or rerun with --quarantine") in out
    assert "; 2 more in" in out     # the shard and total, quarantined above


def test_a_quarantined_key_the_run_never_reached_is_counted_once(toy, capsys):
    """It was counted "in quarantine" and "never computed" both: 4 keys for a run of 3."""
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    flip_byte(entry_dir(runs, "total") / "outputs/out/metrics.json", 3)
    assert rag("verify", "--all", "--quarantine", "--runs-dir", str(runs)) == 1
    assert rag("run", str(conf), "--until", "mul", runs=runs) == 0
    capsys.readouterr()
    assert rag("verify", "--runs-dir", str(runs)) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ": 2 intact, 0 damaged, 1 in quarantine (found damaged; the next run recomputes it)" \
        in out and "never computed" not in out


def test_verify_checks_an_entry_committed_again_while_it_read_it(toy, capsys, monkeypatch):
    """A --force committed while verify re-hashed the entry: verify called the new, intact entry
    damaged (old metadata, new bytes), quarantined it and said its dependents were wrong."""
    from orchestrator.cli import verify

    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    gen = entry_dir(runs, "gen")
    real, calls = verify.entry_problem, []

    def force_meanwhile(store, entry):
        calls.append(entry.key)
        if entry.key == gen.name and calls.count(gen.name) == 1:
            text = (gen / "_entry.json").read_text()
            os.rename(gen / "_entry.json", toy / "old.json")
            (gen / "_entry.json").write_text(text)        # what a commit leaves: another file
            return "content differs from its commit: outputs/out"
        return real(store, entry)
    monkeypatch.setattr(verify, "entry_problem", force_meanwhile)
    capsys.readouterr()
    assert rag("verify", "--all", "--quarantine", "--runs-dir", str(runs)) == 0
    assert "3 intact, 0 damaged" in capsys.readouterr().out and gen.is_dir()
    assert calls.count(gen.name) == 2
