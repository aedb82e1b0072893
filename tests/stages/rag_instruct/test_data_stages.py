"""RAG-Instruct's data stages called directly: exemplars (retrieved or released), synthesis
(reference teacher, LLM teacher with retries), contexts (D* + noise) and format (wrappers)."""

from __future__ import annotations

import doctest
import json

import pytest

from orchestrator.api import ConfigError, DataError, File
from orchestrator.artifacts import Ref
from stages.rag_instruct import exemplars as exemplars_module
from stages.rag_instruct import noise, paradigms, synthesis, wrappers
from stages.rag_instruct.contexts import ContextsConfig, contexts
from stages.rag_instruct.exemplars import ExemplarsConfig, exemplars
from stages.rag_instruct.format import FormatConfig, format_examples
from stages.rag_instruct.schemas import Exemplars, Grounded, Synthesized
from stages.rag_instruct.synthesize import SynthesizeConfig, synthesize
from stages.schemas import Chat, Retrieved
from tests.stages.conftest import fake_endpoint, prompt_file

PARADIGM_NAMES = list(paradigms.PARADIGMS)


def test_doctests():
    for module in (paradigms, synthesis, noise, wrappers, exemplars_module):
        assert doctest.testmod(module).failed == 0, module.__name__


def file_input(path) -> File:
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


def doc(i, text=None):
    return {"id": f"d{i}", "title": f"T{i}", "text": text or f"filler text {i}", "score": 1.0 / (i + 1)}


def retrieved_row(qid, answer, answering_ranks, n=8):
    """A question whose passages at ``answering_ranks`` (0-based) contain ``answer``."""
    ctxs = [doc(i, f"{answer} is in passage {i}" if i in answering_ranks else None)
            for i in range(n)]
    return {"id": qid, "dataset": "synthkb", "question": f"Where is {qid}?", "answers": [answer],
            "gold": [], "ctxs": ctxs}


def ids(docs):
    return [d["id"] for d in docs]


def test_exemplars_by_relevance_take_the_top_documents(env):
    table, written, ctx = env
    rows = [retrieved_row(f"q{i}", "Velmora", {0}) for i in range(10)]
    out = written(Exemplars, exemplars(ExemplarsConfig(seed=1), ctx("exemplars"),
                                       retrieved=table(Retrieved, rows)))
    assert sorted({r["paradigm"] for r in out}) == sorted(PARADIGM_NAMES)  # each gets its share
    for r in out:
        p = paradigms.PARADIGMS[r["paradigm"]]
        assert p.min_docs <= len(r["docs"]) <= p.max_docs
        assert ids(r["docs"]) == [f"d{i}" for i in range(len(r["docs"]))]   # the top ones


def test_exemplars_by_has_answer_fit_the_paradigm(env):
    table, written, ctx = env
    rows = [retrieved_row(f"q{i}", "Velmora", {2, 5}) for i in range(10)]
    rows.append(retrieved_row("none", "Velmora", set()))          # no passage has the answer
    out = written(Exemplars, exemplars(ExemplarsConfig(select="has_answer", seed=1),
                                       ctx("exemplars"), retrieved=table(Retrieved, rows)))
    assert any(r["id"] == "none" for r in out) and len(out) > 1
    for r in out:
        texts = [d["text"] for d in r["docs"]]
        if paradigms.PARADIGMS[r["paradigm"]].answers:
            assert "Velmora" in texts[0] and r["docs"][0]["id"] == "d2"  # best-ranked answering
        else:
            assert not any("Velmora" in t for t in texts)
    # the row without an answering passage can only serve the paradigms without an answer
    assert all(not paradigms.PARADIGMS[r["paradigm"]].answers for r in out if r["id"] == "none")


def test_exemplars_per_paradigm_cap(env):
    table, written, ctx = env
    rows = [retrieved_row(f"q{i}", "Velmora", {0}) for i in range(30)]
    out = written(Exemplars, exemplars(ExemplarsConfig(per_paradigm=2), ctx("exemplars"),
                                       retrieved=table(Retrieved, rows)))
    assert len(out) == 10 and all(sum(r["paradigm"] == p for r in out) == 2
                                  for p in PARADIGM_NAMES)


