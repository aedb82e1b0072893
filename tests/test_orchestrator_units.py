"""Unit tests: schemas and compatibility, writing/reading artifacts, keys, store, composition."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pytest

from orchestrator.artifacts import Ref, schema_problems, write_artifact
from orchestrator.errors import DataError
from orchestrator.hashing import SourceMemo, hash_file, key_of
from orchestrator.keys import explain, material, task_key
from orchestrator.recipe import compose, expand_sweep
from orchestrator.store import Store
from tests.faults.toy_config_stages import JudgeConfig, TrainConfig
from tests.toy.stages import Numbers


def test_schema_compatibility_is_structural():
    doc = pa.struct([("id", pa.string())])
    rich_doc = pa.struct([("id", pa.string()), ("score", pa.float32())])
    consumer = pa.schema([("ctxs", pa.list_(doc))])
    producer = pa.schema([("q", pa.string()), ("ctxs", pa.list_(rich_doc))])
    assert schema_problems(consumer, producer) == []
    assert schema_problems(producer, consumer) == [
        "column 'q' is missing (expected string)", "column 'ctxs'.score is missing (expected float)"]
    assert schema_problems(pa.schema([("x", pa.int32())]), pa.schema([("x", pa.int64())])) == [
        "column 'x' is int64, expected int32"]


def test_write_and_read_table_with_extra_columns_and_shard_ranges(tmp_path):
    rows = [{"id": str(i), "x": float(i), "extra": i * 2} for i in range(10)]
    ref = write_artifact(rows, Numbers, tmp_path / "t", "step.out", "k")
    manifest = json.loads((tmp_path / "t" / "_manifest.json").read_text())
    assert manifest["format"] == "ragline-artifact/1" and manifest["num_rows"] == 10
    assert (tmp_path / "t" / "_preview.jsonl").read_text().count("\n") == 5
    table = Numbers(ref, 3, 6).read()
    assert table.column("x").to_pylist() == [3.0, 4.0, 5.0]
    assert table.column("extra").to_pylist() == [6, 8, 10]  # extra columns pass through
    again = write_artifact(rows, Numbers, tmp_path / "u", "step.out", "k")
    assert again.content_hash == ref.content_hash  # same rows, same bytes, same hash


def test_write_rejects_rows_of_the_wrong_type(tmp_path):
    with pytest.raises(DataError, match="step 'bad' output 'out': rows do not fit Numbers"):
        write_artifact([{"id": "1", "x": "not a number"}], Numbers, tmp_path / "t", "bad.out", "k")
    with pytest.raises(DataError, match="column 'x' is missing"):
        write_artifact(pa.table({"id": ["1"]}), Numbers, tmp_path / "t2", "bad.out", "k")


def test_keys_and_explanations():
    a = material("dpo", 1, {"beta": 0.1}, {"pairs": "h1"}, None)
    b = material("dpo", 2, {"beta": 0.1}, {"pairs": "h2"}, None)
    assert task_key(a) == task_key(dict(a)) and task_key(a) != task_key(b)
    assert explain(a, b, {"pairs": "upstream 'pairs.out'"}) == (
        "code version 1 -> 2; upstream 'pairs.out' changed")
    assert key_of({"b": 1, "a": 2}) == key_of({"a": 2, "b": 1})


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


def test_store_commit_is_atomic_and_single_flight(tmp_path):
    store = Store(tmp_path)
    order = []

    def worker(name):
        with store.lock("k1"):
            if store.has("k1"):
                order.append(f"{name}:hit")
                return
            time.sleep(0.2)
            tmp = store.new_tmp("k1")
            (tmp / "outputs").mkdir()
            store.commit(tmp, "k1", {"outputs": {}})
            order.append(f"{name}:computed")

    threads = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(x.split(":")[1] for x in order) == ["computed", "hit"]
    assert store.lookup("k1").meta == {"outputs": {}}
    leftover = store.new_tmp("k2")  # a writer that died: gc finds it, lookup ignores it
    assert store.lookup("k2") is None and leftover.exists()


def test_expand_sweep_is_the_cartesian_product():
    assert expand_sweep(["a=1,2", "b=x,y"], True) == [
        ["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]
    assert expand_sweep(["a=range(0,3)"], True) == [["a=0"], ["a=1"], ["a=2"]]


def test_compose_with_groups_and_interpolation(toy):
    recipe = toy / "conf/chain.yaml"
    cfg = compose(recipe, ["scale=3", "executor=isolated"])[0].config
    assert cfg["steps"]["rerank"]["mul"] == 3  # interpolation resolved after the override
    assert cfg["ragline"]["isolate"] == "always"  # config group chosen by override


def test_remembered_composition_follows_its_files(toy, tmp_path, monkeypatch):
    """One rule: an entry is used while every file it was built from is unchanged."""
    import orchestrator.remember as remember

    recipe, state = toy / "conf/chain.yaml", tmp_path / "state"
    members, dags = remember.load(recipe, ["scale=3"], False, state)
    calls = []
    monkeypatch.setattr(remember, "compose", lambda *a: calls.append(a) or compose(*a))
    again, dags2 = remember.load(recipe, ["scale=3"], False, state)
    assert calls == [] and again[0].config == members[0].config
    assert dags2[0].steps["rerank"].config == dags[0].steps["rerank"].config
    recipe.write_text(recipe.read_text().replace("scale: 1.0", "scale: 1.0\nother: 2"))
    assert "other" in remember.load(recipe, ["scale=3"], False, state)[0][0].config
    assert len(calls) == 1
    (toy / "conf" / "executor" / "local.yaml").touch()  # any file of the config directory
    os_stat_before = len(calls)
    remember.load(recipe, ["scale=3"], False, state)
    assert len(calls) == os_stat_before + 1
    next(state.glob("*.json")).write_text("{trunc")  # a damaged entry is a miss, not a crash
    assert remember.load(recipe, ["scale=3"], False, state)[0][0].config["other"] == 2


def test_isolated_executor_runs_every_step_in_a_worker(toy):
    from tests.conftest import rag

    assert rag("run", str(toy / "conf/chain.yaml"), "executor=isolated", "steps.load.n=4",
               runs=toy / "runs") == 0
    status = json.loads((toy / "runs" / "latest" / "status.json").read_text())
    assert status["metrics"]["evaluate"]["count"] == 4


def test_ref_roundtrip():
    ref = Ref("table", "m:T", "h", ["/a"], [3], "s.out")
    assert Ref(**ref.to_json()) == ref


def test_slurm_executor_runs_shards_as_jobs(toy):
    """The SLURM executor through submitit's local cluster: same tasks, same cache."""
    pytest.importorskip("submitit")
    from tests.conftest import rag

    assert rag("run", str(toy / "conf/chain.yaml"), "executor=slurm",
               "ragline.slurm.cluster=local", "steps.load.n=4", runs=toy / "runs") == 0
    status = json.loads((toy / "runs" / "latest" / "status.json").read_text())
    assert status["steps"]["retrieve"]["shards"] == 4 and status["state"] == "ok"
    assert status["metrics"]["evaluate"]["count"] == 4
    log = (toy / "runs" / "latest" / "logs" / "retrieve.shard-00002.log").read_text()
    assert "retrieve[2/4]: done" in log


