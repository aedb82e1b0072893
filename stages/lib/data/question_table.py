"""Question rows as a ``Questions`` table, converted a batch of rows at a time.

DynamicRAG's released training file holds 150,000 questions with 40 retrieved passages each
(5.48 GB of JSON lines). Held whole as Python objects and then converted, a file of that shape
took 3.1-3.9 times its size in memory at the peak; converted a batch at a time while it is read,
only one batch is ever Python objects, and the peak is about 1.3 times the file, mostly the Arrow
table itself (``bench/bench_load.py``, figures in bench/README.md).

Columns beyond ``Questions``' own are added when some row has them (``ctxs``,
``retrieved_question``, ARC's ``choices``, ...), in one fixed order, so a batch without them
and a batch with them make one table: where a row lacks a list column it holds ``[]``, except
``ctxs``, which stays null (no passages shipped, unlike ``ctxs: []``); other columns are null.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from stages.schemas import CTX, Questions

BATCH_ROWS = 2_000   # rows held as Python objects at a time (40 passages each: about 60 MB)


def optional_fields():
    """The columns a question row may add to ``Questions``' own, in table order."""
    import pyarrow as pa

    return [pa.field("retrieved_question", pa.string()),    # DynamicRAG's retrieval query
            pa.field("ctxs", pa.list_(CTX)),                 # passages shipped with the question
            pa.field("choices", pa.list_(pa.string())),      # ARC / OBQA: options in label order
            pa.field("context", pa.string()),                # a set's own inputs (RAG-Instruct:
            pa.field("instruction", pa.string()),            # PubMedQA, ConvFinQA)
            pa.field("previous_question", pa.list_(pa.string())),
            pa.field("qa_pairs", pa.list_(pa.list_(pa.string()))),   # ASQA: ALCE's references
            pa.field("long_answers", pa.list_(pa.string()))]


def questions_table(rows: list[dict]):
    """Question rows as a Questions table with the optional columns some row has.

    >>> t = questions_table([{"id": "1", "dataset": "nq", "question": "q?", "answers": ["a"],
    ...                       "gold": [], "ctxs": []}])
    >>> t.column_names[-1], t.column("ctxs").to_pylist()
    ('ctxs', [[]])
    """
    import pyarrow as pa

    from stages.lib.data.tables import to_table

    wanted = [f for f in optional_fields() if any(f.name in r for r in rows)]
    return to_table(rows, pa.schema(list(Questions.schema) + wanted), keep_null=("ctxs",))


def questions_table_in_batches(rows: Iterable[dict], batch_rows: int = BATCH_ROWS):
    """:func:`questions_table` of ``rows``, converting ``batch_rows`` of them at a time, so
    that only one batch is held as Python objects (``rows`` may be a reader's iterator).

    >>> rows = [{"id": "1", "dataset": "nq", "question": "q?", "answers": ["a"], "gold": []},
    ...         {"id": "2", "dataset": "nq", "question": "r?", "answers": ["b"], "gold": [],
    ...          "choices": ["x", "y"], "ctxs": [{"title": "T", "text": "t"}]}]
    >>> t = questions_table_in_batches(iter(rows), batch_rows=1)
    >>> t.column("choices").to_pylist(), t.column("ctxs").null_count
    ([[], ['x', 'y']], 1)
    >>> t.equals(questions_table(rows))
    True
    """
    import pyarrow as pa

    rows = iter(rows)
    tables = []
    while batch := list(islice(rows, batch_rows)):
        tables.append(questions_table(batch))
    if not tables:
        return questions_table([])
    present = {name for t in tables for name in t.column_names}
    schema = pa.schema(list(Questions.schema)
                       + [f for f in optional_fields() if f.name in present])
    return pa.concat_tables([_with_columns(t, schema) for t in tables])


def _with_columns(table, schema):
    """``table`` with every column of ``schema``, in its order: a list column it lacks holds
    ``[]`` in each row (``ctxs``: null), any other one null."""
    import pyarrow as pa

    n = table.num_rows
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name))
        elif pa.types.is_list(field.type) and field.name != "ctxs":
            columns.append(pa.array([[]] * n, field.type))
        else:
            columns.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
