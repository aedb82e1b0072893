"""Relevance judgments (BEIR ``qrels/*.tsv``, TREC qrels) and merging them into questions'
``gold`` passage ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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


def qrels_mismatch(qrels: dict[str, dict[str, int]], question_ids: Sequence[str],
                   where: str, *, cut: bool = False) -> str | None:
    """The warning for qrels that judge none or few of the questions, else None. Their query ids
    must be the questions' ids, so qrels written for other ids (a file without ids numbers its
    questions 1, 2, ...) add no gold in silence. "Few": under half of the qrels' query ids and
    under half of the questions match (a BEIR folder's queries.jsonl holds every split's
    queries and its qrels/test.tsv judges some of them, but every qrels id matches), not
    reported when a limit ``cut`` the questions (max_eval: the first N need not be judged).

    >>> print(qrels_mismatch({"q1": {"d1": 1}, "q2": {"d2": 1}}, ["1", "2", "3"], "test.tsv"))
    ... # doctest: +NORMALIZE_WHITESPACE
    test.tsv: none of the 2 query ids of the qrels is the id of one of the 3 questions (qrels:
    'q1', ...; questions: '1', ...): no question gets a gold passage id from them; give the
    questions the qrels' query ids (field id, _id, qid, ...), or give qrels for the questions' ids
    >>> qrels_mismatch({"q1": {"d1": 1}}, ["q1", "q2", "q3"], "test.tsv") is None   # all judged
    True
    >>> qrels_mismatch({"q1": {}, "q2": {}, "q3": {}}, ["q1", "4", "5"], "t")[:62]
    't: only 1 of the 3 query ids of the qrels are ids of the 3 que'
    """
    ids = set(question_ids)
    matched = sum(q in ids for q in qrels)
    if not ids or (matched and (cut or matched * 2 >= len(qrels) or matched * 2 >= len(ids))):
        return None
    examples = (f"qrels: {next(q for q in qrels if q not in ids)!r}, ...; questions: "
                f"{next(q for q in question_ids if q not in qrels)!r}, ...")
    what, gets = ((f"none of the {len(qrels)} query ids of the qrels is the id of one of",
                   "no question gets a")
                  if not matched else
                  (f"only {matched} of the {len(qrels)} query ids of the qrels are ids of",
                   f"{len(ids) - matched} questions get no"))
    return (f"{where}: {what} the {len(ids)} questions ({examples}): {gets} gold passage id "
            "from them; give the questions the qrels' query ids (field id, _id, qid, ...), or "
            "give qrels for the questions' ids")
