"""A DPR question file whose question starts with a quoted word (data audit of session 43, a
lesser note): the strict CSV reader refused the line ("'<TAB>' expected after '\"'"), where
DPR's own csv.reader reads it; now a TSV is read as DPR reads it. A CSV stays strict."""

from __future__ import annotations

from stages.lib.data.questions import read_questions
from tests.stages.lib.data.files_helpers import raises, write


def test_a_question_starting_with_a_quoted_word_is_read_as_dpr_reads_it(tmp_path):
    p = write(tmp_path / "trivia-test.qa.csv",
              'which river flows through paris\t["Seine"]\n'
              '"Hello" was a 2015 hit for which singer\t["Adele"]\n')
    rows = read_questions(p)
    assert [(r["question"], r["answers"]) for r in rows] == [
        ("which river flows through paris", ["Seine"]),
        ("Hello was a 2015 hit for which singer", ["Adele"])]   # csv.reader drops the quotes


def test_a_csv_still_names_a_broken_quote(tmp_path):
    p = write(tmp_path / "q.csv", 'question,answers\nok,1\n"never closes,2\n')
    raises([f"{p} line 3: cannot read as CSV (a quoted cell opens and never closes)"],
           read_questions, p)
