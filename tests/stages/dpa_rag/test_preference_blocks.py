"""``dpa_rag.preference`` reads, asks and scores its queries a block at a time, with the reader
loaded (or its endpoint client opened) once: every query's rows, 101 conversations and answers
held at once grew with the shard (``bench/bench_preference.py``). The rows are those of one
block."""

from __future__ import annotations

import pytest

import stages.dpa_rag.preference as stage
import stages.lib.endpoint as endpoint
import stages.lib.models.generation as generation
from orchestrator.errors import StageOutputError
from stages.dpa_rag.preference import PreferenceConfig, preference
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Retrieved
from tests.stages.conftest import fake_endpoint, prompt_file
from tests.stages.dpa_rag.test_preference import QUESTIONS, Reader

# a query without a gold answer between the two: left out, and its block asks nothing
ROWS = [QUESTIONS[0], {**QUESTIONS[0], "id": "q9", "answers": []}, QUESTIONS[1]]


def test_blocks_of_one_query_give_the_rows_of_one_block(model_env, monkeypatch):
    art, ctx = model_env
    loads, reader = [], Reader()
    monkeypatch.setattr(generation, "load_generator",
                        lambda *a, **kw: loads.append(a) or reader)

    def run():
        return preference(art(Retrieved, ROWS), prompt_file("rag", "common"),
                          PreferenceConfig(n_docs=3), ctx("preference"),
                          model=art(Model, "unused")).to_pylist()

    whole = run()
    assert len(loads) == 1 and len(reader.calls) == 1
    monkeypatch.setattr(stage, "BLOCK", 1)
    assert run() == whole and len(whole) == 5
    assert len(loads) == 2 and len(reader.calls) == 1 + 2   # loaded once; q0's and q1's blocks


def test_a_reader_endpoint_is_opened_once_for_all_blocks(model_env, monkeypatch):
    art, ctx = model_env
    reader = Reader()
    calls = fake_endpoint(monkeypatch, lambda conv, params: reader.chat([conv])[0][0])
    opened = []
    fake = endpoint.open_client
    monkeypatch.setattr(endpoint, "open_client",
                        lambda *a, **kw: opened.append(kw) or fake(*a, **kw))
    monkeypatch.setattr(stage, "BLOCK", 1)
    cfg = PreferenceConfig(n_docs=3, reader=EndpointConfig(model="gpt-3.5-turbo"))
    rows = preference(art(Retrieved, ROWS), prompt_file("rag", "common"), cfg,
                      ctx("preference")).to_pylist()
    assert [r["doc"]["id"] for r in rows] == ["d1", "d2", "d3", "d4", "d5"]
    assert len(opened) == 1 and [n for n, _ in calls] == [1 + 2, 1 + 3]
    assert opened[0]["where"] == "steps.preference.reader"    # the client's cache settings
    assert {"answers", "refresh"} <= set(opened[0])


def test_a_row_that_does_not_fit_is_named_as_the_writer_names_it(model_env, monkeypatch):
    art, ctx = model_env
    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: Reader())
    row = {**QUESTIONS[0], "source_id": 7}     # Knowledge's source_id is a string
    with pytest.raises(StageOutputError, match="step 'preference' output.*source_id"):
        preference(art(Retrieved, [row]), prompt_file("rag", "common"), PreferenceConfig(),
                   ctx("preference"), model=art(Model, "unused"))
