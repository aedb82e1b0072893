"""stages/dpa_rag/preference.py and categories.py: every (query, document) read by the reader
with no document and with that document alone, scored, and sorted into the four outcomes.

The reader here is a stand-in that answers from what it is shown (the real generator is tested
in tests/stages/lib/models/): it names a city when a shown passage states one, and otherwise
says what it "knows" without documents, right for some questions and wrong for others. The
same stand-in answers as a black-box reader behind an endpoint (``reader``)."""

from __future__ import annotations

import doctest
import re

import pytest

import stages.dpa_rag.categories as categories
import stages.lib.models.generation as generation
from orchestrator.api import ConfigError
from stages.dpa_rag.preference import PreferenceConfig, preference
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Retrieved
from tests.stages.conftest import fake_endpoint, prompt_file

QUESTIONS = [
    # the reader knows q0's answer without documents; q1's not
    {"id": "q0", "dataset": "nq", "question": "Where was Ann born?", "answers": ["Paris"],
     "gold": [], "ctxs": [
         {"id": "d1", "title": "Ann", "text": "Ann was born in Rome.", "score": 0.9},
         {"id": "d2", "title": "Ann", "text": "Ann was born in Paris.", "score": 0.8}]},
    {"id": "q1", "dataset": "nq", "question": "Where was Bob born?", "answers": ["Oslo"],
     "gold": [], "ctxs": [
         {"id": "d3", "title": "Bob", "text": "Bob was born in Oslo.", "score": 0.9},
         {"id": "d4", "title": "Bob", "text": "Bob likes tea.", "score": 0.7},
         {"id": "d5", "title": "Bob", "text": "Bob was born in Lima.", "score": 0.6}]},
]
KNOWN = {"Ann": "Paris", "Bob": "Cairo"}


class Reader:
    def __init__(self):
        self.calls = []

    def chat(self, conversations, **params):
        self.calls.append(params)
        out = []
        for conv in conversations:
            text = conv[-1]["content"]
            shown = re.search(r"born in (\w+)\.", text)
            who = re.search(r"Where was (\w+) born", text).group(1)
            out.append([shown.group(1) if shown else KNOWN[who]])
        return out


@pytest.fixture
def reader(monkeypatch):
    r = Reader()
    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: r)
    return r


def test_categories_docstrings():
    assert doctest.testmod(categories).failed == 0


def test_each_document_gets_its_outcome(model_env, reader):
    art, ctx = model_env
    rows = preference(art(Retrieved, QUESTIONS), prompt_file("rag", "common"),
                      PreferenceConfig(n_docs=3), ctx("preference"),
                      model=art(Model, "unused")).to_pylist()
    got = {r["doc"]["id"]: (r["category"], r["before"], r["after"], r["rank"]) for r in rows}
    assert got == {
        "d1": ("unaligned", "Paris", "Rome", 1),        # right without, misled by the document
        "d2": ("both_correct", "Paris", "Paris", 2),
        "d3": ("aligned", "Cairo", "Oslo", 1),          # wrong without, right with it
        "d4": ("both_incorrect", "Cairo", "Cairo", 2),
        "d5": ("both_incorrect", "Cairo", "Lima", 3)}
    assert all(r["kind"] == "original" and r["source_id"] == r["id"] for r in rows)
    d3 = next(r for r in rows if r["doc"]["id"] == "d3")
    assert (d3["before_em"], d3["after_em"], d3["after_f1"]) == (0.0, 1.0, 1.0)
    assert reader.calls[0]["temperature"] == 0.0   # greedy, one answer per reading


