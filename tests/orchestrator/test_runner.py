"""Integration tests of the runner on the toy chain: run, no-op, resume, force, sweeps, records."""

from __future__ import annotations

import json

import pytest

from tests.conftest import counts, rag


def _oneline(text: str) -> str:
    return " ".join(text.split())


def test_full_run_then_noop_rerun_executes_nothing(toy, monkeypatch):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    first = counts(toy / "count.txt")
    assert first["retrieve:0"] == 1 and first["retrieve:3"] == 1 and first["dpo:0"] == 1
    assert len(first) == 12  # 4 retrieve shards + 8 unsharded toy_map steps
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "ok"
    assert all(status["started"] <= s["started"] <= status["finished"]    # rag status: "so far"
               for s in status["steps"].values())
    assert status["metrics"]["evaluate"]["sum"] == pytest.approx(40.8)
    assert json.loads((runs / "latest" / "metrics.json").read_text())["evaluate"]["count"] == 8

    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    assert counts(toy / "count.txt") == first  # nothing executed again
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert {s["cache"] for s in status["steps"].values()} == {"hit"}


def test_config_change_reruns_only_downstream(toy, monkeypatch):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    (toy / "count.txt").unlink()
    assert rag("run", str(toy / "conf/chain.yaml"), "steps.reward.add=1.25", runs=runs) == 0
    assert set(counts(toy / "count.txt")) == {"reward:0", "dpo:0"}


def test_nonsemantic_change_is_a_cache_hit(toy, monkeypatch):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    (toy / "count.txt").unlink()
    assert rag("run", str(toy / "conf/chain.yaml"), "steps.sft.sleep=0.01", runs=runs) == 0
    assert counts(toy / "count.txt") == {}


def test_early_cutoff_when_forced_step_reproduces_its_bytes(toy, monkeypatch):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    (toy / "count.txt").unlink()
    assert rag("run", str(toy / "conf/chain.yaml"), "--force", "label", runs=runs) == 0
    assert counts(toy / "count.txt") == {"label:0": 1}  # identical output: downstream cached


def test_from_reruns_step_and_everything_after(toy, monkeypatch):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    (toy / "count.txt").unlink()
    assert rag("run", str(toy / "conf/chain.yaml"), "--from", "sample", runs=runs) == 0
    assert set(counts(toy / "count.txt")) == {"sample:0", "reward:0", "dpo:0"}


def test_only_runs_one_step_and_needs_cached_upstream(toy, monkeypatch, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "--only", "dpo", runs=runs) == 2
    assert ("upstream steps load, retrieve, aggregate, rerank, label, convert, sft, sample, reward "
            "are not cached") in capsys.readouterr().err
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(toy / "conf/chain.yaml"), "--only", "dpo", "steps.dpo.add=3",
               runs=runs) == 0
    assert counts(toy / "count.txt") == {"dpo:0": 1}


def test_failed_shard_is_resumed_alone(toy, monkeypatch, capsys):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    monkeypatch.setenv("TOY_FAIL", "retrieve:2")
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 1
    err = capsys.readouterr().err
    assert "retrieve[2/4]" in err and "toy failure in retrieve:2" in err
    assert "retrieve.shard-00002.log" in err
    assert "resume with:" in err and "conf/chain.yaml" in err
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["steps"]["retrieve"]["state"] == "failed"
    assert status["steps"]["aggregate"]["state"] == "skipped"
    assert rag("show", "retrieve", runs=runs) == 2     # says the step failed, and where its log is
    err = _oneline(capsys.readouterr().err)
    assert "step 'retrieve' failed in run" in err and "toy failure in retrieve:2" in err
    assert "hint: its log:" in err
    first = counts(toy / "count.txt")
    assert {k for k in first if k.startswith("retrieve")} == {f"retrieve:{i}" for i in range(4)}

    monkeypatch.delenv("TOY_FAIL")
    (toy / "count.txt").unlink()
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    again = counts(toy / "count.txt")
    assert [k for k in again if k.startswith("retrieve")] == ["retrieve:2"]
    assert "aggregate:0" in again


