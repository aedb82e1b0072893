"""Corpus and question readers: every supported shape, and every error message."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.errors import ConfigError, DataError
from stages.lib.data.loaders import (detect_corpus_format, iter_json_records, merge_qrels,
                                     normalize_question, passage_from_record, read_corpus,
                                     read_corpus_table, read_qrels, read_questions, to_table)

PASSAGE = [{"id": "1", "title": "Aaron", "text": 'Aaron ( or ; "Ahärôn") is a prophet.'},
           {"id": "2", "title": "Moses", "text": "Moses led the Israelites."}]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path, records):
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def raises(match_all, fn, *args, **kwargs):
    """Call ``fn`` expecting a DataError whose one-line message contains every string given."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    msg = info.value.message
    assert "\n" not in msg, msg
    for part in match_all:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


# --------------------------------------------------------------------------- corpus formats


def test_dpr_tsv_with_header_column_order_and_quotes(tmp_path):
    p = write(tmp_path / "psgs_w100.tsv",
              'id\ttext\ttitle\n1\t"Aaron ( or ; ""Ahärôn"") is a prophet."\tAaron\n'
              "2\tMoses led the Israelites.\tMoses\n")
    assert detect_corpus_format(p) == "dpr"
    assert read_corpus(p) == PASSAGE
    table = read_corpus_table(p)
    assert table.schema == pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])


def test_dpr_tsv_without_header_numeric_ids_and_limit(tmp_path):
    p = write(tmp_path / "c.tsv", "10\tfirst text\tT1\n11\tsecond\tT2\n12\tthird\tT3\n")
    rows = read_corpus(p)
    assert [r["id"] for r in rows] == ["10", "11", "12"]
    assert rows[0] == {"id": "10", "title": "T1", "text": "first text"}
    assert [r["id"] for r in read_corpus(p, max_passages=2)] == ["10", "11"]


def test_dpr_tsv_gzip_and_two_columns(tmp_path):
    p = tmp_path / "c.tsv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write("id\ttext\n1\thello\n")
    assert read_corpus(p) == [{"id": "1", "title": "", "text": "hello"}]


def test_plain_jsonl_corpus(tmp_path):
    p = jsonl(tmp_path / "corpus.jsonl", PASSAGE)
    assert detect_corpus_format(p) == "jsonl"
    assert read_corpus(p) == PASSAGE
    assert read_corpus(p, max_passages=1) == PASSAGE[:1]


def test_flashrag_corpus_title_is_first_line_quotes_stripped(tmp_path):
    p = jsonl(tmp_path / "wiki.jsonl", [
        {"id": "0", "contents": '"Evan Morris"\nEvan Morris was a lobbyist.\nSecond line.'},
        {"id": "1", "contents": "Plain Title\nSome text."},
        {"id": "2", "contents": "no newline at all"},
    ])
    assert detect_corpus_format(p) == "flashrag"
    expected = [{"id": "0", "title": "Evan Morris", "text": "Evan Morris was a lobbyist.\nSecond line."},
                {"id": "1", "title": "Plain Title", "text": "Some text."},
                {"id": "2", "title": "", "text": "no newline at all"}]
    assert read_corpus(p) == expected                  # pyarrow fast path
    assert read_corpus(p, max_passages=3) == expected  # Python streaming path agrees


def test_beir_corpus_with_metadata_and_int_ids(tmp_path):
    p = jsonl(tmp_path / "corpus.jsonl", [
        {"_id": "d1", "title": "T", "text": "x", "metadata": {"url": "u"}},
        {"_id": 2, "title": "U", "text": "y", "metadata": {}},
    ])
    assert detect_corpus_format(p) == "beir"
    assert read_corpus(p) == [{"id": "d1", "title": "T", "text": "x"},
                              {"id": "2", "title": "U", "text": "y"}]


