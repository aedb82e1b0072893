"""Relevance judgments (BEIR ``qrels/*.tsv``, TREC qrels) and merging them into questions'
``gold`` passage ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from orchestrator.api import DataError
from stages.lib.data.files import check_file, empty_error, numbered_lines


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read relevance judgements: BEIR ``qrels/{split}.tsv`` or TREC qrels.

    BEIR: tab-separated ``query-id, corpus-id, score`` with a header row. TREC: whitespace-separated
    ``qid 0 docid rel``. Returns ``{query id: {doc id: grade}}`` (the BEIR/pytrec_eval shape).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "test.tsv"
    >>> _ = p.write_text("query-id\\tcorpus-id\\tscore\\nq1\\td7\\t1\\n")
    >>> read_qrels(p)
    {'q1': {'d7': 1}}
    """
    path = check_file(path)
    qrels: dict[str, dict[str, int]] = {}
    data_lines = 0
    for line_no, line in numbered_lines(path):
        if not line.strip():
            continue
        data_lines += 1
        cells = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
        if len(cells) == 4:  # TREC: qid iter docid rel
            cells = [cells[0], cells[2], cells[3]]
        if len(cells) != 3:
            raise DataError(f"{path} line {line_no}: expected 3 tab-separated columns query-id, "
                            f"corpus-id, score (or TREC 'qid 0 docid rel'), got {len(cells)}; "
                            "fix the line")
        qid, did, score = (c.strip() for c in cells)
        try:
            grade = int(float(score))
        except ValueError:
            if data_lines == 1:
                continue  # the header row: query-id, corpus-id, score
            raise DataError(f"{path} line {line_no}: relevance score '{score}' is not a number; "
                            "expected an integer grade such as 1") from None
        qrels.setdefault(qid, {})[did] = grade
    if not data_lines:
        raise empty_error(path, "qrels: query-id, corpus-id, score")
    if not qrels:
        raise DataError(f"{path} line 2: no relevance judgements after the header (expected "
                        "query-id, corpus-id, score rows); check the qrels file")
    return qrels


def merge_qrels(questions: Iterable[dict], qrels: dict[str, dict[str, int]],
                min_score: int = 1) -> Iterator[dict]:
    """Add the ids of passages judged relevant (grade >= ``min_score``) to each question's ``gold``,
    a question at a time (the load step converts a large file as it is read).

    Existing gold ids are kept first; question rows are copied, not modified.

    >>> list(merge_qrels([{"id": "q1", "gold": ["d1"]}], {"q1": {"d7": 1, "d8": 0}}))
    [{'id': 'q1', 'gold': ['d1', 'd7']}]
    """
    for q in questions:
        rel = [d for d, g in qrels.get(q["id"], {}).items() if g >= min_score]
        yield {**q, "gold": list(dict.fromkeys(list(q.get("gold") or []) + rel))}
