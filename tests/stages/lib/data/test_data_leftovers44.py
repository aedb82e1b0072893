"""Leftovers of the data audit 43: the corpus fast path for docid / doc_id / integer ids,
Reinforced-IR's corpus.json (a JSON list of strings), extra keys of shipped passages named in
the dropped-field warning, and an id taken from the line number named as such."""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import pytest

from orchestrator.errors import ConfigError
from stages.lib.data import corpus
from stages.lib.data.corpus import detect_corpus_format, read_corpus, read_corpus_table
from stages.lib.data.question_sets import read_question_sets
from stages.lib.data.questions import read_questions
from tests.stages.lib.data.files_helpers import jsonl, raises, write


def _slow_table(path, monkeypatch, **kwargs):
    """The table the per-row Python path gives (the Arrow fast path switched off)."""
    with monkeypatch.context() as m:
        m.setattr(corpus, "_read_json_fast", lambda *a, **k: None)
        return read_corpus_table(path, **kwargs)


def _fast_only(monkeypatch):
    """Make the per-row Python path fail, so that a read that succeeds took the fast path."""
    def refuse(*args, **kwargs):
        raise AssertionError("the per-row Python path was taken")

    monkeypatch.setattr(corpus, "passage_from_record", refuse)


@pytest.mark.parametrize("key, ids", [
    ("docid", ["d1", "d2", "d3"]),          # Tevatron
    ("doc_id", ["a", "b", "c"]),
    ("passage_id", ["p1", "p2", "p3"]),
    ("id", [7, -3, 12345678901]),           # integer ids
    ("docid", [0, 1, 2]),
    ("_id", [10, 20, 30]),
])
def test_docid_and_integer_ids_take_the_fast_path_and_match_the_slow_one(tmp_path, monkeypatch,
                                                                          key, ids):
    p = jsonl(tmp_path / "corpus.jsonl", [
        {key: i, "title": f"T{n}", "text": f"text {n}", "extra": [n]} for n, i in enumerate(ids)])
    slow = _slow_table(p, monkeypatch)
    assert slow["id"].to_pylist() == [str(i) for i in ids]
    _fast_only(monkeypatch)
    fast = read_corpus_table(p)
    assert fast.schema == slow.schema and fast.equals(slow)
    assert read_corpus_table(p, max_passages=2).equals(slow.slice(0, 2))


def test_integer_ids_of_a_flashrag_corpus_take_the_fast_path(tmp_path, monkeypatch):
    p = jsonl(tmp_path / "wiki.jsonl", [{"id": 7, "contents": '"Evan"\nEvan was here.'},
                                        {"id": 8, "contents": "no title line"}])
    slow = _slow_table(p, monkeypatch)
    _fast_only(monkeypatch)
    fast = read_corpus_table(p)
    assert fast.equals(slow)
    assert fast.to_pylist() == [{"id": "7", "title": "Evan", "text": "Evan was here."},
                                {"id": "8", "title": "", "text": "no title line"}]


@pytest.mark.parametrize("other", ["_id", "docid"])
def test_an_id_key_missing_on_some_records_reads_as_the_slow_path_does(tmp_path, monkeypatch,
                                                                       other):
    # the slow path takes each record's first id key present (id, _id, doc_id, docid, ...);
    # the fast path took the first key present on every record (_id: x, y, z)
    p = jsonl(tmp_path / "corpus.jsonl", [{"id": "a", other: "x", "text": "1"},
                                          {other: "y", "text": "2"},
                                          {"id": "c", other: "z", "text": "3"}])
    slow = _slow_table(p, monkeypatch)
    assert slow["id"].to_pylist() == ["a", "y", "c"]
    _fast_only(monkeypatch)
    assert read_corpus_table(p).equals(slow)


def test_the_checks_hold_on_the_fast_path(tmp_path):
    p = jsonl(tmp_path / "c.jsonl", [{"docid": 1, "text": "a"}, {"docid": 2, "text": "b"},
                                     {"docid": 1, "text": "c"}])
    raises(["c.jsonl line 3", "passage id '1' repeats (first on line 1)"], read_corpus_table, p)
    p = jsonl(tmp_path / "m.jsonl", [{"id": 7, "text": "a"}, {"id": "7", "text": "b"}])
    raises(["m.jsonl line 2", "passage id '7' repeats"], read_corpus_table, p)
    for bad, kind in ((1.5, "float"), (2.0, "float"), (True, "bool")):
        p = jsonl(tmp_path / "f.jsonl", [{"docid": 1, "text": "a"}, {"docid": bad, "text": "b"}])
        raises(["f.jsonl line 2", f"passage id must be a string or integer, got {kind}"],
               read_corpus_table, p)
    p = jsonl(tmp_path / "n.jsonl", [{"doc_id": "a", "text": "a"}, {"title": "t", "text": "b"}])
    raises(["n.jsonl line 2", "passage has no id"], read_corpus_table, p)


