"""Corpus readers: DPR TSV, JSONL, FlashRAG, BEIR, Parquet; one-line errors naming file and line."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.errors import ConfigError
from stages.lib.data.corpus import (detect_corpus_format, passage_from_record, read_corpus,
                                    read_corpus_table)
from tests.stages.lib.data.files_helpers import jsonl, raises, write

PASSAGE = [{"id": "1", "title": "Aaron", "text": 'Aaron ( or ; "Ahärôn") is a prophet.'},
           {"id": "2", "title": "Moses", "text": "Moses led the Israelites."}]


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
    raises(["keys.jsonl line 1", "cannot tell the corpus format", "corpus_format:"],
           read_corpus, p)

    # JSON lines named .parquet (or forced to parquet): the file, what it must be, what to do
    p = write(tmp_path / "fake.parquet", '{"id": "1", "text": "a"}\n')
    raises(["fake.parquet: cannot read as Parquet", "name it .jsonl"], read_corpus, p)
    raises(["fake.jsonl: cannot read as Parquet"], read_corpus,
           write(tmp_path / "fake.jsonl", '{"id": "1", "text": "a"}\n'), format="parquet")

    p = write(tmp_path / "list.jsonl", "[1, 2]\n")
    raises(["list.jsonl line 1", "expected a JSON object"], read_corpus, p)


def test_corpus_empty_missing_and_unknown_format(tmp_path):
    for name in ("empty.jsonl", "empty.tsv", "blank.jsonl"):
        p = write(tmp_path / name, "\n\n" if name.startswith("blank") else "")
        raises([name, "line 1", "the file is empty"], read_corpus, p)
    raises(["nope.jsonl", "no such file"], read_corpus, tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="did you mean 'flashrag'"):
        read_corpus(jsonl(tmp_path / "c.jsonl", PASSAGE), format="flashrg")


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


def test_doctests():
    import doctest

    from stages.lib.data import corpus

    assert doctest.testmod(corpus).failed == 0


def test_a_saved_hugging_face_dataset_is_a_corpus(tmp_path):
    """A corpus saved with ``save_to_disk`` (the columns a Parquet corpus may have) reads from
    its Arrow files; before, a folder was a corpus only as a BEIR folder."""
    import datasets

    datasets.Dataset.from_list([{"docid": 7, "title": "A", "text": "alpha", "url": "u"},
                                {"docid": 8, "title": "B", "text": "beta", "url": "v"},
                                {"docid": 7, "title": "C", "text": "gamma", "url": "w"}]
                               ).save_to_disk(str(tmp_path / "wiki"))
    assert detect_corpus_format(tmp_path / "wiki") == "dataset"
    assert read_corpus(tmp_path / "wiki", max_passages=2) == [
        {"id": "7", "title": "A", "text": "alpha"}, {"id": "8", "title": "B", "text": "beta"}]
    raises([f"{tmp_path / 'wiki'} row 3: passage id '7' repeats (first on row 1)"],
           read_corpus, tmp_path / "wiki")
    raises([f"{tmp_path}: not a dataset saved with save_to_disk (no state.json)"],
           read_corpus, tmp_path, format="dataset")
    arrow = tmp_path / "wiki" / "data-00000-of-00001.arrow"
    arrow.write_bytes(arrow.read_bytes()[:-200])   # cut short (a copy that stopped)
    raises([f"{arrow}: cannot read as an Arrow stream (", "save the dataset again with "
            "save_to_disk"], read_corpus, tmp_path / "wiki")
    arrow.write_bytes(b"not arrow at all")
    raises([f"{arrow}: cannot read as an Arrow stream ("], read_corpus, tmp_path / "wiki")
    datasets.Dataset.from_list([]).save_to_disk(str(tmp_path / "empty"))
    raises([f"{tmp_path / 'empty'}: the saved dataset has no rows"], read_corpus,
           tmp_path / "empty", format="dataset")
