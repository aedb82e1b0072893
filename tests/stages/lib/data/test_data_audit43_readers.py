"""Data audit of session 43, findings 1, 5, 6 and 8: what the corpus and question readers
took in silently, or refused without saying where."""

from __future__ import annotations

import json

import pytest

from orchestrator.api import DataError
from stages.lib.data.corpus import read_corpus
from stages.lib.data.questions import read_questions


def test_a_latin1_byte_deep_in_a_jsonl_corpus_is_named_by_line(tmp_path):
    """Finding 1: pyarrow's JSON reader does not check UTF-8, so a bad byte on line 60 was
    cached as a corpus no later step could decode."""
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"id": f"p{i}", "title": "T", "text": f"text {i}"}).encode()
             for i in range(1, 60)]
    path.write_bytes(b"\n".join(lines + [b'{"id": "p60", "title": "Caf\xe9", "text": "x"}']))
    with pytest.raises(DataError, match=r"corpus.jsonl line 60: not UTF-8 text \(byte 0xE9"):
        read_corpus(path)


def test_a_lone_surrogate_is_named_by_file_line_and_field(tmp_path):
    """Finding 5: ``"\\ud83d"`` (an emoji cut in half) stopped load with a bare
    UnicodeEncodeError that named no file, line or field."""
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "ok?", "answers": ["one"]}\n'
                         '{"id": "q2", "question": "What is alpha? \\ud83d", "answers": ["a"]}\n')
    with pytest.raises(DataError, match=r"q.jsonl line 2: 'question' holds a lone surrogate "
                                        r"\\ud83d at position 15"):
        read_questions(questions)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "p1", "title": "T", "text": "fine"}\n'
                      '{"id": "p2", "title": "T", "text": "cut \\ud83d here"}\n')
    with pytest.raises(DataError, match=r"c.jsonl line 2: 'text' holds a lone surrogate"):
        read_corpus(corpus)


def test_a_source_that_is_a_url_does_not_name_a_set(tmp_path):
    """Finding 6: TruthfulQA's ``source`` (the page an answer came from) made every question a
    set of its own; a ``source`` that is a set name still names the set."""
    path = tmp_path / "truthful.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": "?", "answers": ["a"],
                                        "source": f"https://en.wikipedia.org/wiki/{i}"}) + "\n"
                            for i in range(3))
                    + json.dumps({"id": "q9", "question": "?", "answers": ["a"],
                                  "source": "popqa"}) + "\n")
    assert [r["dataset"] for r in read_questions(path)] == ["truthful"] * 3 + ["popqa"]


def test_rag_instruct_passages_under_paragraph_text_are_read(tmp_path):
    """Finding 8: RAG-Instruct's evaluation sets hold passage text as ``paragraph_text`` (the
    seed's evaluation reads it); the whole load was refused."""
    path = tmp_path / "eval_data.json"
    path.write_text(json.dumps({"musique_processed": [
        {"question": "What is alpha?", "answers": ["one"],
         "ctxs": [{"title": "A", "paragraph_text": "Alpha is one."}]}]}))
    (row,) = read_questions(path)
    assert (row["ctxs"][0]["title"], row["ctxs"][0]["text"]) == ("A", "Alpha is one.")


def test_a_parquet_column_that_is_not_text_is_named(tmp_path):
    """A lesser note of data audit 43: a list-typed text column gave "row 1: cannot read the
    columns as strings", naming neither the column nor its type."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": [["x"], ["y"]]}), path)
    with pytest.raises(DataError, match=r"corpus.parquet: column 'text' is list<element: string>, "
                                        r"which cannot be read as text"):
        read_corpus(path)


def test_a_dataset_field_names_its_set_whatever_its_characters(tmp_path):
    """Review 43, finding 2: the URL rule for ``source`` was applied to ``dataset`` too, so a
    file of ``mmlu:anatomy`` and ``mmlu:astronomy`` records became one set named after the
    file, without a word."""
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": "?", "answers": ["a"],
                                        "dataset": name}) + "\n"
                            for i, name in enumerate(["mmlu:anatomy", "kilt_tasks/nq"])))
    assert [r["dataset"] for r in read_questions(path)] == ["mmlu:anatomy", "kilt_tasks/nq"]
