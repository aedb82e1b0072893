"""The model stages called directly on tiny models: prepare_model, index, retrieve, rerank,
sample, infer. Inputs are real handles written with the orchestrator's writer and every output
is written back through it (schema checked)."""

import json
import logging

import numpy as np
import pytest

from orchestrator.api import ConfigError, StageContext
from orchestrator.artifacts import Ref, write_artifact
from stages.index import IndexConfig, index
from stages.infer import InferConfig, infer
from stages.rerank import RerankConfig, rerank
from stages.retrieve import RetrieveConfig, retrieve
from stages.sample import SampleConfig, sample
from stages.schemas import (Embeddings, Model, Passages, Predictions, Questions, Reranked,
                            Retrieved, Trajectories)
from stages.lib.tiny import tiny_causal_lm, tiny_encoder, tiny_seq2seq

PASSAGES = [{"id": f"p{i}", "title": f"Entity {i}", "text": f"Entity {i} was born in city {i % 7}."}
            for i in range(40)]
QUESTIONS = [{"id": f"q{i}", "dataset": "nq", "question": f"Where was Entity {i} born?",
              "answers": [f"city {i % 7}"], "gold": [f"p{i}"]} for i in range(0, 40, 5)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("m")
    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in QUESTIONS]
    return {"enc": tiny_encoder(root / "enc", texts=texts), "t5": tiny_seq2seq(root / "t5", texts),
            "lm": tiny_causal_lm(root / "lm", texts=texts)}


@pytest.fixture
def env(tmp_path):
    counter = iter(range(1000))

    def art(cls, value):
        if cls is Model:   # a source directory: a handle on it, not moved into a cache
            return Model(Ref("dir", Model.type_name(), "hash", [str(value)]))
        ref = write_artifact(value, cls, tmp_path / f"a{next(counter)}", "test.x", "key")
        return cls(ref)

    def ctx(step, shard=0, num=1):
        return StageContext(step, shard, num, tmp_path / f"work{next(counter)}",
                            tmp_path / "scratch", logging.getLogger(f"test.{step}"))

    return art, ctx


def _index(art, ctx, models, cfg, shards=1):
    """Index the corpus in ``shards`` tasks and gather them like the runner does."""
    import os

    corpus = art(Passages, PASSAGES)
    enc = art(Model, str(models["enc"]))
    if shards == 1:
        return art(Embeddings, index(corpus, enc, cfg, ctx("index")))
    gathered = ctx("gather").workdir / "gathered"
    gathered.mkdir(parents=True)
    bounds = np.linspace(0, len(PASSAGES), shards + 1).astype(int)
    for s in range(shards):
        part = Passages(corpus.ref, int(bounds[s]), int(bounds[s + 1]))
        shard = art(Embeddings, index(part, enc, cfg, ctx("index", s, shards)))
        os.symlink(shard.path, gathered / f"shard-{s:05d}")
    return Embeddings(write_artifact(str(gathered), Embeddings, gathered.parent / "g", "t.x", "k"))


def test_index_and_retrieve_exact_and_sharded(env, models):
    art, ctx = env
    cfg = IndexConfig(normalize=True, dtype="float32", batch_size=8, chunk_rows=16)
    one = _index(art, ctx, models, cfg)
    meta = json.loads((one.path / "meta.json").read_text())
    assert meta["pooling"] == "mean" and meta["normalize"] is True and meta["num_rows"] == 40
    three = _index(art, ctx, models, cfg, shards=3)
    args = (art(Questions, QUESTIONS), None, art(Model, str(models["enc"])),
            art(Passages, PASSAGES))
    out = {}
    for name, idx in (("one", one), ("three", three)):
        for search in ("exact", "faiss"):
            rows = retrieve(args[0], idx, *args[2:], RetrieveConfig(k=5, search=search),
                            ctx("retrieve"))
            out[name, search] = art(Retrieved, rows).rows()
    first = out["one", "exact"]
    assert len(first) == len(QUESTIONS) and all(len(r["ctxs"]) == 5 for r in first)
    for got in out.values():
        assert [[c["id"] for c in r["ctxs"]] for r in got] == \
            [[c["id"] for c in r["ctxs"]] for r in first]
    c = first[0]["ctxs"][0]
    assert c["text"] == PASSAGES[int(c["id"][1:])]["text"]
    assert first[0]["ctxs"][0]["score"] >= first[0]["ctxs"][-1]["score"]
    with pytest.raises(ConfigError, match="pooling='cls' does not match"):
        retrieve(args[0], one, *args[2:], RetrieveConfig(pooling="cls"), ctx("retrieve"))


