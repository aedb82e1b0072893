"""Line and JSON readers: encodings, gzip, byte-order marks, one-line errors (qrels too)."""

from __future__ import annotations

import gzip
import json

import pytest

from stages.lib.data.corpus import read_corpus
from stages.lib.data.qrels import read_qrels
from stages.lib.data.questions import read_questions
from tests.stages.lib.data.files_helpers import raises, write


def test_single_pretty_printed_object_is_explained(tmp_path):
    p = write(tmp_path / "squad.json", json.dumps({"data": [1], "version": "1"}, indent=2))
    raises(["squad.json line 1", "single JSON object", "data"], read_questions, p)


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


BAD_LINES = [   # (the line after a good first one, what the message says); "at at column" was
    # json's own "Invalid control character at" / "Unterminated string starting at" + " at column"
    (b'{"id": "2", "q": "a",}\n', "a trailing ',' before the '}' at column 22, which JSON does "
                                  "not allow"),
    (b'{"id": "2", "q": "abc\n', "a string still open at the end of the line, column 22: its "
                                 "closing quote is missing, or it holds a raw line break"),
    (b'{"id": "2", "q": "abc', "the string that opens at column 18 never closes"),
    (b'{"id": "2"} {"id": "3"}\n', "more text after the JSON value at column 13"),
    (b'{"id": "2", "q": "a\tb"}\n', "a raw control character U+0009 in a string at column 20, "
                                    "which JSON does not allow: escape it, a tab as \\t"),
    (b'{"id": "2", "q": \n', "the line ends inside the JSON value: the record is cut off"),
    (b'{"id" "2"}\n', "expecting ':' delimiter at column 7"),
    (b'{"id": "2", "q": "caf\xe9"}\n', "not UTF-8 text (byte 0xE9 at column 22: invalid "
                                      "continuation byte)"),
]


@pytest.mark.parametrize("line, expected", BAD_LINES)
def test_malformed_json_lines_read_cleanly(tmp_path, line, expected):
    from stages.lib.data.files import iter_json_records

    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"id": "1"}\n' + line)
    msg = raises(["bad.jsonl line 2: ", expected], list, iter_json_records(p))
    assert " at at " not in msg and "(Expecting" not in msg, msg


def test_malformed_json_arrays_read_cleanly(tmp_path):
    from stages.lib.data.files import iter_json_records

    p = write(tmp_path / "bad.json", '[{"id": "1"},\n {"id": "2", "q": "abc\n"}]\n')
    raises(["bad.json line 2: invalid JSON (a string still open at the end of the line, column 23"],
           list, iter_json_records(p))
    p = write(tmp_path / "cut.json", '[{"id": "1"},\n {"id": "2", "q": ')
    raises(["cut.json line 2: invalid JSON (the file ends inside the JSON value: the record is "
            "cut off)"], list, iter_json_records(p))
    p = write(tmp_path / "comma.json", '[{"id": "1"},\n {"id": "2",\n }]')
    raises(["comma.json line 3: invalid JSON (a trailing ',' before the '}' at column 2, which "
            "JSON does not allow)"], list, iter_json_records(p))


def test_a_parquet_or_gzip_file_under_a_text_name_is_named_for_what_it_is(tmp_path):
    """Before: "line 1: not UTF-8 text …; re-encode the file as UTF-8", which cannot help."""
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    from stages.lib.data.files import iter_json_records

    pq.write_table(pa.table({"id": ["1"]}), tmp_path / "corpus.jsonl")
    raises([f"{tmp_path / 'corpus.jsonl'}: a Parquet file, not text; name it corpus.parquet"],
           list, iter_json_records(tmp_path / "corpus.jsonl"))
    (tmp_path / "q.jsonl").write_bytes(gzip.compress(b'{"id": "1"}\n'))
    raises([f"{tmp_path / 'q.jsonl'}: gzip-compressed, not text; name it q.jsonl.gz"],
           list, iter_json_records(tmp_path / "q.jsonl"))
