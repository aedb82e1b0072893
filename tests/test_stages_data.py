"""The data stages called directly: load_data, aggregate, export_llamafactory.

Inputs are real handles (files, tables written by the orchestrator's writer) and every output is
written back through it, so a row that does not fit the declared schema fails here.
"""

from __future__ import annotations

import json

import pytest

from orchestrator.api import ConfigError, DataError, Directory, File
from orchestrator.artifacts import Ref
from stages.aggregate import AggregateConfig, aggregate, fuse, merge_retrieved
from stages.export import ExportConfig, export_llamafactory
from stages.lib.synth import make_synthkb, write_synthkb
from stages.load import LoadConfig, load_data
from stages.schemas import Chat, Passages, Preferences, Questions, Retrieved




def file(path):
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


# --------------------------------------------------------------------------- load_data


def test_load_synthetic_by_default(env):
    _, written, ctx = env
    cfg = LoadConfig(seed=1, num_entities=8, passages_per_entity=2, num_train=10, num_eval=4)
    out = load_data(cfg, ctx("load"))
    corpus, train, evals = (written(Passages, out.corpus), written(Questions, out.train),
                            written(Questions, out.eval))
    kb = make_synthkb(1, 8, 2, 10, 4)
    assert corpus == kb.passages and train == kb.train and evals == kb.eval


def test_load_files_with_qrels_and_limits(env, tmp_path):
    _, written, ctx = env
    paths = write_synthkb(tmp_path / "kb", make_synthkb(0, 8, 2, 10, 4), corpus_format="flashrag")
    qrels = tmp_path / "qrels.tsv"
    first_train = json.loads(paths["train"].read_text().splitlines()[0])
    qrels.write_text(f"query-id\tcorpus-id\tscore\n{first_train['id']}\tkb00003\t1\n")
    cfg = LoadConfig(max_passages=10, max_train=3)
    out = load_data(cfg, ctx("load"), corpus=file(paths["corpus"]), train=file(paths["train"]),
                    eval=file(paths["eval"]), qrels=file(qrels))
    corpus, train = written(Passages, out.corpus), written(Questions, out.train)
    assert len(corpus) == 10 and len(train) == 3 and len(written(Questions, out.eval)) == 4
    assert "kb00003" in train[0]["gold"] and train[0]["gold"][0] == first_train["gold"][0]


def test_load_keeps_retrieved_ctxs_and_empty_split(env, tmp_path):
    _, written, ctx = env
    corpus = tmp_path / "psgs_w100.tsv"
    corpus.write_text("id\ttext\ttitle\n1\tParis is the capital.\tParis\n")
    evals = tmp_path / "nq_eval.jsonl"
    evals.write_text(json.dumps({"id": "nq_1", "question": "capital?", "answers": ["Paris"],
                                 "ctxs": [{"id": "1", "title": "Paris", "text": "t", "score": 3}]}) + "\n")
    out = load_data(LoadConfig(), ctx("load"), corpus=file(corpus), eval=file(evals))
    rows = written(Questions, out.eval)
    assert rows[0]["dataset"] == "nq" and rows[0]["ctxs"][0]["score"] == 3.0
    assert written(Questions, out.train) == []


def test_load_refuses_to_mix_files_with_generated_data(env, tmp_path):
    _, _, ctx = env
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "x"}\n')
    with pytest.raises(ConfigError, match="questions must come with their corpus"):
        load_data(LoadConfig(), ctx("load"), corpus=file(corpus))
    with pytest.raises(ConfigError, match="train wired without a corpus"):
        load_data(LoadConfig(), ctx("load"), train=file(corpus))
    with pytest.raises(ConfigError, match="raise num_entities"):
        load_data(LoadConfig(num_entities=2, num_train=10), ctx("load"))
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "q"}\n')
    with pytest.raises(DataError, match="train.jsonl line 1: missing answers"):
        load_data(LoadConfig(), ctx("load"), corpus=file(corpus), train=file(bad))


# --------------------------------------------------------------------------- aggregate


def retrieved(qid, ids, question="q?"):
    return {"id": qid, "dataset": "nq", "question": question, "answers": ["a"], "gold": [],
            "ctxs": [{"id": i, "title": f"T{i}", "text": f"text {i}", "score": float(10 - n)}
                     for n, i in enumerate(ids)]}