def test_exemplars_read_the_released_sample_format(env, tmp_path):
    _, written, ctx = env
    sample = [
        {"context": [{"id": 11, "title": "A", "text": "a text", "socre": "1.5"},
                     {"id": 12, "title": "B", "text": "b text", "socre": "1.2"}],
         "source": "sharegpt", "example_question": "Explain the tides.", "task": "Single-Doc Answer"},
        {"context": [{"id": 21, "title": "C", "text": "c text", "socre": 2.0}],
         "source": "alpaca", "example_question": "Name a river.", "task": "normal2_1_v1"},
        {"context": [{"id": 31, "title": "D", "text": "d"}, {"id": 32, "title": "E", "text": "e"}],
         "source": "lmsys", "example_question": "Why?", "task": "Single-Doc Support"},
        {"context": [{"id": 41, "title": "F", "text": "f"}, {"id": 42, "title": "G", "text": "g"}],
         "source": "lmsys", "example_question": "Who?", "task": "normal1_3_v1"},
    ]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(sample))
    out = written(Exemplars, exemplars(ExemplarsConfig(), ctx("exemplars"),
                                       released=file_input(path)))
    assert [r["paradigm"] for r in out] == ["single_doc_answer", "multi_doc_answer",
                                            "single_doc_support", "useless_doc"]
    # the seed cuts only normal1_2 / normal1_3 (support, useless) to their first document
    assert [ids(r["docs"]) for r in out] == [["11", "12"], ["21"], ["31"], ["41"]]
    assert out[0]["docs"][0]["score"] == pytest.approx(1.5) and out[0]["dataset"] == "sharegpt"
    path.write_text(json.dumps([{**sample[0], "task": "summarise"}]))
    with pytest.raises(DataError, match=r"data.json line 1: unknown task 'summarise'"):
        exemplars(ExemplarsConfig(), ctx("exemplars"), released=file_input(path))


def test_exemplars_wiring_and_config_errors(env):
    _, _, ctx = env
    with pytest.raises(ConfigError, match="wire exactly one of inputs.retrieved"):
        exemplars(ExemplarsConfig(), ctx("exemplars"))
    with pytest.raises(ConfigError, match=r"paradigms: unknown \['useless'\]"):
        ExemplarsConfig(paradigms=["useless"])


def exemplar(qid, paradigm, answers=("Velmora",)):
    return {"id": qid, "dataset": "synthkb", "question": f"Where is {qid}?",
            "answers": list(answers), "gold": [], "paradigm": paradigm,
            "docs": [doc(1, "Velmora is a town."), doc(2)]}


PROMPTS = {f"{p}_prompt": prompt_file(p, "rag_instruct") for p in PARADIGM_NAMES}


def test_synthesize_reference_teacher(env):
    table, written, ctx = env
    rows = [exemplar("a", "single_doc_answer"), exemplar("b", "useless_doc", answers=())]
    out = written(Synthesized, synthesize(table(Exemplars, rows), **PROMPTS,
                                          cfg=SynthesizeConfig(teacher="reference"),
                                          ctx=ctx("synthesize")))
    assert len(out) == 1   # b has no gold answer to give
    assert (out[0]["question"], out[0]["answers"], out[0]["gold"]) == \
        ("Where is a?", ["Velmora"], ["d1", "d2"])
    assert out[0]["example"] == "Where is a?" and out[0]["paradigm"] == "single_doc_answer"


