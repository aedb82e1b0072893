"""Data audit 43, findings 4 and 11: the JSON and Parquet readers and the binary-file check."""

from __future__ import annotations

import bz2
import json
import lzma
import zipfile

import pytest

from stages.lib.data.corpus import read_corpus
from stages.lib.data.questions import read_questions
from tests.stages.lib.data.files_helpers import raises, write


def test_nan_in_json_is_a_missing_value(tmp_path):
    """Data audit 43, finding 4: a question table dumped with ``json.dumps`` (pandas' missing
    value written as ``NaN``) was read, and the question scored against the gold answer "nan".
    A NaN is now null: a missing answer is named as one, a missing gold id is none."""
    p = write(tmp_path / "pandas_dump.jsonl",
              '{"id": "q1", "question": "Who wrote Hamlet?", "answer": "Shakespeare"}\n'
              '{"id": "q2", "question": "Capital of Spain?", "answer": NaN, "gold": NaN}\n')
    raises(["pandas_dump.jsonl line 2", "missing answers"], read_questions, p)
    rows = read_questions(p, require_answers=False)
    assert [(r["answers"], r["gold"]) for r in rows] == [(["Shakespeare"], []), ([], [])]


def test_nan_in_a_json_array_or_a_file_of_sets_is_missing_and_text_nan_is_text(tmp_path):
    """Data audit 43, finding 4: the same in a pretty-printed array, a one-line array and a
    file of sets (one JSON object over many lines); a "NaN" inside a string stays text."""
    records = [{"id": "q1", "question": "NaN?", "answers": ["NaN"]},
               {"id": "q2", "question": "b", "answers": ["x", float("nan")]}]
    for name, text in (("a.json", json.dumps(records, indent=1)),
                       ("one.json", json.dumps(records))):
        rows = read_questions(write(tmp_path / name, text))
        assert [r["answers"] for r in rows] == [["NaN"], ["x"]], name
    sets = write(tmp_path / "sets.json", '{"popqa": [\n {"question": "a", "answers": ["x"]},\n'
                                         ' {"question": "b", "answers": NaN}\n]}\n')
    raises(["sets.json set 'popqa' element 2", "missing answers"], read_questions, sets)


def test_a_nan_in_a_parquet_float_column_is_a_missing_value(tmp_path):
    """Data audit 43, finding 4: a Parquet float column's NaN (pyarrow keeps one it is given)
    became the answer "nan"; now it is missing, as a null is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "q.parquet"
    pq.write_table(pa.table({"id": ["q1", "q2"], "question": ["a", "b"],
                             "answer": [1.5, float("nan")]}), p)
    raises(["q.parquet row 2", "missing answers"], read_questions, p)
    rows = read_questions(p, require_answers=False)
    assert [r["answers"] for r in rows] == [["1.5"], []]


def _bzip2(path, data):
    path.write_bytes(bz2.compress(data))


def _xz(path, data):
    path.write_bytes(lzma.compress(data))


def _zstd(path, data):
    path.write_bytes(b"\x28\xb5\x2f\xfd\x24\x21\x09\x01\x00" + data)   # a zstd frame's header


def _zip(path, data):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("eval.jsonl", data)


@pytest.mark.parametrize("name, pack, expected", [
    ("eval.jsonl.bz2", _bzip2, ["bzip2-compressed", "bunzip2 -k eval.jsonl.bz2", "eval.jsonl.gz"]),
    ("eval.jsonl.xz", _xz, ["xz-compressed", "unxz -k eval.jsonl.xz", "eval.jsonl.gz"]),
    ("eval.jsonl.zst", _zstd, ["zstd-compressed", "unzstd eval.jsonl.zst", "eval.jsonl.gz"]),
    ("eval.zip", _zip, ["a zip archive", "unzip eval.zip", "the file inside"]),
    ("eval.jsonl", _bzip2, ["bzip2-compressed", "rename it eval.jsonl.bz2"]),
])
def test_compressed_files_are_named_as_such(tmp_path, name, pack, expected):
    """Data audit 43, finding 11: a .bz2/.xz/.zst/.zip file was "not UTF-8 text ...; re-encode
    the file as UTF-8", which cannot help; now it says what it is and how to unpack it."""
    records = "".join(json.dumps({"question": f"q{i}", "answers": ["a"]}) + "\n" for i in range(50))
    pack(tmp_path / name, records.encode())
    msg = raises([name, *expected, "read as is"], read_questions, tmp_path / name)
    assert "re-encode" not in msg
    if name.endswith(".bz2"):
        raises(["bzip2-compressed"], read_corpus, tmp_path / name)


def test_a_text_line_starting_bzh_is_text(tmp_path):
    """Data audit 43, finding 11: bzip2's magic is checked whole, so that a TSV corpus whose
    first id starts "BZh" is still read as text."""
    p = write(tmp_path / "psgs.tsv", "BZh91\tsome text\tTitle\n")
    assert read_corpus(p)[0]["id"] == "BZh91"


def test_a_nan_in_a_parquet_corpus_column_is_a_missing_value(tmp_path):
    """Data audit 43, finding 4 (the corpus's Parquet path): a float title column's NaN was the
    title "nan"; a NaN text is named as a passage without text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "title": [1.0, float("nan")],
                             "text": ["x", "y"]}), p)
    assert [r["title"] for r in read_corpus(p)] == ["1", ""]   # as Arrow casts 1.0
    pq.write_table(pa.table({"id": ["a", "b"], "text": [1.0, float("nan")]}), p)
    raises(["corpus.parquet row 2: passage has no text"], read_corpus, p)
