"""A question shipped with ``ctxs: []`` shipped its passages, none of them: ``load`` keeps the
empty list (a question with no ``ctxs`` at all gets null), and ``retrieve`` keeps it under
``shipped_ctxs: keep`` with a warning that counts such questions and names the setting, instead
of quietly filling them from the index while their neighbours keep the shipped passages."""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.api import DataError, File
from orchestrator.artifacts import Ref
from stages.common.index import IndexConfig
from stages.common.load import LoadConfig, load_data
from stages.lib.data.question_table import questions_table as _questions_table
from stages.common.retrieve import RetrieveConfig, retrieve
from stages.schemas import Model, Passages, Questions, Retrieved
from tests.stages.conftest import PASSAGES, QUESTIONS, index_corpus

SHIPPED = [{"id": "p1", "title": "T", "text": "a shipped passage", "score": 0.5}]


def _file(path):
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


def test_load_keeps_an_empty_list_apart_from_no_ctxs(env, tmp_path):
    """Without a corpus, ``ctxs: []`` is a shipped (empty) list, not a missing one."""
    _, written, ctx = env
    evals = tmp_path / "eval.jsonl"
    records = [{"id": "full", "question": "q", "answers": ["a"], "ctxs": SHIPPED},
               {"id": "empty", "question": "q", "answers": ["a"], "ctxs": []}]
    evals.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = load_data(LoadConfig(), ctx("load"), eval=_file(evals))
    rows = {r["id"]: r["ctxs"] for r in written(Questions, out.eval)}
    assert rows["empty"] == [] and [c["id"] for c in rows["full"]] == ["p1"]
    bare = {"id": "bare", "question": "q", "answers": ["a"]}
    evals.write_text("".join(json.dumps(r) + "\n" for r in [*records, bare]))
    with pytest.raises(DataError, match=r"1 of 3 eval questions ship no passages \(first: "
                                        r"'bare'\)"):
        load_data(LoadConfig(), ctx("load"), eval=_file(evals))
    table = _questions_table([{**QUESTIONS[0], "ctxs": []}, QUESTIONS[1]])
    assert table.column("ctxs").to_pylist() == [[], None]


def test_retrieve_keeps_an_empty_shipped_list_and_says_so(model_env, caplog):
    art, ctx = model_env
    rows = [{**QUESTIONS[0], "ctxs": SHIPPED}, {**QUESTIONS[1], "ctxs": []},
            {**QUESTIONS[2], "ctxs": []}]
    with caplog.at_level(logging.WARNING):
        got = art(Retrieved, retrieve(art(Questions, _questions_table(rows)), RetrieveConfig(),
                                      ctx("r"))).rows()
    assert [r["ctxs"] for r in got] == [SHIPPED, [], []]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == (f"step 'r': 2 of 3 questions ship an empty passage list (ctxs: [], first: "
                       f"{QUESTIONS[1]['id']!r}) and keep it: they are answered without "
                       "passages; set steps.r.shipped_ctxs: replace to retrieve for every "
                       "question")
    partly = art(Questions, _questions_table([rows[0], QUESTIONS[1]]))   # no ctxs: searched
    with pytest.raises(DataError, match="1 of 2 questions arrive without passages"):
        retrieve(partly, RetrieveConfig(), ctx("r"))


@pytest.mark.usefixtures("one_torch_thread")
def test_an_index_does_not_fill_an_empty_shipped_list_unless_replace(model_env, models):
    art, ctx = model_env
    idx = index_corpus(art, ctx, models, IndexConfig(normalize=True, dtype="float32",
                                                     batch_size=8))
    wired = {"index": idx, "encoder": art(Model, str(models["enc"])),
             "corpus": art(Passages, PASSAGES)}
    rows = [{**QUESTIONS[0], "ctxs": SHIPPED}, {**QUESTIONS[1], "ctxs": []}, QUESTIONS[2]]
    questions = art(Questions, _questions_table(rows))
    got = art(Retrieved, retrieve(questions, RetrieveConfig(k=3), ctx("r"), **wired)).rows()
    assert [len(r["ctxs"]) for r in got] == [1, 0, 3]      # only the one without ctxs searched
    again = art(Retrieved, retrieve(questions, RetrieveConfig(k=3, shipped_ctxs="replace"),
                                    ctx("r"), **wired)).rows()
    assert [len(r["ctxs"]) for r in again] == [3, 3, 3]
    searched_first = art(Questions, _questions_table([rows[2], rows[0], rows[1]]))
    got = art(Retrieved, retrieve(searched_first, RetrieveConfig(k=3), ctx("r"), **wired)).rows()
    assert [(r["id"], len(r["ctxs"])) for r in got] == [   # back in the input's order
        (QUESTIONS[2]["id"], 3), (QUESTIONS[0]["id"], 1), (QUESTIONS[1]["id"], 0)]