def test_synthesize_llm_teacher_asks_again_until_the_reply_parses(env, monkeypatch):
    table, written, ctx = env
    calls = []

    def answer(conv, params):
        calls.append((params["seed"], params["temperature"]))
        text = conv[-1]["content"]
        if "Where is never?" in text or params["seed"] == 0 and "Where is late?" in text:
            return "I cannot write JSON."
        return 'Here: {"q*": "Which town has a mill?", "a*": "Velmora"}'

    fake_endpoint(monkeypatch, answer)
    rows = [exemplar("now", "single_doc_answer"), exemplar("late", "multi_doc_answer"),
            exemplar("never", "useless_doc")]
    out = written(Synthesized, synthesize(table(Exemplars, rows), **PROMPTS,
                                          cfg=SynthesizeConfig(max_attempts=3),
                                          ctx=ctx("synthesize")))
    # every exemplar asked once, then the two unreadable ones with the next seed, then 'never'
    assert calls == [(0, 1.0)] * 3 + [(1, 1.0)] * 2 + [(2, 1.0)]
    assert [r["id"] for r in out] == ["now-syn", "late-syn"]
    assert out[1]["question"] == "Which town has a mill?" and out[1]["answers"] == ["Velmora"]


def test_synthesize_prompt_shows_documents_and_exemplar(env, monkeypatch):
    table, _, ctx = env
    seen = []
    fake_endpoint(monkeypatch, lambda conv, params: seen.append(conv[-1]["content"])
                  or '{"q*": "q", "a*": "a"}')
    synthesize(table(Exemplars, [exemplar("a", "multi_doc_support")]), **PROMPTS,
               cfg=SynthesizeConfig(), ctx=ctx("synthesize"))
    assert "[0]: Velmora is a town.\n[1]: filler text 2" in seen[0]
    assert "Where is a?" in seen[0] and '{"q*": "...", "a*": "..."}' in seen[0]
    assert "several of the documents" in seen[0]          # the multi-document prompt


def test_synthesize_prompts_ask_for_english_and_a_detailed_answer(env, monkeypatch):
    # the seed (prompt_final.py, every paradigm) asks for an English q* and a* and an answer that
    # is accurate, detailed and comprehensive; the shipped prompts say so in our own words
    table, _, ctx = env
    seen = []
    fake_endpoint(monkeypatch, lambda conv, params: seen.append(conv[-1]["content"])
                  or '{"q*": "q", "a*": "a"}')
    synthesize(table(Exemplars, [exemplar(p, p) for p in PARADIGM_NAMES]), **PROMPTS,
               cfg=SynthesizeConfig(), ctx=ctx("synthesize"))
    assert len(seen) == len(PARADIGM_NAMES)
    for text in seen:
        flat = " ".join(text.split())
        assert "and its answer, a*, both in English" in flat, flat
        assert "a detailed, complete response" in flat, flat


def test_synthesize_nothing_usable_is_an_error(env, monkeypatch):
    table, _, ctx = env
    with pytest.raises(DataError, match="teacher 'reference' needs exemplars with gold answers"):
        synthesize(table(Exemplars, [exemplar("a", "useless_doc", answers=())]), **PROMPTS,
                   cfg=SynthesizeConfig(teacher="reference"), ctx=ctx("synthesize"))


def synthesized(qid, source_ids):
    return {"id": qid, "dataset": "synthkb", "question": f"q {qid}", "answers": ["x"],
            "gold": list(source_ids), "paradigm": "multi_doc_answer", "example": "e",
            "docs": [doc(int(s[1:])) for s in source_ids]}


def test_contexts_keep_every_source_document_and_draw_noise_from_far_down(env):
    table, written, ctx = env
    syn = [synthesized("a", ["d3", "d30"]), synthesized("b", ["d0"])]
    ranked = [{"id": qid, "dataset": "synthkb", "question": "q", "answers": ["x"], "gold": [],
               "ctxs": [doc(i) for i in range(40)]} for qid in ("a", "b")]
    out = written(Grounded, contexts(table(Synthesized, syn), table(Retrieved, ranked),
                                     ContextsConfig(n_docs=6, noise_from=20, seed=3),
                                     ctx("contexts")))
    assert len(out) == 2
    for row, sources in zip(out, (["d3", "d30"], ["d0"])):
        got = ids(row["ctxs"])
        assert len(got) == 6 and len(set(got)) == 6 and set(sources) <= set(got)
        assert all(int(i[1:]) >= 20 for i in got if i not in sources)   # noise beyond rank 20
    unshuffled = written(Grounded, contexts(table(Synthesized, syn), table(Retrieved, ranked),
                                            ContextsConfig(n_docs=6, noise_from=20, shuffle=False),
                                            ctx("contexts")))
    assert ids(unshuffled[0]["ctxs"])[:2] == ["d3", "d30"]