def _retrieved(k=6):
    rows = []
    for q in QUESTIONS:
        i = int(q["id"][1:])
        ctxs = [{**PASSAGES[(i + j) % 40], "score": 1.0 - j / 10} for j in range(k)]
        rows.append({**q, "ctxs": ctxs})
    return rows


def test_rerank_methods(env, models):
    art, ctx = env
    retrieved = art(Retrieved, _retrieved())
    ha = art(Reranked, rerank(retrieved, RerankConfig(method="has_answer", num_docs=4),
                              ctx("rerank"))).rows()
    assert all(len(r["ctxs"]) == 4 for r in ha)
    assert all(r["ctxs"][0]["relevant"] for r in ha)            # own passage has the answer
    t5 = art(Reranked, rerank(retrieved, RerankConfig(num_docs=None, reorder=True),
                              ctx("rerank"), model=art(Model, str(models["t5"])))).rows()
    scores = [c["rerank_score"] for c in t5[0]["ctxs"]]
    assert len(scores) == 6 and scores == sorted(scores, reverse=True)
    assert all(c["relevant"] == (c["rerank_score"] > 0.5) for r in t5 for c in r["ctxs"])
    with pytest.raises(ConfigError, match="needs the 'model' input"):
        rerank(retrieved, RerankConfig(), ctx("rerank"))


def test_sample_trajectories(env, models):
    art, ctx = env
    reranked = art(Reranked, rerank(art(Retrieved, _retrieved()),
                                    RerankConfig(method="has_answer"), ctx("rerank")))
    cfg = SampleConfig(n=3, max_new_tokens=8, answer_max_new_tokens=6, num_docs=4,
                       temperature=1.0, batch_size=6)
    rows = art(Trajectories, sample(reranked, art(Model, str(models["lm"])), cfg,
                                    ctx("sample"))).rows()
    assert len(rows) == len(QUESTIONS)
    for r in rows:
        assert len(r["ctxs"]) == 4 and len(r["trajectories"]) == 3
        for t in r["trajectories"]:
            assert all(1 <= i <= 4 for i in t["ids"]) and isinstance(t["response"], str)
    again = sample(reranked, art(Model, str(models["lm"])), cfg, ctx("sample"))
    assert [r["trajectories"] for r in again] == [r["trajectories"] for r in rows]


@pytest.mark.parametrize("mode,k", [("dynamic", 10), ("topk", 3), ("topk", 0), ("windowed", 10)])
def test_infer_modes(env, models, mode, k):
    art, ctx = env
    cfg = InferConfig(mode=mode, k=k, num_docs=2, top_n=5, max_new_tokens=5,
                      rerank_max_new_tokens=6, batch_size=4)
    rows = art(Predictions, infer(art(Retrieved, _retrieved()), art(Model, str(models["lm"])),
                                  cfg, ctx("infer"))).rows()
    assert len(rows) == len(QUESTIONS)
    for r in rows:
        assert isinstance(r["prediction"], str)
        assert all(1 <= i <= len(r["ctxs"]) for i in r["selected"])
        if mode == "topk":
            assert r["selected"] == list(range(1, k + 1)) and len(r["ctxs"]) == k
        if mode == "windowed":
            assert len(r["ctxs"]) == 5 and len(r["selected"]) <= 2
