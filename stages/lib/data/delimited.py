"""Records from a CSV or TSV file, in one of two layouts told apart by the first row.

- **DPR's question files** (``nq-test.qa.csv``, ``trivia-test.qa.csv``, ...; what DPR,
  Contriever and Atlas evaluate on): no header, two tab-separated cells per line, the question
  and its answers written as a Python list (``who wrote hamlet<TAB>['William Shakespeare']``).
  DPR reads the list with ``eval``, which runs whatever the cell holds; here it is parsed as a
  literal (JSON, else :func:`ast.literal_eval`) and nothing in it is run.
- **A table with a header row** (``question,answers,id``, as pandas' ``to_csv`` writes it): one
  record per row, keyed by the header. A cell that holds a list literal (``["a", "b"]`` or
  pandas' ``['a', 'b']``) is that list, any other cell its text; an empty cell is left out, as
  a field the record does not have.

The delimiter is a tab when the first line holds one, else a semicolon when it holds one and no
comma (Excel's CSV where the decimal mark is a comma), else a comma, whatever the file's
extension (DPR's ``.qa.csv`` files are tab-separated). Quoting is the ``csv`` module's (a cell in
double quotes may hold the delimiter or a line break). Lines are numbered as in the file.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.api import DataError
from stages.lib.data.files import empty_error, first_line, numbered_lines

DPR_LAYOUT = "DPR's question<TAB>['answer', ...] with no header"


def list_cell(text: str) -> list | None:
    """The list a cell holds, or None when it holds none.

    >>> list_cell("['Paris', \\"Paris, France\\"]"), list_cell('["a", 1]'), list_cell("Paris")
    (['Paris', 'Paris, France'], ['a', 1], None)
    >>> list_cell("[not a list"), list_cell("[__import__('os')]")   # parsed, never run
    (None, None)
    """
    s = text.strip()
    if not (s.startswith("[") and s.endswith("]")):
        return None
    try:
        value = json.loads(s)
    except ValueError:
        try:
            value = ast.literal_eval(s)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, list) else None


def iter_delimited_records(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of each non-blank row of a CSV or TSV file (see module doc)."""
    first_no, first = first_line(path)
    if not first_no:
        raise empty_error(path, f"{what}: a header row, or {DPR_LAYOUT}")
    delimiter = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    kind = {"\t": "TSV", ";": "semicolon-separated CSV"}.get(delimiter, "CSV")
    # a TSV is read as DPR reads its *.qa.csv (csv.reader, not strict): a question that starts
    # with a quoted word ('"Hello" was a hit for...') is read, not refused; a CSV strictly
    reader = csv.reader((line for _, line in numbered_lines(path)), delimiter=delimiter,
                        strict=delimiter != "\t")
    header: list[str] | None = None
    start, rows = 1, 0
    try:
        for row in reader:
            line_no, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _header(path, line_no, row)
                if header:
                    continue
            rows += 1
            yield line_no, (_dpr_record(path, line_no, row) if not header
                            else _table_record(path, line_no, row, header))
    except csv.Error as err:
        problem = ("a quoted cell opens and never closes" if "end of data" in str(err)
                   else str(err))
        raise DataError(f"{path} line {start}: cannot read as {kind} ({problem}); "
                        "fix that line") from None
    if not rows:
        raise DataError(f"{path}: a header row ({', '.join(header or [])}) and no {what} after "
                        f"it; expected one row per record, or {DPR_LAYOUT}")


def _header(path: Path, line_no: int, row: list[str]) -> list[str]:
    """The column names the first row gives, or ``[]`` for DPR's layout (a question and a list)."""
    if len(row) == 2 and list_cell(row[1]) is not None:
        return []
    names = [cell.strip() for cell in row]
    bad = next((n for n in names if not n or names.count(n) > 1), None)
    if bad is not None:
        raise DataError(f"{path} line {line_no}: the header row has "
                        f"{'an empty column name' if not bad else f'the column {bad!r} twice'}; "
                        f"expected a header naming each column once (question, answers, ...), "
                        f"or {DPR_LAYOUT}")
    return names


def _dpr_record(path: Path, line_no: int, row: list[str]) -> dict[str, Any]:
    answers = list_cell(row[1]) if len(row) == 2 else None
    if answers is None:
        got = _cells(len(row)) if len(row) != 2 else f"answers {row[1][:60]!r}"
        raise DataError(f"{path} line {line_no}: expected {DPR_LAYOUT}, as on line 1; got "
                        f"{got}; fix that line")
    return {"question": row[0], "answers": answers}


def _table_record(path: Path, line_no: int, row: list[str], header: list[str]) -> dict[str, Any]:
    if len(row) != len(header):
        raise DataError(f"{path} line {line_no}: {_cells(len(row))} where the header names "
                        f"{len(header)} ({', '.join(header)}); quote a cell that holds the "
                        "delimiter, or fix that line")
    record: dict[str, Any] = {}
    for name, cell in zip(header, row):
        if cell.strip():
            as_list = list_cell(cell)
            record[name] = cell if as_list is None else as_list
    return record


def _cells(n: int) -> str:
    return f"{n} cell{'' if n == 1 else 's'}"
