"""Question rows converted a batch at a time make the table (and the bytes) of one conversion."""

from __future__ import annotations

import pytest

from orchestrator.artifacts import write_artifact
from stages.lib.data.question_table import questions_table, questions_table_in_batches
from stages.schemas import Questions


def _row(i: int, **extra) -> dict:
    return {"id": str(i), "dataset": "nq", "question": f"q{i}?", "answers": [f"a{i}"],
            "gold": [f"d{i}"] if i % 2 else [], **extra}


ROWS = [_row(0), _row(1, ctxs=[]), _row(2, retrieved_question="rq"),
        _row(3, choices=["A", "B"], ctxs=[{"id": "d1", "title": "T", "text": "t", "score": 0.5}]),
        _row(4, qa_pairs=[["x"], ["y"]], long_answers=["long"]),
        _row(5, context="c", instruction="i", previous_question=["p"]), _row(6)]


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 7, 100])
def test_batches_of_any_size_give_the_same_table_and_bytes(tmp_path, batch_rows):
    whole = questions_table(ROWS)
    batched = questions_table_in_batches(iter(ROWS), batch_rows=batch_rows)
    assert batched.schema == whole.schema
    assert batched.to_pylist() == whole.to_pylist()
    assert batched.column("ctxs").to_pylist()[:2] == [None, []]   # none shipped vs shipped none
    assert batched.column("choices").to_pylist()[0] == []         # a list column a row lacks
    a = write_artifact(whole, Questions, tmp_path / "a", "load.train", "k")
    b = write_artifact(batched, Questions, tmp_path / "b", "load.train", "k")
    assert a.content_hash == b.content_hash


def test_no_rows_give_the_bare_questions_table():
    table = questions_table_in_batches(iter([]))
    assert table.num_rows == 0 and table.schema == Questions.schema