def test_fuse_methods_and_k():
    a = [{"id": "x"}, {"id": "y"}, {"id": "x"}]
    b = [{"id": "y"}, {"id": "z"}]
    assert [d["id"] for d in fuse([a, b], "concat")] == ["x", "y", "z"]
    assert [d["id"] for d in fuse([a, b], "interleave")] == ["x", "y", "z"]
    rrf = fuse([a, b], "rrf")
    assert [d["id"] for d in rrf] == ["y", "x", "z"]  # y: 1/62 + 1/61 beats x: 1/61
    assert rrf[0]["score"] == pytest.approx(1 / 62 + 1 / 61)
    assert [d["id"] for d in fuse([a, b], "concat", k=2)] == ["x", "y"]
    no_ids = [{"id": None, "title": "t", "text": "same"}, {"id": None, "title": "t", "text": "same"}]
    assert len(fuse([no_ids])) == 1
    with pytest.raises(ValueError):
        fuse([a], "max")


def test_merge_retrieved_merges_duplicate_question_rows():
    rows = [retrieved("q1", ["a", "b"]), retrieved("q2", ["c"]), retrieved("q1", ["b", "d"])]
    out = merge_retrieved([rows], "concat")
    assert [(r["id"], [d["id"] for d in r["ctxs"]]) for r in out] == [("q1", ["a", "b", "d"]),
                                                                       ("q2", ["c"])]


def test_aggregate_stage_two_retrievers(env):
    table, written, ctx = env
    primary = table(Retrieved, [retrieved("q1", ["a", "b", "c"]), retrieved("q2", ["e"])])
    secondary = table(Retrieved, [retrieved("q1", ["c", "d"]), retrieved("q3", ["f"])])
    out = written(Retrieved, aggregate(primary, AggregateConfig(method="interleave", k=3),
                                       ctx("aggregate"), secondary))
    assert [(r["id"], [d["id"] for d in r["ctxs"]]) for r in out] == [
        ("q1", ["a", "c", "b"]), ("q2", ["e"]), ("q3", ["f"])]
    single = written(Retrieved, aggregate(table(Retrieved, [retrieved("q1", ["a", "a", "b"])]),
                                          AggregateConfig(), ctx("aggregate")))
    assert [d["id"] for d in single[0]["ctxs"]] == ["a", "b"]
    rrf = written(Retrieved, aggregate(primary, AggregateConfig(method="rrf"), ctx("aggregate"),
                                       secondary))
    assert rrf[0]["ctxs"][0]["id"] == "c"  # ranked 3rd and 1st: the best fused rank


# --------------------------------------------------------------------------- export_llamafactory


def chat(qid, task):
    return {"id": qid, "task": task, "messages": [
        {"role": "system", "content": "sys"}, {"role": "user", "content": f"Query: {qid}"},
        {"role": "assistant", "content": "answer"}]}


def pref(qid, task):
    return {"id": qid, "task": task, "prompt": [{"role": "user", "content": f"Query: {qid}"}],
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}]}


def test_export_llamafactory(env):
    table, written, ctx = env
    sft = table(Chat, [chat("a", "reranker"), chat("b", "generator")])
    prefs = table(Preferences, [pref("c", "generator")])
    path = export_llamafactory(sft, ExportConfig(), ctx("export"), prefs)
    info = json.loads((path / "dataset_info.json").read_text())
    assert set(info) == {"ragline_sft", "ragline_dpo"} and info["ragline_dpo"]["ranking"] is True
    rows = [json.loads(x) for x in (path / "ragline_sft.jsonl").read_text().splitlines()]
    assert rows[0] == {"instruction": "Query: a", "input": "", "output": "answer", "system": "sys"}
    assert "ragline_sft" in (path / "README.md").read_text()
    ref = written(Directory, path)  # the runner's writer accepts (and moves) the directory
    assert ref.kind == "dir"

    split = export_llamafactory(sft, ExportConfig(formatting="sharegpt", name="dyn", split_by_task=True),
                                ctx("export"))
    info = json.loads((split / "dataset_info.json").read_text())
    assert set(info) == {"dyn_reranker_sft", "dyn_generator_sft"}
    assert info["dyn_reranker_sft"]["formatting"] == "sharegpt"
    empty = export_llamafactory(table(Chat, []), ExportConfig(), ctx("export"))
    assert json.loads((empty / "dataset_info.json").read_text()) == {}