def test_parquet_corpus_and_forced_format(tmp_path):
    p = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": [1, 2], "contents": ['"A"\nalpha', "B\nbeta"]}), p)
    assert detect_corpus_format(p) == "parquet"
    assert read_corpus(p) == [{"id": "1", "title": "A", "text": "alpha"},
                              {"id": "2", "title": "B", "text": "beta"}]
    assert read_corpus(p, max_passages=1) == [{"id": "1", "title": "A", "text": "alpha"}]
    # a TSV without the .tsv extension, forced
    q = write(tmp_path / "passages.txt", "1\ttext one\tTitle\n")
    assert read_corpus(q, format="tsv") == [{"id": "1", "title": "Title", "text": "text one"}]
    assert detect_corpus_format(q) == "dpr"  # sniffed from the tab


def test_json_array_corpus(tmp_path):
    p = write(tmp_path / "corpus.json", json.dumps(PASSAGE, indent=2))
    assert read_corpus(p) == PASSAGE


# --------------------------------------------------------------------------- corpus errors


def test_corpus_errors_name_file_and_line(tmp_path):
    p = write(tmp_path / "bad.tsv", "id\ttext\ttitle\n1\tok\tT\n2\tonly two columns\n")
    raises(["bad.tsv line 3", "expected 3 tab-separated columns", "got 2"], read_corpus, p)

    p = write(tmp_path / "bad.jsonl", '{"id": "1", "text": "a"}\n{"id": "2" "text": "b"}\n')
    raises(["bad.jsonl line 2", "invalid JSON", "column"], read_corpus, p)

    p = jsonl(tmp_path / "noid.jsonl", [{"id": "1", "text": "a"}, {"title": "t", "text": "b"}])
    raises(["noid.jsonl line 2", "passage has no id"], read_corpus, p)

    p = jsonl(tmp_path / "notext.jsonl", [{"id": "1", "text": "a"}, {"id": "2", "title": "t"}])
    raises(["notext.jsonl line 2", "passage has no text"], read_corpus, p)

    p = jsonl(tmp_path / "types.jsonl", [{"id": "1", "text": "a"}, {"id": "2", "text": 5}])
    raises(["types.jsonl line 2", "'text' must be a string"], read_corpus, p)

    p = jsonl(tmp_path / "dup.jsonl", [{"id": "1", "text": "a"}, {"id": "2", "text": "b"},
                                       {"id": "1", "text": "c"}])
    raises(["dup.jsonl line 3", "'1' repeats", "first on line 1"], read_corpus, p)

    p = write(tmp_path / "dup.tsv", "id\ttext\ttitle\n1\ta\tA\n\n1\tb\tB\n")
    raises(["dup.tsv line 4", "first on line 2"], read_corpus, p)

    p = write(tmp_path / "keys.jsonl", '{"name": "x"}\n')
    raises(["keys.jsonl line 1", "cannot tell the corpus format"], read_corpus, p)

    p = write(tmp_path / "list.jsonl", "[1, 2]\n")
    raises(["list.jsonl line 1", "expected a JSON object"], read_corpus, p)


def test_corpus_empty_missing_and_unknown_format(tmp_path):
    for name in ("empty.jsonl", "empty.tsv", "blank.jsonl"):
        p = write(tmp_path / name, "\n\n" if name.startswith("blank") else "")
        raises([name, "line 1", "the file is empty"], read_corpus, p)
    raises(["nope.jsonl", "no such file"], read_corpus, tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="did you mean 'flashrag'"):
        read_corpus(jsonl(tmp_path / "c.jsonl", PASSAGE), format="flashrg")


def test_single_pretty_printed_object_is_explained(tmp_path):
    p = write(tmp_path / "squad.json", json.dumps({"data": [1], "version": "1"}, indent=2))
    raises(["squad.json line 1", "single JSON object", "data"], read_questions, p)


# --------------------------------------------------------------------------- questions