def test_contexts_need_the_retrieval_of_every_example(env):
    table, _, ctx = env
    with pytest.raises(DataError, match="example 'a' has no retrieved passages"):
        contexts(table(Synthesized, [synthesized("a", ["d1"])]), table(Retrieved, []),
                 ContextsConfig(), ctx("contexts"))


def test_format_draws_wrappers_and_keeps_the_answer(env):
    table, written, ctx = env
    rows = [{"id": f"e{i}", "dataset": "s", "question": f"Who is {i}?", "answers": [f"A{i}"],
             "gold": [], "ctxs": [doc(1, "One."), doc(2, "Two.")], "paradigm": "useless_doc"}
            for i in range(30)]
    rows.append({**rows[0], "id": "nodocs", "ctxs": []})
    out = written(Chat, format_examples(table(Grounded, rows),
                                        prompt_file("wrappers", "rag_instruct"), FormatConfig(),
                                        ctx("format")))
    users = [r["messages"][0]["content"] for r in out]
    assert [r["messages"][1]["content"] for r in out[:2]] == ["A0", "A1"]
    assert all("One." in u and "Two." in u for u in users[:30])
    # numbered as the seed ran (string documents) and as the evaluation prompt reads them
    assert all("[1] One.\n[2] Two." in u for u in users[:30])
    assert len({u.split("\n")[0] for u in users[:30]}) >= 5      # the wrappers vary
    assert users[-1] == "### Instruction:\nWho is 0?\n\n### Response:"
    assert out[0]["task"] == "useless_doc"


def test_format_epochs_draw_each_epoch_anew_in_its_own_order(env):
    """The seed draws an example's wrapper each time it is batched: ``epochs: 3`` writes three
    blocks, one per SFT epoch, each holding every example once, in its own shuffled order and
    its own draws (for an sft step with ``epochs: 1, shuffle: false``); seeded."""
    table, written, ctx = env
    rows = [{"id": f"e{i}", "dataset": "s", "question": f"Who is {i}?", "answers": [f"A{i}"],
             "gold": [], "ctxs": [doc(1, "One.")], "paradigm": "useless_doc"} for i in range(30)]

    def run(**cfg):
        return written(Chat, format_examples(table(Grounded, rows),
                                             prompt_file("wrappers", "rag_instruct"),
                                             FormatConfig(**cfg), ctx("format")))

    once, three = run(), run(epochs=3)
    assert [r["id"] for r in once] == [f"e{i}" for i in range(30)]   # epochs: 1 as before
    assert len(three) == 90 and three == run(epochs=3)
    blocks = [three[e * 30:(e + 1) * 30] for e in range(3)]
    for e, block in enumerate(blocks):
        assert sorted(r["id"] for r in block) == sorted(f"e{i}#{e}" for i in range(30))
    orders = [[r["id"].split("#")[0] for r in block] for block in blocks]
    assert orders[0] != orders[1] != orders[2]
    prompt = {r["id"]: r["messages"][0]["content"] for r in three}
    redrawn = sum(len({prompt[f"e{i}#{e}"] for e in range(3)}) > 1 for i in range(30))
    assert redrawn >= 20     # seven wrappers: P(the same three times) = 1/49 per example
    assert all(r["messages"][1]["content"] == f"A{r['id'][1:].split('#')[0]}" for r in three)


