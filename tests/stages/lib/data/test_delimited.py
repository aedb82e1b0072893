"""CSV and TSV question files: DPR's ``*.qa.csv`` (no header, answers as a Python list) and
tables with a header row. Before, both were refused ("questions are read from JSON lines, a JSON
array or Parquet, not .csv"), and DPR's evaluation files needed a conversion script."""

from __future__ import annotations

import gzip
import logging

import pytest

from stages.common.load_chat import alpaca_messages
from stages.lib.data.files import iter_records
from stages.lib.data.question_sets import read_question_sets
from stages.lib.data.questions import read_questions
from tests.stages.lib.data.files_helpers import jsonl, raises, write

# two lines of DPR's nq-test.qa.csv, and one with the quoting its csv.reader undoes
DPR_NQ = ("who got the first nobel prize in physics\t['Wilhelm Conrad Röntgen']\n"
          "when is the next deadpool movie being released\t['May 18, 2018']\n"
          '"who said ""to be or not to be"""\t["William Shakespeare", \'Shakespeare\']\n')


def test_dpr_qa_csv_is_read_as_released(tmp_path):
    rows = read_questions(write(tmp_path / "nq-test.qa.csv", DPR_NQ))
    assert rows == [
        {"id": "1", "dataset": "nq-test", "question": "who got the first nobel prize in physics",
         "answers": ["Wilhelm Conrad Röntgen"], "gold": []},
        {"id": "2", "dataset": "nq-test",
         "question": "when is the next deadpool movie being released", "answers": ["May 18, 2018"],
         "gold": []},
        {"id": "3", "dataset": "nq-test", "question": 'who said "to be or not to be"',
         "answers": ["William Shakespeare", "Shakespeare"], "gold": []}]


def test_a_folder_of_dpr_sets_beside_jsonl(tmp_path):
    folder = tmp_path / "eval_data"
    folder.mkdir()
    write(folder / "nq-test.qa.csv", DPR_NQ)
    with gzip.open(folder / "trivia-test.qa.csv.gz", "wt", encoding="utf-8") as f:
        f.write("Which Lloyd Webber musical premiered in the US in 1994?\t['Sunset Boulevard']\n")
    jsonl(folder / "hotpotqa.jsonl", [{"id": "h1", "question": "q", "answers": ["a"]}])
    rows = read_question_sets(folder)
    assert [(r["id"], r["dataset"]) for r in rows] == [
        ("hotpotqa/h1", "hotpotqa"), ("nq-test/1", "nq-test"), ("nq-test/2", "nq-test"),
        ("nq-test/3", "nq-test"), ("trivia-test/1", "trivia-test")]
    assert rows[-1]["answers"] == ["Sunset Boulevard"]


def test_a_table_with_a_header_as_pandas_writes_it(tmp_path, caplog):
    """Columns by name, in any order; a list cell (pandas writes a list as its repr) is a list,
    a plain cell one answer; an empty cell is a field the record does not have."""
    p = write(tmp_path / "mine.csv",
              'answers,question,id,note\n'
              '"[\'Paris\', \'Paris, France\']","capital of France, please?",q7,x\n'
              '42,what is six times seven,q8,\n')
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.questions"):
        rows = read_questions(p)
    assert rows == [
        {"id": "q7", "dataset": "mine", "question": "capital of France, please?",
         "answers": ["Paris", "Paris, France"], "gold": []},
        {"id": "q8", "dataset": "mine", "question": "what is six times seven",
         "answers": ["42"], "gold": []}]
    assert "dropped: note (in 1 of 2 records)" in caplog.text
    tsv = write(tmp_path / "mine.tsv", "question\tanswers\tgold\nq\t[\"a\"]\t['p1', 'p2']\n")
    assert read_questions(tsv)[0]["gold"] == ["p1", "p2"]
    # Excel where the decimal mark is a comma: semicolons, a byte-order mark, CRLF line ends
    excel = tmp_path / "excel.csv"
    excel.write_bytes("\ufeffquestion;answers\r\n\"two\r\nlines?\";\"1,5\"\r\n".encode())
    assert [(r["id"], r["question"], r["answers"]) for r in read_questions(excel)] == [
        ("2", "two\r\nlines?", ["1,5"])]


def test_an_alpaca_table_feeds_the_sft_mix(tmp_path):
    p = write(tmp_path / "alpaca.csv", 'instruction,input,output\nAdd.,2+2,4\n"Say hi.",,hi\n')
    unit, records = iter_records(p, "instruction records")
    assert unit == "line"
    got = [alpaca_messages(rec, f"line {n}") for n, rec in records]
    assert got[1] == [{"role": "user", "content": "Say hi."},
                      {"role": "assistant", "content": "hi"}]


def test_a_list_cell_is_parsed_never_run(tmp_path):
    """DPR reads the answers cell with ``eval``; a cell that is code is refused here, not run."""
    marker = tmp_path / "ran"
    p = write(tmp_path / "nq-test.qa.csv",
              f"q\t['a']\nq2\t[open({str(marker)!r}, 'w')]\n")
    raises([f"{p} line 2: expected DPR's question<TAB>['answer', ...] with no header, as on line "
            f"1; got answers \"[open("], read_questions, p)
    assert not marker.exists()


BAD = [
    ("q.csv", "question,answers\nok,1\nx,y,z\n",
     " line 3: 3 cells where the header names 2 (question, answers); quote a cell that holds the "
     "delimiter, or fix that line"),
    ("open.csv", 'question,answers\nok,1\n"never closes,2\n',
     " line 3: cannot read as CSV (a quoted cell opens and never closes); fix that line"),
    ("dpr.qa.csv", "q\t['a']\nq2\t['b']\textra\n",
     " line 2: expected DPR's question<TAB>['answer', ...] with no header, as on line 1; got 3 "
     "cells; fix that line"),
    ("twice.tsv", "question\tanswers\tquestion\n",
     " line 1: the header row has the column 'question' twice; expected a header naming each "
     "column once"),
    ("header_only.csv", "question,answers\n\n",
     ": a header row (question, answers) and no questions after it"),
    ("no_header.csv", "who wrote hamlet,Shakespeare\nwhat,you\n",   # the first row: a header
     " line 1: read as the header (who wrote hamlet, Shakespeare), which names no field the "
     "reader takes; add a header row such as question,answers"),
]


@pytest.mark.parametrize("name, text, problem", BAD, ids=[b[0] for b in BAD])
def test_bad_rows_name_the_file_and_line(tmp_path, name, text, problem):
    p = write(tmp_path / name, text)
    raises([f"{p}{problem}"], read_questions, p)
