"""Damaged metadata is a miss (or a one-line error naming the file), never an internal error:
truncated or invalid _entry.json, a deleted _manifest.json, a damaged status.json or source memo;
`rag show` on directory artifacts and on damaged tables."""

from __future__ import annotations

import json
from tests.conftest import rag
from tests.faults.faultkit import (BLOB, artifact_dir, entry_dir, recipe, status, total, truncate,
                                   warnings, writable)

PART = "outputs/out/part-00000.parquet"


def plan_cause(capsys, conf, runs, step) -> tuple[str, str]:
    capsys.readouterr()
    assert rag("plan", str(conf), "--runs-dir", str(runs), "--json") == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}
    return steps[step]["state"], steps[step]["cause"]


def test_truncated_entry_json_is_a_miss_naming_the_file(toy, capsys, caplog):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    entry = entry_dir(runs, "gen")
    truncate(entry / "_entry.json", 100)  # what a power loss before the rename's data can leave
    try:
        json.loads((entry / "_entry.json").read_text())
    except ValueError as e:
        why = str(e)
    reason = f"damaged metadata: {entry}/_entry.json: {why}"
    assert plan_cause(capsys, conf, runs, "gen") == ("STALE", reason)
    assert warnings(caplog) == [f"cache entry {entry.name[:12]} of step 'gen' is not usable: {reason}; "
                                f"moved to {runs / 'cache'}/quarantine/"]
    assert rag("run", str(conf), runs=runs) == 0
    assert status(runs)["steps"]["gen"]["cache"] == "miss" and total(runs) == 28.0


def test_entry_json_that_is_not_an_entry(toy, capsys):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    entry = entry_dir(runs, "mul")
    writable(entry / "_entry.json").write_text("[]")
    assert plan_cause(capsys, conf, runs, "mul") == (
        "STALE", f"damaged metadata: {entry}/_entry.json: not a ragline entry (no 'outputs' mapping)")
    assert rag("run", str(conf), runs=runs) == 0 and total(runs) == 28.0


def test_deleted_manifest_is_a_miss(toy, capsys):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    (entry_dir(runs, "gen") / "outputs/out/_manifest.json").unlink()
    assert plan_cause(capsys, conf, runs, "gen") == (
        "STALE", "artifact changed on disk after commit: outputs/out/_manifest.json (deleted)")
    assert rag("run", str(conf), runs=runs) == 0
    assert rag("show", "gen", runs=runs) == 0


def test_damaged_status_json_does_not_stop_gc_or_verify(toy, capsys, caplog):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    first = (runs / "latest").resolve()
    assert rag("run", str(conf), "steps.mul.mul=2", runs=runs) == 0
    truncate(first / "status.json", 30)
    caplog.clear()
    assert rag("gc", "--keep-runs", "5", runs=runs) == 0
    assert any(w.startswith(f"{first}/status.json is damaged (") and w.endswith(
        "; the run's keys are read from its plan.json only")
               for w in warnings(caplog))
    err = capsys.readouterr().err
    assert "kept what 2 run(s) in 1 runs dir(s) reference" in err  # its plan.json still counts
    assert rag("verify", str(first), "--runs-dir", str(runs)) == 0
    capsys.readouterr()
    assert rag("status", str(first), runs=runs) == 1              # one line, not a crash
    err = capsys.readouterr().err
    assert f"{first}/status.json is damaged (JSONDecodeError: " in err and "internal" not in err


def test_damaged_source_memo_is_rebuilt_with_a_warning(toy, caplog):
    runs = toy / "runs"
    data = toy / "nums.txt"
    data.write_text("1\n2\n3\n")
    conf = recipe(toy, f"""ragline:
  imports: [tests.toy.stages]
sources:
  nums: {data}
steps:
  gen: {{stage: toy_gen, inputs: {{path: nums}}}}
""")
    assert rag("run", str(conf), runs=runs) == 0
    memo = runs / "cache" / "sources.json"
    truncate(memo, 5)
    caplog.clear()
    assert rag("run", str(conf), runs=runs) == 0
    assert status(runs)["steps"]["gen"]["cache"] == "hit"
    assert any(w.startswith(f"{memo} is damaged (") and w.endswith("); source files will be hashed again")
               for w in warnings(caplog))