def test_wrapper_file_errors(tmp_path):
    bad = tmp_path / "w.yaml"
    bad.write_text("wrappers: ['{documents} only']\nno_documents: '{question}'\n"
                   "document_styles: ['{text}']\n")
    with pytest.raises(ConfigError, match=r"w.yaml: wrappers\[0\] must use \{documents\}, "
                                          r"\{question\} \(it uses \{documents\}\)"):
        wrappers.load_wrappers(bad)
    bad.write_text("wrappers: ['{documents} {question}']\nno_documents: 'x'\n"
                   "document_styles: ['{text}']\n")
    with pytest.raises(ConfigError, match="'no_documents' must be a template with"):
        wrappers.load_wrappers(bad)


def test_contexts_warn_when_the_retrieval_is_too_shallow_for_the_noise(env, caplog):
    # the paper's noise from ranks 201-250 on a corpus of 40 passages: D* alone, said loudly
    table, written, ctx = env
    ranked = [{"id": "a", "dataset": "synthkb", "question": "q", "answers": ["x"], "gold": [],
               "ctxs": [doc(i) for i in range(40)]}]
    with caplog.at_level("WARNING"):
        out = written(Grounded, contexts(table(Synthesized, [synthesized("a", ["d3"])]),
                                         table(Retrieved, ranked), ContextsConfig(),
                                         ctx("contexts")))
    assert ids(out[0]["ctxs"]) == ["d3"]
    assert "1 of 1 examples have fewer than 10 documents: at most 40 passages" in caplog.text
    assert "lower noise_from" in caplog.text


def test_exemplars_by_has_answer_without_any_gold_answer_say_so(env, caplog):
    # exemplar instructions without answers (the pipeline's load allows them): the cause was
    # reported as "no exemplar has documents that fit its paradigm", with a hint to
    # select: relevance, which the reference teacher then refuses for the same missing answers
    table, _, ctx = env
    rows = [{**retrieved_row(f"q{i}", "Velmora", {0}), "answers": []} for i in range(4)]
    with pytest.raises(DataError, match=r"step 'exemplars': select: has_answer needs the "
                                        r"exemplar instructions' gold answers, and none of the 4 "
                                        r"has one") as e:
        exemplars(ExemplarsConfig(select="has_answer", paradigms=["single_doc_answer"]),
                  ctx("exemplars"), retrieved=table(Retrieved, rows))
    assert "give each question `answers` in data.train_questions" in e.value.hint
    with pytest.raises(DataError, match=r"step 'exemplars': no exemplar instructions"):
        exemplars(ExemplarsConfig(), ctx("exemplars"), retrieved=table(Retrieved, []))
    # some without answers: kept ones are counted, and the log says how many lack an answer
    rows[0] = retrieved_row("q0", "Velmora", {0})
    with caplog.at_level("INFO"):
        exemplars(ExemplarsConfig(select="has_answer", paradigms=["single_doc_answer"]),
                  ctx("exemplars"), retrieved=table(Retrieved, rows))
    assert "1 of 4 kept, by paradigm" in caplog.text
    assert "; 3 had no retrieved document that fits their paradigm (select: has_answer; 3 of 4 " \
           "have no gold answer)" in caplog.text


def test_exemplars_read_the_released_sample_as_parquet(env, tmp_path):
    """The Hub serves the released data as Parquet too; its nested nulls (a document without a
    score, where another has one) read as absent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, written, ctx = env
    sample = [
        {"context": [{"id": 11, "title": "A", "text": "a text", "socre": "1.5"}],
         "source": "sharegpt", "example_question": "Explain the tides.",
         "task": "Single-Doc Answer"},
        {"context": [{"id": 31, "title": "D", "text": "d"}, {"id": 32, "title": "E", "text": "e"}],
         "source": "lmsys", "example_question": "Why?", "task": "Single-Doc Support"},
    ]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(sample), path)
    out = written(Exemplars, exemplars(ExemplarsConfig(), ctx("exemplars"),
                                       released=file_input(path)))
    assert [(r["paradigm"], ids(r["docs"])) for r in out] == [("single_doc_answer", ["11"]),
                                                              ("single_doc_support", ["31"])]
    assert out[0]["docs"][0]["score"] == pytest.approx(1.5) and out[1]["docs"][0]["score"] is None
