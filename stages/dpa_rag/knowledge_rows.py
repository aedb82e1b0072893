"""A ``Knowledge`` table one query at a time: the rows of each query's documents, streamed.

The preference stage writes a query's documents together (one row per retrieved document, in
rank order), so a step reading the knowledge holds one query's rows at a time, not the whole
table: at the paper's scale (about 212,000 queries x 100 documents, 21 million rows) the table
as Python rows took about 72 GB (memory audit of session 44). A query whose rows are not together is
refused, naming it, rather than split in two.
"""

from __future__ import annotations

from typing import Iterator

from orchestrator.api import DataError
from stages.dpa_rag.schemas import Knowledge


def queries(knowledge: Knowledge) -> Iterator[tuple[str, list[dict]]]:
    """``(query id, its rows)`` for each query, in the table's order.

    >>> rows = [{"id": "a", "rank": 1}, {"id": "a", "rank": 2}, {"id": "b", "rank": 1}]
    >>> [(qid, [r["rank"] for r in docs]) for qid, docs in grouped(rows, "knowledge")]
    [('a', [1, 2]), ('b', [1])]
    """
    yield from grouped(knowledge.iter_rows(), knowledge.ref.producer or "the knowledge table")


def grouped(rows, where: str) -> Iterator[tuple[str, list[dict]]]:
    """Runs of consecutive rows with one ``id``; DataError when an id comes back later."""
    done: set[str] = set()
    current, docs = None, []
    for row in rows:
        if row["id"] != current:
            if docs:
                yield current, docs
                done.add(current)
            if row["id"] in done:
                raise DataError(f"{where}: the documents of query '{row['id']}' are not "
                                f"together in the table (a preference step writes each "
                                f"query's documents in one run)",
                                hint="compute the knowledge again with the preference step")
            current, docs = row["id"], []
        docs.append(row)
    if docs:
        yield current, docs