@pytest.mark.parametrize("pid", ["1", 1])
def test_a_mapped_text_field_missing_is_refused_on_the_fast_path_too(tmp_path, pid):
    # the fast path read FlashRAG's contents in place of the missing mapped field
    p = jsonl(tmp_path / "c.jsonl", [{"id": pid, "contents": "T\nx"}])
    raises(["c.jsonl line 1", "no field 'content', which the load step's passage_fields maps "
            "text to"], read_corpus_table, p, fields={"text": "content"})


# Reinforced-IR: data/<dataset>/corpus.json is a JSON list of passage strings (SEEDS §5.2)

def test_a_json_list_of_strings_is_a_corpus_with_positions_as_ids(tmp_path, caplog):
    p = write(tmp_path / "corpus.json", json.dumps(["Alpha is one.", "Beta is two.", ""]) + "\n")
    assert detect_corpus_format(p) == "jsonl"
    with caplog.at_level(logging.INFO, logger="stages.lib.data.corpus"):
        table = read_corpus_table(p)
    assert table.schema == pa.schema([("id", pa.string()), ("title", pa.string()),
                                      ("text", pa.string())])
    assert table.to_pylist() == [{"id": "0", "title": "", "text": "Alpha is one."},
                                 {"id": "1", "title": "", "text": "Beta is two."},
                                 {"id": "2", "title": "", "text": ""}]
    notes = [r.getMessage() for r in caplog.records if "position" in r.getMessage()]
    assert len(notes) == 1 and "corpus.json" in notes[0], caplog.text
    assert read_corpus(p, format="jsonl", max_passages=2) == table.to_pylist()[:2]


def test_a_pretty_printed_list_of_strings_reads_too(tmp_path):
    p = write(tmp_path / "corpus.json", '[\n  "first passage",\n  "second passage"\n]\n')
    assert [r["id"] for r in read_corpus(p)] == ["0", "1"]


def test_a_mixed_array_is_refused_naming_the_first_odd_item(tmp_path):
    p = write(tmp_path / "corpus.json",
              '[\n"a passage",\n"another",\n{"id": "x", "text": "t"}\n]\n')
    msg = raises(["corpus.json line 4", "item 2", "object", "string"], read_corpus_table, p)
    assert "got str" not in msg
    p = write(tmp_path / "objects.json",
              '[{"id": "x", "text": "t"},\n{"id": "y", "text": "u"},\n"a passage"]\n')
    raises(["objects.json line 3", "item 2", "string"], read_corpus_table, p)
    p = write(tmp_path / "numbers.json", '["a passage", 5]\n')
    raises(["numbers.json line 1", "item 1", "int"], read_corpus_table, p)


# shipped passages: extra keys are named in the dropped-field warning

def test_extra_keys_of_shipped_passages_are_named_once_per_file(tmp_path, caplog):
    p = jsonl(tmp_path / "nq_dev.jsonl", [
        {"id": "1", "question": "q?", "answers": ["a"],
         "ctxs": [{"id": "p1", "title": "T", "text": "t", "score": 1, "hasanswer": True},
                  {"id": "p2", "title": "U", "text": "u", "score": 0.5, "hasanswer": False}]},
        {"id": "2", "question": "r?", "answers": ["b"],
         "ctxs": [{"id": "p3", "title": "V", "text": "v", "bm25": 3.0}]},
        {"id": "3", "question": "s?", "answers": ["c"],
         "ctxs": [{"id": "p4", "title": "V", "text": "v", "socre": 2}]}])
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.questions"):
        rows = read_questions(p)
    assert rows[0]["ctxs"][0] == {"id": "p1", "title": "T", "text": "t", "score": 1.0}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "nq_dev.jsonl" in warnings[0]
    assert "ctxs[].bm25 (in 1 of 3 records)" in warnings[0]
    assert "ctxs[].hasanswer (in 1 of 3 records)" in warnings[0]
    assert "socre" not in warnings[0] and "score" in warnings[0]