def test_n_docs_limits_the_documents_read_and_augmented_queries_keep_their_source(model_env,
                                                                                  reader,
                                                                                  caplog):
    art, ctx = model_env
    augmented = [{**QUESTIONS[1], "id": "q1#rephrase", "source_id": "q1", "kind": "rephrase"},
                 {**QUESTIONS[0], "id": "q9", "answers": []}]
    rows = preference(art(Retrieved, augmented), prompt_file("rag", "common"),
                      PreferenceConfig(n_docs=2), ctx("preference"),
                      model=art(Model, "unused")).to_pylist()
    assert [r["doc"]["id"] for r in rows] == ["d3", "d4"]
    assert {(r["id"], r["source_id"], r["kind"]) for r in rows} == {("q1#rephrase", "q1",
                                                                     "rephrase")}
    assert "1 of 2 queries have no gold answer and are left out" in caplog.text


def test_correct_by_gold_in_answer_by_default_for_readers_that_answer_in_sentences(model_env, monkeypatch):
    class Verbose(Reader):
        def chat(self, conversations, **params):
            return [[f"I think it is {a}."] for (a,) in super().chat(conversations, **params)]

    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: Verbose())
    art, ctx = model_env
    strict = preference(art(Retrieved, QUESTIONS[1:]), prompt_file("rag", "common"),
                        PreferenceConfig(correct_by="exact_match"), ctx("preference"),
                        model=art(Model, "unused")).to_pylist()
    loose = preference(art(Retrieved, QUESTIONS[1:]), prompt_file("rag", "common"),
                       PreferenceConfig(), ctx("preference"),
                       model=art(Model, "unused")).to_pylist()
    assert {r["category"] for r in strict} == {"both_incorrect"}
    assert [r["category"] for r in loose] == ["aligned", "both_incorrect", "both_incorrect"]


def test_a_reader_endpoint_is_asked_the_same_conversations_greedily(model_env, monkeypatch):
    reader = Reader()
    calls = fake_endpoint(monkeypatch, lambda conv, params: reader.chat([conv])[0][0])
    art, ctx = model_env
    cfg = PreferenceConfig(n_docs=3, max_new_tokens=9,
                           reader=EndpointConfig(model="gpt-3.5-turbo"))
    rows = preference(art(Retrieved, QUESTIONS), prompt_file("rag", "common"), cfg,
                      ctx("preference")).to_pylist()
    assert {r["doc"]["id"]: r["category"] for r in rows} == {
        "d1": "unaligned", "d2": "both_correct", "d3": "aligned", "d4": "both_incorrect",
        "d5": "both_incorrect"}
    ((asked, params),) = calls
    assert asked == 2 + 5          # each query with no document, then each document alone
    assert (params["max_tokens"], params["temperature"]) == (9, 0.0)


def test_a_multiple_choice_question_is_read_with_its_options(model_env, monkeypatch):
    asked = []
    reader = Reader()
    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: reader)
    monkeypatch.setattr(reader, "chat", lambda convs, **kw: asked.extend(convs) or
                        [["A"] for _ in convs])
    art, ctx = model_env
    row = {**QUESTIONS[0], "dataset": "arc", "answers": ["A"], "choices": ["Paris", "Rome"]}
    preference(art(Retrieved, [row]), prompt_file("rag", "common"), PreferenceConfig(),
               ctx("preference"), model=art(Model, "unused"))
    assert len(asked) == 3 and all("Where was Ann born?\nA: Paris\nB: Rome"
                                   in conv[-1]["content"] for conv in asked)


def test_plan_wants_exactly_one_reader():
    gpt = EndpointConfig(model="gpt-3.5-turbo")
    wired, unwired = {"inputs": ["model", "prompt", "retrieved"]}, {"inputs": ["prompt",
                                                                               "retrieved"]}
    assert PreferenceConfig(reader=gpt).plan_notes(unwired) == [
        "reader: openai gpt-3.5-turbo at https://api.openai.com/v1"]
    assert PreferenceConfig().plan_notes(wired) == []
    with pytest.raises(ConfigError, match=r"^reader is set and inputs.model is wired"):
        PreferenceConfig(reader=gpt).plan_notes(wired)
    with pytest.raises(ConfigError, match=r"^no reader: inputs.model is not wired"):
        PreferenceConfig().plan_notes(unwired)
