"""``index`` then ``retrieve`` on a tiny encoder: exact and faiss search, one and three shards."""

import json

import pytest

from orchestrator.api import ConfigError, DataError
from stages.common.index import IndexConfig
from stages.common.retrieve import RetrieveConfig, retrieve
from stages.schemas import Model, Passages, Questions, Retrieved
from tests.stages.conftest import PASSAGES, QUESTIONS, index_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_index_and_retrieve_exact_and_sharded(model_env, models):
    art, ctx = model_env
    cfg = IndexConfig(normalize=True, dtype="float32", batch_size=8, chunk_rows=16)
    one = index_corpus(art, ctx, models, cfg)
    meta = json.loads((one.path / "meta.json").read_text())
    assert meta["pooling"] == "mean" and meta["normalize"] is True and meta["num_rows"] == 40
    three = index_corpus(art, ctx, models, cfg, shards=3)
    questions = art(Questions, QUESTIONS)
    wired = {"encoder": art(Model, str(models["enc"])), "corpus": art(Passages, PASSAGES)}
    out = {}
    for name, idx in (("one", one), ("three", three)):
        for search in ("exact", "faiss"):
            rows = retrieve(questions, RetrieveConfig(k=5, search=search), ctx("retrieve"),
                            index=idx, **wired)
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
        retrieve(questions, RetrieveConfig(pooling="cls"), ctx("retrieve"), index=one, **wired)


def test_shipped_passages_are_kept_and_retrieved_question_is_the_query(model_env, models):
    from stages.lib.data.question_table import questions_table as _questions_table

    art, ctx = model_env
    idx = index_corpus(art, ctx, models, IndexConfig(normalize=True, dtype="float32",
                                                     batch_size=8))
    shipped = [{"id": None, "title": "Mine", "text": "a shipped passage", "score": None}]
    rows = [{**QUESTIONS[0], "ctxs": shipped},
            {**QUESTIONS[1], "retrieved_question": QUESTIONS[2]["question"]}, QUESTIONS[2]]
    questions = art(Questions, _questions_table(rows))
    wired = {"index": idx, "encoder": art(Model, str(models["enc"])),
             "corpus": art(Passages, PASSAGES)}
    got = art(Retrieved, retrieve(questions, RetrieveConfig(k=3), ctx("r"), **wired)).rows()
    assert [r["id"] for r in got] == [q["id"] for q in QUESTIONS[:3]]
    assert got[0]["ctxs"] == shipped                       # kept as shipped
    # question 1 was searched with question 2's text: the same passages
    assert [c["id"] for c in got[1]["ctxs"]] == [c["id"] for c in got[2]["ctxs"]]
    again = art(Retrieved, retrieve(questions, RetrieveConfig(k=3, shipped_ctxs="replace"),
                                    ctx("r"), **wired)).rows()
    assert len(again[0]["ctxs"]) == 3 and again[0]["ctxs"] != shipped


def test_questions_that_all_ship_passages_need_no_index(model_env):
    """Nothing to search: no index, encoder or corpus wired. One question without passages
    is then a one-line error that says what to wire."""
    from stages.lib.data.question_table import questions_table as _questions_table

    art, ctx = model_env
    shipped = [{"id": "p1", "title": "T", "text": "a shipped passage", "score": 0.5}]
    rows = [{**q, "ctxs": shipped} for q in QUESTIONS[:3]]
    got = art(Retrieved, retrieve(art(Questions, _questions_table(rows)), RetrieveConfig(),
                                  ctx("r"))).rows()
    assert [r["ctxs"] for r in got] == [shipped] * 3
    assert art(Retrieved, retrieve(art(Questions, _questions_table([])), RetrieveConfig(),
                                   ctx("r"))).rows() == []   # an empty shard
    partly = art(Questions, _questions_table(rows[:2] + [QUESTIONS[2]]))
    with pytest.raises(DataError, match=r"step 'r': 1 of 3 questions arrive without passages "
                                        rf"\(first: '{QUESTIONS[2]['id']}'\), but it has no "
                                        r"index / encoder / corpus to search with; wire "
                                        r"inputs.index"):
        retrieve(partly, RetrieveConfig(), ctx("r"))
    with pytest.raises(DataError, match="shipped_ctxs: replace searches for every question"):
        retrieve(art(Questions, _questions_table(rows)), RetrieveConfig(shipped_ctxs="replace"),
                 ctx("r"))