@dataclass
class U:
    docs: list[int] | str = "all"
    judge: JudgeConfig | None = None
    tags: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)


def test_step_config_validation_unions_nesting_and_memo():
    from orchestrator.errors import ConfigError
    from orchestrator.stage_config import build_config, check_step_config

    with pytest.raises(ConfigError) as e:
        check_step_config(U, {"docs": [1, "b"]}, "steps.s")
    assert str(e.value) == "steps.s.docs: expected list[int] | str, got [1, 'b']"
    config, obj = check_step_config(U, {"judge": {"model": "m"}, "tags": ["a"], "weights": {"x": 1}}, "steps.s")
    assert config == {"docs": "all", "judge": {"model": "m", "temperature": 0.0, "timeout": 30.0}, "tags": ["a"],
                      "weights": {"x": 1.0}}
    assert isinstance(obj.judge, JudgeConfig) and obj.tags == ("a",)
    again = check_step_config(U, {"weights": {"x": 1}, "tags": ["a"], "judge": {"model": "m"}}, "steps.t")
    assert again[1] is obj  # validated once per distinct value, whatever the key order or step
    built = build_config(TrainConfig, check_step_config(TrainConfig, {"judge": {"model": "j"}}, "steps.x")[0])
    assert isinstance(built.judge, JudgeConfig) and built.judge.model == "j"