def test_extra_passage_keys_beside_dropped_question_fields(tmp_path, caplog):
    p = jsonl(tmp_path / "eval.jsonl", [
        {"question": "q?", "answers": ["a"], "note": "x",
         "docs": [{"title": "T", "text": "t", "has_answer": True}]}])
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.questions"):
        read_questions(p)
    text = caplog.text
    assert "note (in 1 of 1 records)" in text and "docs[].has_answer (in 1 of 1 records)" in text


def test_a_folder_of_sets_names_extra_passage_keys_in_its_one_warning(tmp_path, caplog):
    for name in ("nq", "tqa"):
        jsonl(tmp_path / f"{name}.jsonl", [
            {"question": "q?", "answers": ["a"],
             "ctxs": [{"title": "T", "text": "t", "hasanswer": True}]}])
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.question_sets"):
        read_question_sets(tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ctxs[].hasanswer (in 2 of 2 records)" in warnings[0], warnings


def test_passages_without_extra_keys_warn_nothing(tmp_path, caplog):
    p = jsonl(tmp_path / "q.jsonl", [
        {"question": "q?", "answers": ["a"], "retrieval_result": [
            {"id": "1", "contents": "T\nt", "score": 2},
            {"docid": 2, "paragraph_text": "p", "title": "U"},
            {"_id": "3", "text": "w", "passage_id": "3", "doc_id": "3"}]}])
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.questions"):
        read_questions(p)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING], caplog.text


# an id taken from the line number is named as such when it collides

def test_an_id_taken_from_the_line_number_is_named_as_such(tmp_path):
    p = write(tmp_path / "q.jsonl", '{"id": "2", "question": "a?", "answers": ["x"]}\n'
                                    '{"question": "b?", "answers": ["y"]}\n')
    msg = raises(["q.jsonl line 2", "question id '2' repeats (first on line 1)",
                  "line 2 has no id field", "its line number", "give every record an id"],
                 read_questions, p)
    assert "repeats" in msg
    p = write(tmp_path / "r.jsonl", '{"question": "a?", "answers": ["x"]}\n'
                                    '{"id": 1, "question": "b?", "answers": ["y"]}\n')
    raises(["r.jsonl line 2", "question id '1' repeats (first on line 1",
            "line 1 has no id field", "its line number", "give every record an id"],
           read_questions, p)


def test_an_array_element_without_an_id_is_named_by_its_element_number(tmp_path):
    p = write(tmp_path / "q.json", '[{"id": "2", "question": "a?", "answers": ["x"]}, '
                                   '{"question": "b?", "answers": ["y"]}]\n')
    raises(["question id '2' repeats", "element 2 has no id field", "its element number",
            "give every record an id"], read_questions, p)


def test_two_records_with_the_same_id_keep_the_plain_message(tmp_path):
    p = jsonl(tmp_path / "q.jsonl", [{"id": "a", "question": "q?", "answers": ["x"]},
                                     {"id": "a", "question": "r?", "answers": ["y"]}])
    msg = raises(["q.jsonl line 2: question id 'a' repeats (first on line 1)"], read_questions, p)
    assert "no id field" not in msg


def test_passage_fields_do_not_apply_to_a_list_of_strings(tmp_path):
    p = write(tmp_path / "corpus.json", '["a passage"]')
    with pytest.raises(ConfigError, match="passage_fields do not apply"):
        read_corpus_table(p, fields={"text": "content"})


@pytest.mark.parametrize("other", [
    {"passage_id": 1.5},                       # a float id key the Python path never reads
    {"doc_id": 3},                             # a parent document id, int here, text below
])
def test_an_id_key_that_is_never_read_keeps_the_fast_path(tmp_path, monkeypatch, other):
    """Review 44, finding 5: every id key was read as one type from the first record, so a
    float ``passage_id`` or a ``doc_id`` of mixed types beside every record's ``id`` sent the
    whole corpus to the per-row Python path (300k passages: 0.41 s -> 2.68 s)."""
    later = {k: (f"doc-{v}" if isinstance(v, int) else v) for k, v in other.items()}
    p = jsonl(tmp_path / "corpus.jsonl", [
        {"id": "d1", "title": "T1", "text": "one", **other},
        {"id": "d2", "title": "T2", "text": "two", **later}])
    slow = _slow_table(p, monkeypatch)
    _fast_only(monkeypatch)
    fast = read_corpus_table(p)
    assert fast.equals(slow) and fast["id"].to_pylist() == ["d1", "d2"]