def test_show_directory_artifact_lists_files_sizes_and_manifest(toy, capsys):
    runs, conf = toy / "runs", recipe(toy, BLOB)
    assert rag("run", str(conf), runs=runs) == 0
    capsys.readouterr()
    assert rag("show", "blob", "--json", runs=runs) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "dir" and info["files"] == {"0.txt": 3, "1.txt": 3, "2.txt": 3, "3.txt": 3}
    assert info["size"] == "12 bytes in 4 file(s)"
    assert info["manifest"]["producer"] == "blob.out" and info["manifest"]["format"] == "ragline-artifact/1"
    assert rag("show", "blob", runs=runs) == 0
    err = capsys.readouterr().out
    assert "kind: dir" in err and "  2.txt: 3" in err and "  producer: blob.out" in err


def test_show_sharded_directory_artifact(toy, capsys):
    runs = toy / "runs"
    conf = recipe(toy, BLOB.replace("blob: {stage: toy_blob, inputs: {numbers: gen}}",
                                    "blob: {stage: toy_blob, inputs: {numbers: gen}, shards: 2}"))
    assert rag("run", str(conf), runs=runs) == 0
    capsys.readouterr()
    assert rag("show", "blob", "--json", runs=runs) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shards"] == 2
    assert info["files"] == {"shard-00000/0.txt": 3, "shard-00000/1.txt": 3,
                             "shard-00001/2.txt": 3, "shard-00001/3.txt": 3}


def test_show_damaged_table_is_one_line_naming_the_file(toy, capsys):
    """A truncated part is found by the size check every cache hit makes: one line naming the
    file after the store's warning (a damage only reading finds: tests/orchestrator/
    test_show_checks.py)."""
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    part = artifact_dir(runs, "gen") / "part-00000.parquet"
    truncate(part)
    capsys.readouterr()
    assert rag("show", "gen", runs=runs) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2] == (f"error: gen of run {(runs / 'latest').resolve().name} is damaged in the "
                         "cache (artifact changed on disk after commit: "
                         "outputs/out/part-00000.parquet); not shown")
    assert lines[-1].startswith("  hint: recompute it by rerunning the run's command (its other "
                                "steps are reused): ")
    assert lines[0].startswith("WARNING  cache entry") and not any(
        line.startswith("error: ") for line in lines[:-2])


def test_show_damaged_manifest_names_the_file(toy, capsys):
    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    manifest = artifact_dir(runs, "mul") / "_manifest.json"
    truncate(manifest, 10)
    capsys.readouterr()
    assert rag("show", "mul", runs=runs) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert ("is damaged in the cache (artifact changed on disk after commit: "
            "outputs/out/_manifest.json); not shown") in err
    assert not manifest.exists()   # moved to quarantine, where the next show finds it
    assert rag("show", "mul", runs=runs) == 1
    assert ("is in the cache's quarantine, not in the cache: it was found damaged (artifact "
            "changed on disk after commit: outputs/out/_manifest.json)"
            ) in " ".join(capsys.readouterr().err.split())


def test_show_of_an_output_folder_removed_from_its_entry_says_damaged_not_gc(toy, capsys):
    """Before: "… is no longer in the cache (removed by rag gc, or the cache moved)", though the
    entry was there and rag verify called it damaged."""
    import shutil

    runs, conf = toy / "runs", recipe(toy)
    assert rag("run", str(conf), runs=runs) == 0
    out = artifact_dir(runs, "mul")
    for p in [out, *out.rglob("*")]:
        writable(p)
    shutil.rmtree(out)
    capsys.readouterr()
    assert rag("show", "mul", runs=runs) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert (f"error: mul of run {(runs / 'latest').resolve().name} is damaged in the cache "
            "(artifact changed on disk after commit: outputs/out/") in err
    assert ("(deleted)); not shown hint: recompute it by rerunning the run's command (its other "
            "steps are reused)") in err and "rag gc" not in err
    assert rag("run", str(conf), runs=runs) == 0 and status(runs)["steps"]["mul"]["cache"] == "miss"


def test_step_failing_on_a_damaged_input_names_the_producer_and_the_fix(toy, capsys):
    runs = toy / "runs"
    conf = recipe(toy, """ragline:
  imports: [tests.toy.stages, tests.faults.toy_faults]
steps:
  gen: {stage: toy_gen, n: 8}
  bad: {stage: fault_damage_input, inputs: {numbers: gen}}
""")
    assert rag("run", str(conf), runs=runs) == 1
    part = artifact_dir(runs, "gen") / "part-00000.parquet"
    err = capsys.readouterr().err
    assert (f"✗ bad failed: step 'bad' input 'numbers' is damaged in the cache: {part} changed "
            "after it was committed by step 'gen'; it is no longer in the cache (see "
            "quarantine/), so a rerun computes step 'gen' again") in err
    assert rag("run", str(conf), runs=runs) == 1  # gen recomputed (no --force), bad fails again
    assert status(runs)["steps"]["gen"]["cache"] == "miss"