def test_flashrag_questions_dataset_from_folder(tmp_path):
    (tmp_path / "nq").mkdir()
    p = jsonl(tmp_path / "nq" / "test.jsonl", [
        {"id": "test_0", "question": "who got the first nobel prize in physics",
         "golden_answers": ["Wilhelm Conrad Röntgen"], "metadata": {}}])
    assert read_questions(p) == [{"id": "test_0", "dataset": "nq",
                                  "question": "who got the first nobel prize in physics",
                                  "answers": ["Wilhelm Conrad Röntgen"], "gold": []}]


def test_question_field_variants(tmp_path):
    p = jsonl(tmp_path / "mixed.jsonl", [
        {"Question": "q1", "answer": "single"},
        {"query": "q2", "answers": ["a", "b", "a", ""], "_id": "hotpotqa_5"},
        {"instruction": "q3", "output": ["x"], "qid": 9, "source": "popqa"},
        {"question": "q4", "answer": [1871, ["nested"]], "dataset": "triviaqa", "gold": "p7"},
    ])
    rows = read_questions(p)
    assert [r["question"] for r in rows] == ["q1", "q2", "q3", "q4"]
    assert [r["id"] for r in rows] == ["1", "hotpotqa_5", "9", "4"]
    assert [r["dataset"] for r in rows] == ["mixed", "hotpotqa", "popqa", "triviaqa"]
    assert [r["answers"] for r in rows] == [["single"], ["a", "b"], ["x"], ["1871", "nested"]]
    assert rows[3]["gold"] == ["p7"]
    assert all("ctxs" not in r for r in rows)


def test_asqa_docs_and_retrieved_ctxs(tmp_path):
    p = jsonl(tmp_path / "asqa_eval_gtr_top100.jsonl", [
        {"question": "Who played X?", "qa_pairs": [{"short_answers": ["Ann", "Bo"]},
                                                   {"short_answers": ["Bo", "Cy"]}],
         "docs": [{"id": "9", "title": "T", "text": "t", "score": "1.5"},
                  {"title": "U", "text": "u"}]},
        {"question": "q", "answers": ["a"], "ctxs": [{"id": 3, "title": "V", "text": "v", "socre": 0.5}]},
        {"question": "q", "answers": ["a"],
         "retrieval_result": [{"id": "4", "contents": '"W"\nw', "score": 2}]},
    ])
    rows = read_questions(p)
    assert rows[0]["answers"] == ["Ann", "Bo", "Cy"]
    assert rows[0]["dataset"] == "asqa_eval_gtr_top100"
    assert rows[0]["ctxs"] == [{"id": "9", "title": "T", "text": "t", "score": 1.5},
                               {"id": None, "title": "U", "text": "u", "score": None}]
    assert rows[1]["ctxs"] == [{"id": "3", "title": "V", "text": "v", "score": 0.5}]
    assert rows[2]["ctxs"] == [{"id": "4", "title": "W", "text": "w", "score": 2.0}]


def test_json_array_questions_dynamicrag_json_lines_and_dpr_positive_ctxs(tmp_path):
    arr = write(tmp_path / "split_0.json",
                '[\n  {"id": "nq_1", "question": "a", "answer": ["x"]},\n\n'
                '  {"id": "nq_2",\n   "question": "b", "answer": "y"}\n]\n')
    rows = read_questions(arr)
    assert [(r["id"], r["dataset"], r["answers"]) for r in rows] == [("nq_1", "nq", ["x"]),
                                                                     ("nq_2", "nq", ["y"])]
    assert [n for n, _ in iter_json_records(arr)] == [2, 4]
    # a .json file that is really JSON lines (DynamicRAG's rag_training_data.json)
    lines = jsonl(tmp_path / "rag_training_data.json",
                  [{"id": "fever_3", "question": "c", "answer": "SUPPORTS"}])
    assert read_questions(lines)[0]["dataset"] == "fever"
    dpr = jsonl(tmp_path / "nq-train.jsonl", [
        {"question": "d", "answers": ["z"], "positive_ctxs": [{"title": "t", "text": "x", "passage_id": "77"}]}])
    assert read_questions(dpr)[0]["gold"] == ["77"]