def test_sweep_of_four_shares_upstream(toy, monkeypatch, capsys):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.dpo.add=0.1,0.2",
               "steps.reward.mul=1,2", runs=runs) == 0
    c = counts(toy / "count.txt")
    assert c["retrieve:0"] == 1 and c["sft:0"] == 1 and c["sample:0"] == 1
    assert c["reward:0"] == 2  # two distinct reward configs
    assert c["dpo:0"] == 4  # four members, four dpo configs
    sweep = sorted((runs / "chain").glob("*-sweep"))[-1]
    assert len(list(sweep.glob("member-*/status.json"))) == 4
    capsys.readouterr()
    assert rag("status", sweep.name, "--json", runs=runs) == 0      # the sweep, by its name
    members = json.loads(capsys.readouterr().out)["members"]
    assert [m["overrides"] for m in members][:2] == [["steps.dpo.add=0.1", "steps.reward.mul=1"],
                                                     ["steps.dpo.add=0.1", "steps.reward.mul=2"]]
    assert {m["state"] for m in members} == {"ok"} and sum(m["ran"] for m in members) > 4
    assert rag("status", runs=runs) == 0            # latest: a member of it, so the sweep's
    out = capsys.readouterr().out
    assert "sweep: ok (4 ok)" in " ".join(out.split()) and "member-0003" in out


def test_sweep_summary_names_a_members_failed_step(toy, monkeypatch, capsys):
    monkeypatch.setenv("TOY_FAIL", "dpo:0")
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.dpo.add=0.1,0.2",
               "--no-progress", runs=toy / "runs") == 1
    out = capsys.readouterr().out
    assert out.count("failed: dpo") == 2 and " ran" not in out


def test_plan_counts_shared_sweep_steps_once(toy, capsys):
    runs = toy / "runs"
    assert rag("plan", str(toy / "conf/chain.yaml"), "-m", "steps.dpo.add=0.1,0.2,0.3,0.4",
               "--json", runs=runs) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tasks"] == 4 * 14
    assert out["unique_tasks"] == 12 + 4 * 2  # shared prefix once; dpo and evaluate per member
    assert out["tasks_to_run"] == out["unique_tasks"]


def test_plan_states_and_causes(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    capsys.readouterr()
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.sft.add=5", "--json", runs=runs) == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}
    assert steps["convert"]["state"] == "FRESH"
    assert steps["sft"]["state"] == "STALE" and steps["sft"]["cause"] == "config: add 1.0 -> 5.0"
    assert steps["sample"]["state"] == "STALE" and "after upstream 'sft'" in steps["sample"]["cause"]
    assert rag("plan", str(toy / "conf/chain.yaml"), "+steps.extra={stage: toy_sum, inputs: {numbers: dpo}}",
               "--json", runs=runs) == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}
    assert steps["extra"]["state"] == "MISSING" and steps["extra"]["cause"] == "never computed"
    assert rag("plan", str(toy / "conf/chain.yaml"), "steps.retrieve.shards=2", runs=runs) == 0
    out = capsys.readouterr().out   # the table: overrides in the title, a readable shard cause
    assert "chain.yaml [steps.retrieve.shards=2]" in out and "shards 4 -> 2" in out


def test_source_change_is_detected_and_unchanged_touch_is_not(toy, monkeypatch, capsys):
    runs = toy / "runs"
    data = toy / "numbers.txt"
    data.write_text("1\n2\n3\n")
    recipe = toy / "conf/chain.yaml"
    text = recipe.read_text().replace("load:      {stage: toy_gen, n: 8}",
                                      "load:      {stage: toy_gen, inputs: {path: numbers}}")
    recipe.write_text(text + f"\nsources:\n  numbers: {data}\n")
    assert rag("run", str(recipe), runs=runs) == 0
    data.touch()  # same bytes, new mtime: re-hashed once, still fresh
    capsys.readouterr()
    assert rag("plan", str(recipe), "--json", runs=runs) == 0
    steps = json.loads(capsys.readouterr().out)["members"][0]["steps"]
    assert {s["state"] for s in steps} == {"FRESH"}
    data.write_text("1\n2\n4\n")
    assert rag("plan", str(recipe), "--json", runs=runs) == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}
    assert steps["load"]["state"] == "STALE" and steps["load"]["cause"] == "source 'numbers' changed"
    data.unlink()   # a source gone since the run: the row says so, as the plan's problem line does
    rag("plan", str(recipe), "--json", runs=runs)
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["members"][0]["steps"]}
    assert steps["load"]["cause"] == "source 'numbers' missing"