def _index_dir(path, ids, emb):
    from stages.lib.models.search import save_embeddings

    save_embeddings(path, ids, emb, dtype="float32")
    (path / "meta.json").write_text(json.dumps({"pooling": "mean", "normalize": True}))
    return path


def test_search_and_attach_fetches_only_the_hits_by_row_or_by_id(model_env, tmp_path,
                                                                   monkeypatch):
    """No encoder: random embeddings. An index in corpus order is fetched by row; a permuted
    one (imported embeddings) by id; an id the corpus lacks is a one-line error."""
    import logging

    import numpy as np
    import pyarrow as pa

    from stages.common.retrieve import search_and_attach
    from stages.lib.models.search import ShardedIndex

    art, _ = model_env
    corpus = art(Passages, PASSAGES)
    questions = pa.table({"id": ["a", "b"], "question": ["?", "?"]})
    emb = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)      # each row's best match is itself
    ids = [p["id"] for p in PASSAGES]
    log = logging.getLogger("test")
    cfg = RetrieveConfig(k=3)
    read = []
    monkeypatch.setattr(Passages, "read", lambda self, columns=None: read.append(columns))
    aligned = ShardedIndex(_index_dir(tmp_path / "aligned", ids, emb))
    got = search_and_attach(questions, emb[[7, 30]], aligned, corpus, cfg, "cpu", log).to_pylist()
    assert [r["ctxs"][0]["id"] for r in got] == ["p7", "p30"] and read == []   # no column read
    assert got[0]["ctxs"][0]["text"] == PASSAGES[7]["text"]
    assert got[0]["ctxs"][0]["score"] >= got[0]["ctxs"][2]["score"]
    monkeypatch.undo()
    order = np.random.default_rng(1).permutation(40)
    permuted = ShardedIndex(_index_dir(tmp_path / "permuted", [ids[i] for i in order],
                                       emb[order]))
    again = search_and_attach(questions, emb[[7, 30]], permuted, corpus, cfg, "cpu", log)
    assert again.to_pylist() == got
    missing = ShardedIndex(_index_dir(tmp_path / "missing", ["nope"] + ids[1:], emb))
    with pytest.raises(DataError, match="1 passage ids of the index are not in the corpus "
                                        r"\(first: 'nope'\)"):
        search_and_attach(questions, emb[[0, 1]], missing, corpus, RetrieveConfig(k=1), "cpu", log)


def test_query_template_errors_name_the_field_or_the_question():
    """A template over a missing field is a config error; one indexing an empty list names the
    question (it raised a bare IndexError from str.format)."""
    from orchestrator.api import ConfigError, DataError
    from stages.common.retrieve import _query_text

    row = {"id": "q7", "question": "Who?", "answers": []}
    assert _query_text("{question} {answers}", {**row, "answers": ["Ann"]}, False) == "Who? ['Ann']"
    assert _query_text("{question} {answers[0]}", {**row, "answers": ["Ann"]}, True) == "who? ann"
    with pytest.raises(ConfigError, match=r"^steps.r.query_template: '\{qestion\}' uses "
                                          r"\{qestion\}, which the rows lack \(did you mean "
                                          r"'question'\?\); they have: answers, id, question\n"):
        _query_text("{qestion}", row, False, "steps.r.query_template")
    with pytest.raises(DataError, match=r"indexes a list that question 'q7' has too few items"):
        _query_text("{question} {answers[0]}", row, False)