def test_max_questions_and_unanswered_questions(tmp_path):
    p = jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "what?"}, {"_id": "q2", "text": "why?"}])
    rows = read_questions(p, require_answers=False, max_questions=1, default_dataset="scifact")
    assert rows == [{"id": "q1", "dataset": "scifact", "question": "what?", "answers": [], "gold": []}]


def test_qrels_merge(tmp_path):
    q = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td3\t2\n")
    qrels = read_qrels(q)
    assert qrels == {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    trec = write(tmp_path / "qrels.trec", "q1 0 d9 1\n")
    assert read_qrels(trec) == {"q1": {"d9": 1}}
    rows = [{"id": "q1", "gold": []}, {"id": "q2", "gold": ["d0"]}, {"id": "q3", "gold": []}]
    merged = merge_qrels(rows, qrels)
    assert [r["gold"] for r in merged] == [["d1"], ["d0", "d3"], []]
    assert rows[0]["gold"] == []  # not modified


# --------------------------------------------------------------------------- question errors


def test_question_errors_name_file_and_line(tmp_path):
    cases = [
        ('{"question": "a", "answers": ["x"]}\n{"question": "b", "answers": ["y"]\n',
         ["line 2", "invalid JSON"]),
        ('{"question": "a", "answers": ["x"]}\n\n{"answers": ["y"]}\n',
         ["line 3", "missing field 'question'", "question, Question, query"]),
        ('{"question": "a"}\n', ["line 1", "missing answers", "require_answers: false"]),
        ('{"question": "a", "answers": ["", " "]}\n', ["line 1", "has no non-empty answer"]),
        ('{"question": 5, "answers": ["x"]}\n', ["line 1", "'question' must be a string, got int"]),
        ('{"question": " ", "answers": ["x"]}\n', ["line 1", "'question' is empty"]),
        ('{"question": "a", "answers": {"text": "x"}}\n', ["line 1", "'answers' must be a string or a list"]),
        ('{"question": "a", "answers": [null]}\n', ["line 1", "has no non-empty answer"]),
        ('{"question": "a", "answers": [true]}\n', ["line 1", "'answers' must be a string or a list"]),
        ('{"question": "a", "answers": ["x"], "ctxs": "nope"}\n', ["line 1", "'ctxs' must be a list"]),
        ('{"question": "a", "answers": ["x"], "ctxs": [{"title": "t"}]}\n',
         ["line 1 ctxs[0]", "passage has no text"]),
        ('{"question": "a", "answers": ["x"], "ctxs": [{"text": "t", "score": "hi"}]}\n',
         ["line 1 ctxs[0]", "'score' must be a number"]),
        ('{"question": "a", "qa_pairs": [{"long_answer": "x"}]}\n', ["line 1", "qa_pairs[0]"]),
        ('{"question": "a", "answers": ["x"], "id": [1]}\n', ["line 1", "question id must be"]),
        ('{"id": "1", "question": "a", "answers": ["x"]}\n{"id": "1", "question": "b", "answers": ["y"]}\n',
         ["line 2", "'1' repeats", "first on line 1"]),
        ('["question", "answers"]\n', ["line 1", "expected a JSON object"]),
        ('[{"question": "a", "answers": ["x"]},\n {"question": "b"}\n]', ["line 2", "missing answers"]),
        ('[{"question": "a", "answers": ["x"]}\n {"question": "b"}]', ["line 2", "expected ',' or ']'"]),
        ('[\n{"question": "a", "answers": ["x"]},\n{"question": \n}]', ["line 4", "invalid JSON"]),
        ("", ["line 1", "the file is empty"]),
        ("[]", ["line 1", "the file is empty"]),
    ]
    for i, (text, parts) in enumerate(cases):
        p = write(tmp_path / f"case{i}.jsonl", text)
        raises([f"case{i}.jsonl"] + parts, read_questions, p)


def test_non_utf8_and_qrels_errors(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes(b'{"question": "a", "answers": ["x"]}\n{"question": "caf\xe9", "answers": ["x"]}\n')
    raises(["latin.jsonl line 2", "not UTF-8"], read_questions, p)
    t = tmp_path / "latin.tsv"
    t.write_bytes(b"id\ttext\ttitle\n1\tok\tT\n2\tcaf\xe9\tT2\n")
    raises(["latin.tsv line 3", "not UTF-8"], read_corpus, t)
    g = tmp_path / "q.jsonl.gz"
    with gzip.open(g, "wt", encoding="utf-8") as f:
        f.write('\ufeff{"question": "a", "answers": ["x"]}\n')
    assert read_questions(g)[0]["answers"] == ["x"]  # gzip, byte-order mark
    q = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    raises(["test.tsv line 2", "'high' is not a number"], read_qrels, q)
    q = write(tmp_path / "cols.tsv", "query-id\tcorpus-id\tscore\nq1\td1\n")
    raises(["cols.tsv line 2", "expected 3 tab-separated columns"], read_qrels, q)
    raises(["none.tsv", "the file is empty"], read_qrels, write(tmp_path / "none.tsv", ""))
    raises(["head.tsv", "no relevance judgements"], read_qrels,
           write(tmp_path / "head.tsv", "query-id\tcorpus-id\tscore\n"))


def test_normalize_question_direct():
    row = normalize_question({"question": "q", "answers": "a"}, where="x", default_id="7",
                             default_dataset="d")
    assert row == {"id": "7", "dataset": "d", "question": "q", "answers": ["a"], "gold": []}
    with pytest.raises(DataError, match="^rec 3: expected a JSON object"):
        normalize_question("q", where="rec 3")


# --------------------------------------------------------------------------- tables


def test_to_table_fills_lists_and_keeps_schema():
    ctx = pa.struct([("id", pa.string()), ("title", pa.string()), ("text", pa.string()),
                     ("score", pa.float32())])
    schema = pa.schema([("id", pa.string()), ("dataset", pa.string()), ("question", pa.string()),
                        ("answers", pa.list_(pa.string())), ("gold", pa.list_(pa.string())),
                        ("ctxs", pa.list_(ctx))])
    rows = [{"id": "1", "dataset": "d", "question": "q", "answers": ["a"], "gold": None,
             "ctxs": [{"id": None, "title": "t", "text": "x", "score": None}], "extra": 1},
            {"id": "2", "dataset": "d", "question": "r", "answers": ["b"]}]
    table = to_table(rows, schema)
    assert table.schema == schema
    assert table.column("gold").to_pylist() == [[], []]
    assert table.column("ctxs").to_pylist()[1] == []


def test_fast_and_streaming_paths_agree(tmp_path):
    records = [{"id": "a", "contents": '"A"\nalpha'},
               {"id": "b", "title": "Own title", "contents": "B line\nbeta"},
               {"id": "c", "contents": "gamma"}]
    p = jsonl(tmp_path / "mixed.jsonl", records)
    expected = [{"id": "a", "title": "A", "text": "alpha"},
                {"id": "b", "title": "Own title", "text": "B line\nbeta"},
                {"id": "c", "title": "", "text": "gamma"}]
    assert read_corpus(p) == expected
    assert read_corpus(p, max_passages=3) == expected
    assert [passage_from_record(r) for r in records] == expected
    # int ids defeat pyarrow's typed reader: the Python path takes over
    q = jsonl(tmp_path / "ints.jsonl", [{"id": 1, "text": "x"}, {"id": "2", "text": "y"}])
    assert [r["id"] for r in read_corpus(q)] == ["1", "2"]