def test_status_show_dag_stages_gc(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), runs=runs) == 0
    capsys.readouterr()
    assert rag("status", "--json", runs=runs) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["run"] == str((runs / "latest").resolve())
    assert rag("show", "retrieve", "--json", runs=runs) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rows"] == 8 and shown["shards"] == 4 and shown["columns"]["x"] == "double"
    assert shown["first_rows"][0] == {"id": "0", "x": 0.0}
    # the manifest is the first shard's (its rows, 2, are that shard's): the JSON says so too
    assert shown["manifest"]["num_rows"] == 2 and shown["manifest"]["shard"] == "retrieve[0/4]"
    assert rag("show", "retrieve", runs=runs) == 0
    assert "manifest (of the first shard, retrieve[0/4]):" in capsys.readouterr().out  # as labelled
    assert rag("show", "evaluate", "--json", runs=runs) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["count"] == 8
    assert rag("dag", str(toy / "conf/chain.yaml"), "--format", "mermaid", runs=runs) == 0
    assert "load -->|numbers| retrieve" in capsys.readouterr().out
    assert rag("stages", "toy_map", "--import", "tests.toy.stages") == 0
    err = capsys.readouterr().out
    assert "shardable by numbers" in err and "sleep: float = 0.0  (not in cache key)" in err
    assert rag("gc", "--dry-run", runs=runs) == 0
    assert "would remove 0 entries" in capsys.readouterr().err
    assert rag("gc", "--keep-runs", "0", runs=runs) == 0
    assert "removed 14 entries" in capsys.readouterr().err  # 11 steps, 4 shards for one
    assert not list((runs / "cache" / "objects").glob("*/*"))


def test_multi_output_and_directory_artifacts(toy, capsys):
    runs = toy / "runs"
    recipe = toy / "conf/blob.yaml"
    recipe.write_text("""
ragline: {imports: [tests.toy.stages]}
steps:
  gen: {stage: toy_gen, n: 6}
  split: {stage: toy_split, inputs: {numbers: gen}, threshold: 2}
  blob: {stage: toy_blob, inputs: {numbers: split.high}, shards: 2}
  back: {stage: toy_read_blob, inputs: {blob: blob}}
  total: {stage: toy_sum, inputs: {numbers: back}}
""")
    assert rag("run", str(recipe), runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["metrics"]["total"]["sum"] == 2 + 3 + 4 + 5


def test_repeat_block_unrolls_rounds_each_cached(toy, monkeypatch):
    runs = toy / "runs"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    recipe = toy / "conf" / "rounds.yaml"
    text = """
ragline: {imports: [tests.toy.stages]}
rounds: 3
repeat:
  rounds:
    times: ${rounds}
    first: {model: base}
    steps:
      augment: {stage: toy_map, inputs: {numbers: model@prev}, add: 1}
      model: {stage: toy_map, inputs: {numbers: augment}, mul: 2}
steps:
  base: {stage: toy_gen, n: 2}
  final: {stage: toy_sum, inputs: {numbers: model@last}}
"""
    recipe.write_text(text)
    assert rag("run", str(recipe), runs=runs) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert [s for s in status["steps"] if s.startswith(("augment", "model"))] == [
        "augment_1", "model_1", "augment_2", "model_2", "augment_3", "model_3"]
    # x -> (x + 1) * 2, three times, for x = 0 and 1: 14 + 22
    assert status["metrics"]["final"]["sum"] == 36.0
    (toy / "count.txt").unlink()
    assert rag("run", str(recipe), "rounds=4", runs=runs) == 0
    assert set(counts(toy / "count.txt")) == {"augment_4:0", "model_4:0"}  # rounds 1-3 cached


def test_progress_lines_keep_one_column_for_long_step_names(toy, capsys):
    """Before: names were padded to 16 characters, so ``augment_eval_base running stage …``
    (Reinforced-IR's demo) and ``retrieve (4/4 shards) running stage …`` broke the column the
    other lines kept. The column is now as wide as the longest step name; shards go after the
    stage."""
    long = "a_step_name_of_23_chars"
    recipe = toy / "conf" / "long.yaml"
    recipe.write_text("defaults: [chain, _self_]\n"
                      f"steps: {{{long}: {{stage: toy_map, inputs: {{numbers: dpo}}}}}}\n")
    capsys.readouterr()
    assert rag("run", str(recipe), "--no-progress", runs=toy / "runs") == 0
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line[:2] in ("> ", "✓ ")]
    column = {line.index(" running stage ") for line in lines if " running stage " in line}
    column |= {line.index(" done in ") for line in lines if " done in " in line}
    assert column == {2 + len(long)}, lines
    assert "> retrieve" + " " * (len(long) - 7) + "running stage toy_map (4/4 shards)" in lines
    assert rag("run", str(recipe), "--no-progress", runs=toy / "runs") == 0
    cached = [line for line in capsys.readouterr().err.splitlines() if line.endswith(" cached")]
    assert len(cached) == 12 and {line.index(" cached") for line in cached} == {2 + len(long)}
