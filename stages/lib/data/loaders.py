"""Readers for the corpus and question formats the RAG seeds and toolkits use.

Everything is normalised to the canonical rows of :mod:`stages.schemas`:

- passages ``{id, title, text}`` from DPR ``psgs_w100.tsv`` (``id, text, title``; note column 1 is
  the text), plain JSONL ``{id, title, text}``, FlashRAG JSONL ``{id, contents}`` (first line of
  ``contents`` is the title, quotes stripped), BEIR ``corpus.jsonl`` ``{_id, title, text}`` and
  Parquet;
- questions ``{id, dataset, question, answers: [str], gold: [str]}`` (plus ``ctxs`` when the file
  already carries retrieved passages) from JSONL or a JSON array in the FlashRAG, DPR, Self-RAG,
  DynamicRAG, ALCE/ASQA and BEIR shapes.

Big corpora are read with pyarrow (multi-threaded, no per-row Python); rows come back as a
``pyarrow.Table`` from :func:`read_corpus_table` or as dicts from :func:`read_corpus`. Bad input
raises :class:`~orchestrator.errors.DataError` whose one-line message names the file, the line,
what was expected and what to do::

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "q.jsonl"
    >>> _ = p.write_text('{"id": "nq_1", "question": "who?", "golden_answers": ["Ann"]}\\n')
    >>> read_questions(p)
    [{'id': 'nq_1', 'dataset': 'nq', 'question': 'who?', 'answers': ['Ann'], 'gold': []}]
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.api import DataError

log = logging.getLogger(__name__)

CORPUS_FORMATS = ("dpr", "jsonl", "flashrag", "beir", "parquet")
_FORMAT_ALIASES = {"tsv": "dpr", "psgs_w100": "dpr", "json": "jsonl", "ndjson": "jsonl",
                   "pq": "parquet"}

# Field names accepted for each canonical field, first match wins.
QUESTION_KEYS = ("question", "Question", "query", "instruction", "text")
ANSWER_KEYS = ("answers", "golden_answers", "answer", "output")
CTX_KEYS = ("ctxs", "docs", "retrieval_ctxs", "retrieval_result")
ID_KEYS = ("id", "_id", "qid", "q_id")
DOC_ID_KEYS = ("id", "_id", "doc_id", "docid", "passage_id")
DATASET_KEYS = ("dataset", "source")
# File stems that name a split rather than a dataset (FlashRAG's ``{dataset}/{split}.jsonl``).
SPLIT_NAMES = {"train", "dev", "test", "val", "valid", "validation", "eval", "queries", "questions"}

_ID_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]*)[_\-:]")


# --------------------------------------------------------------------------- files



def _first_rows(reader, n: int):
    """The first ``n`` rows of a streaming pyarrow reader, reading no further batch than needed."""
    import pyarrow as pa

    batches, seen = [], 0
    for batch in reader:
        batches.append(batch)
        seen += batch.num_rows
        if seen >= n:
            break
    return pa.Table.from_batches(batches, reader.schema).slice(0, n)

def _strip_gz(path: Path) -> str:
    """The lower-case suffix of ``path`` ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line (``\n``-separated, ending kept); a bad byte fails
    with its line number. Reads ``.gz`` transparently and drops a UTF-8 byte-order mark."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path} line {line_no}: not UTF-8 text ({err.reason} at column "
                                f"{err.start + 1}); re-encode the file as UTF-8") from None
            yield line_no, (line.lstrip("\ufeff") if line_no == 1 else line)


def _first_line(path: Path) -> tuple[int, str]:
    """The first non-blank line, or ``(0, "")`` for an empty file."""
    lines = _lines(path)
    try:
        return next(((n, line) for n, line in lines if line.strip()), (0, ""))
    finally:
        lines.close()


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path in the recipe")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file; point the input at the file itself")
    return path


def _empty(path: Path, expected: str) -> DataError:
    return DataError(f"{path} line 1: the file is empty (expected {expected}); "
                     "check that the file was fully written")


def _json_error(path: Path, line: int, err: json.JSONDecodeError) -> DataError:
    return DataError(f"{path} line {line}: invalid JSON ({err.msg} at column {err.colno}); "
                     "expected one JSON object per line; fix or remove that line")


def iter_json_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each record of a JSONL file or a JSON array file.

    The layout is sniffed from the first non-blank character (``[`` = array), not the extension:
    DynamicRAG's ``.json`` files are often JSON lines. JSONL is read one line at a time; blank lines
    are skipped. For an array, the line number is where the element starts.
    """
    path = _check_file(path)
    lines = _lines(path)
    try:
        first_line_no, first = next(((n, line) for n, line in lines if line.strip()), (0, ""))
        if not first_line_no:
            raise _empty(path, "JSON lines or a JSON array")
        if first.lstrip().startswith("["):
            text = first + "".join(line for _, line in lines)
            yield from _iter_json_array(path, text, first_line_no)
            return
        yield first_line_no, _parse_line(path, first_line_no, first, lines)
        for line_no, line in lines:
            if line.strip():
                yield line_no, _parse_line(path, line_no, line, None)
    finally:
        lines.close()


def _parse_line(path: Path, line_no: int, line: str, rest) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        if rest is not None and line.lstrip().startswith("{"):
            # The first line is not a whole object: maybe one pretty-printed JSON object.
            try:
                whole = json.loads(line + "".join(text for _, text in rest))
            except json.JSONDecodeError:
                whole = None
            if isinstance(whole, dict):
                keys = ", ".join(list(whole)[:5])
                raise DataError(
                    f"{path} line {line_no}: the file is a single JSON object (keys: {keys}); "
                    "expected JSON lines (one record per line) or a JSON array of records; "
                    "extract the list of records into its own file") from None
        raise _json_error(path, line_no, err) from None


def _iter_json_array(path: Path, text: str, start_line: int) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line, counted = start_line, 0
    n = len(text)
    ws = re.compile(r"\s*")
    pos = ws.match(text, pos).end()
    if pos < n and text[pos] == "]":
        raise _empty(path, "at least one record in the JSON array")
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {start_line + err.lineno - 1}: invalid JSON ({err.msg} at "
                            f"column {err.colno}); expected a JSON array of records; "
                            "fix the record") from None
        yield line, value
        pos = ws.match(text, end).end()
        if pos < n and text[pos] == ",":
            pos = ws.match(text, pos + 1).end()
            continue
        if pos < n and text[pos] == "]":
            return
        bad_line = line + text.count("\n", counted, pos)
        raise DataError(f"{path} line {bad_line}: invalid JSON (expected ',' or ']' after a record "
                        "of the array); fix the array syntax")


# --------------------------------------------------------------------------- corpus

PASSAGE_FIELDS = ("id", "title", "text")


def _passage_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])


def detect_corpus_format(path: str | Path) -> str:
    """Name the corpus format of ``path``: one of :data:`CORPUS_FORMATS`.

    ``.parquet`` is Parquet and ``.tsv`` is DPR; JSON files are told apart by their first record:
    ``contents`` → flashrag, ``_id`` → beir, ``id`` + ``text`` → jsonl.
    """
    path = _check_file(path)
    ext = _strip_gz(path)
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext == ".tsv":
        return "dpr"
    if ext not in (".jsonl", ".json", ".ndjson"):
        head = _first_line(path)[1].lstrip()
        if not head:
            raise _empty(path, "a corpus: DPR TSV, JSON lines or Parquet")
        if head[0] not in "[{":
            if "\t" in head:
                return "dpr"
            raise DataError(f"{path} line 1: cannot tell the corpus format from the extension "
                            f"'{ext or '(none)'}' or the content; expected .tsv (DPR), .jsonl or "
                            f".parquet; rename the file or set format: to one of "
                            f"{', '.join(CORPUS_FORMATS)}")
    for line_no, rec in iter_json_records(path):
        if not isinstance(rec, dict):
            raise DataError(f"{path} line {line_no}: expected a JSON object per passage, got "
                            f"{type(rec).__name__}; write one {{id, title, text}} object per line")
        if "contents" in rec and "text" not in rec:
            return "flashrag"
        if "_id" in rec:
            return "beir"
        if "text" in rec or "contents" in rec:
            return "jsonl"
        raise DataError(f"{path} line {line_no}: cannot tell the corpus format from the keys "
                        f"{sorted(rec)}; expected {{id, title, text}}, {{id, contents}} (FlashRAG) or "
                        "{_id, title, text} (BEIR); rename the keys or set format:")
    raise _empty(path, "a corpus")  # pragma: no cover - iter_json_records raises first


def _resolve_format(path: Path, format: str | None) -> str:
    if format is None or format == "auto":
        return detect_corpus_format(path)
    fmt = _FORMAT_ALIASES.get(format.lower(), format.lower())
    if fmt not in CORPUS_FORMATS:
        from orchestrator.errors import ConfigError, did_you_mean

        raise ConfigError(f"unknown corpus format '{format}'{did_you_mean(format, CORPUS_FORMATS)}; "
                          f"use one of {', '.join(CORPUS_FORMATS)} or leave it unset to detect it")
    return fmt


def read_corpus_table(path: str | Path, format: str | None = None,
                      max_passages: int | None = None, check_unique: bool = True):
    """Read a corpus into a ``pyarrow.Table`` with string columns ``id, title, text``.

    ``format`` forces one of :data:`CORPUS_FORMATS` (``tsv`` and ``json`` are aliases);
    ``max_passages`` keeps the first N (and stops reading there). ``check_unique`` rejects a
    corpus whose passage ids repeat (retrieval results could not be mapped back otherwise).
    """
    path = _check_file(path)
    fmt = _resolve_format(path, format)
    if fmt == "dpr":
        table = _read_dpr(path, max_passages)
    elif fmt == "parquet":
        table = _read_parquet(path, max_passages)
    else:
        table = _read_json_corpus(path, max_passages)
    if table.num_rows == 0:
        raise _empty(path, "at least one passage")
    if check_unique:
        _check_unique_ids(path, fmt, table)
    log.info("read %d passages from %s (format %s)", table.num_rows, path, fmt)
    return table


def read_corpus(path: str | Path, format: str | None = None,
                max_passages: int | None = None) -> list[dict]:
    """Read a corpus as a list of ``{id, title, text}`` dicts (see :func:`read_corpus_table`).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "psgs_w100.tsv"
    >>> _ = p.write_text('id\\ttext\\ttitle\\n1\\tAaron is a prophet.\\tAaron\\n')
    >>> read_corpus(p)
    [{'id': '1', 'title': 'Aaron', 'text': 'Aaron is a prophet.'}]
    """
    return read_corpus_table(path, format, max_passages).to_pylist()


def _read_dpr(path: Path, max_passages: int | None):
    """DPR TSV: ``id, text, title`` (header skipped when its first cell is ``id``)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    first = next(_lines(path), (0, ""))[1]
    if not first.strip():
        raise _empty(path, "a DPR TSV with columns id, text, title")
    cells = [c.strip().strip('"') for c in first.rstrip("\r\n").split("\t")]
    header = cells[0].lower() == "id"
    if header:
        names = [c.lower() for c in cells]
        if "text" not in names:
            raise DataError(f"{path} line 1: header {cells} has no 'text' column; expected the DPR "
                            "header id, text, title; fix the header")
    elif len(cells) in (2, 3):
        names = ["id", "text", "title"][: len(cells)]
    else:
        raise DataError(f"{path} line 1: expected 3 tab-separated columns id, text, title (DPR "
                        f"psgs_w100.tsv), got {len(cells)}; check the delimiter is a tab")
    types = {n: pa.string() for n in names}

    def options(threads: bool, handler=None):
        return dict(
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=1 if header else 0,
                                          use_threads=threads, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter="\t", invalid_row_handler=handler),
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                                include_columns=[n for n in ("id", "title", "text")
                                                                 if n in names]),
        )

    try:
        if max_passages is None:
            table = pcsv.read_csv(pa.input_stream(str(path)), **options(True))
        else:
            reader = pcsv.open_csv(pa.input_stream(str(path)), **options(False))
            table = _first_rows(reader, max_passages)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        raise _locate_tsv_error(path, options) from None
    if "title" not in table.column_names:
        table = table.append_column("title", pa.array([""] * table.num_rows, pa.string()))
    return table.select(["id", "title", "text"])


def _locate_tsv_error(path: Path, options) -> DataError:
    """Re-read single-threaded to learn the line number of the first malformed row."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    bad = []

    def handler(row):
        bad.append(row)
        return "error"

    try:
        for _ in pcsv.open_csv(pa.input_stream(str(path)), **options(False, handler)):
            pass
    except pa.ArrowInvalid as err:
        if bad:
            row = bad[0]
            where = f"line {row.number}" if row.number is not None else "a row"
            snippet = row.text[:60].replace("\t", "\\t")
            return DataError(f"{path} {where}: expected {row.expected_columns} tab-separated columns "
                             f"(id, text, title), got {row.actual_columns} ('{snippet}'); fix the "
                             "row (a stray tab or an unbalanced double quote)")
        if "utf8" in str(err).lower().replace("-", ""):
            for _ in _lines(path):  # raises with the line number of the first bad byte
                pass
        return DataError(f"{path}: cannot parse as DPR TSV ({str(err).splitlines()[0]}); expected "
                         "tab-separated id, text, title; fix the file or set format:")
    return DataError(f"{path}: cannot parse as DPR TSV; expected tab-separated id, text, title")


def _read_parquet(path: Path, max_passages: int | None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    id_col = next((k for k in DOC_ID_KEYS if k in names), None)
    text_col = next((k for k in ("text", "contents") if k in names), None)
    if id_col is None or text_col is None:
        raise DataError(f"{path} row 1: Parquet columns {names} lack an id or text column; "
                        "expected id, title, text (or _id/doc_id, contents); rename the columns")
    cols = [id_col, text_col] + (["title"] if "title" in names else [])
    if max_passages is None:
        table = pf.read(columns=cols)
    else:
        batches, n = [], 0
        for batch in pf.iter_batches(columns=cols):
            batches.append(batch)
            n += batch.num_rows
            if n >= max_passages:
                break
        table = (pa.Table.from_batches(batches).slice(0, max_passages) if batches
                 else pf.read(columns=cols))
    try:
        ids = table[id_col].cast(pa.string())
        text = table[text_col].cast(pa.string())
        title = table["title"].cast(pa.string()) if "title" in names else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise DataError(f"{path} row 1: cannot read the columns as strings ({err}); expected string "
                        "columns id, title, text") from None
    if title is None and text_col == "contents":
        title, text = _split_contents(text)
    return _assemble(path, ids, title, text, "row")


def _split_contents(contents):
    """FlashRAG ``contents`` → (title, text): first line is the title (quotes stripped).

    A ``contents`` without a newline is all text with an empty title. Vectorised per chunk
    (a chunk stays under 2 GB, so a 13 GB Wikipedia corpus never overflows a string array).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(contents, pa.Array):
        contents = pa.chunked_array([contents])
    titles, texts = [], []
    for chunk in contents.chunks:
        chunk = pc.fill_null(chunk, "")
        parts = pc.split_pattern(chunk, "\n", max_splits=1)
        start = parts.offsets.to_numpy()[:-1]
        pieces = pc.list_value_length(parts).to_numpy()  # 2 with a title line, else 1
        texts.append(parts.values.take(pa.array(start + pieces - 1)))
        title = pc.utf8_trim_whitespace(parts.values.take(pa.array(start)))
        title = pc.if_else(pa.array(pieces == 2), title, pa.scalar("", pa.string()))
        quoted = pc.and_(pc.and_(pc.starts_with(title, '"'), pc.ends_with(title, '"')),
                         pc.greater_equal(pc.utf8_length(title), 2))
        titles.append(pc.if_else(quoted, pc.utf8_slice_codeunits(title, 1, -1), title))
    return (pa.chunked_array(titles, pa.string()), pa.chunked_array(texts, pa.string()))


def _assemble(path: Path, ids, title, text, unit: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    for name, col in (("id", ids), ("text", text)):
        nulls = col.null_count
        if nulls:
            idx = pc.index(pc.is_null(col), True).as_py()
            raise DataError(f"{path} {unit} {idx + 1}: passage has no {name}; expected id, title, text "
                            "on every passage; fill it in or drop the passage")
    if title is None:
        title = pa.array([""] * len(ids), pa.string())
    title = pc.fill_null(title, "")
    return pa.table({"id": ids, "title": title, "text": text}, schema=_passage_schema())


def _first_char(path: Path) -> str:
    return _first_line(path)[1].lstrip()[:1]


def _first_record(path: Path) -> Any:
    records = iter_json_records(path)
    try:
        return next(records)[1]
    finally:
        records.close()


def _read_json_corpus(path: Path, max_passages: int | None):
    """JSONL corpora: a pyarrow fast path, and a Python path that locates errors exactly."""
    import pyarrow as pa

    table = _read_json_fast(path, max_passages) if _first_char(path) == "{" else None
    if table is not None:
        return table
    rows = []
    for line_no, rec in iter_json_records(path):
        rows.append(passage_from_record(rec, where=f"{path} line {line_no}"))
        if max_passages is not None and len(rows) >= max_passages:
            break
    return pa.Table.from_pylist(rows, schema=_passage_schema())


def _read_json_fast(path: Path, max_passages: int | None):
    """Read JSONL with pyarrow (multi-threaded); None when the Python path must explain a problem.

    Same semantics as :func:`passage_from_record`: ``text`` wins over ``contents``; ``contents``
    is split into title and text unless the record has its own ``title``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pjson

    first = _first_record(path)
    if not isinstance(first, dict):
        return None
    keys = ("id", "_id", "title", "text", "contents")  # absent keys read as nulls
    options = dict(read_options=pjson.ReadOptions(block_size=1 << 24),
                   parse_options=pjson.ParseOptions(explicit_schema=pa.schema(
                       [(k, pa.string()) for k in keys]), unexpected_field_behavior="ignore"))
    try:
        if max_passages is None:
            table = pjson.read_json(pa.input_stream(str(path)), **options)
        elif hasattr(pjson, "open_json"):  # pyarrow >= 17: stream, stop after max_passages
            reader = pjson.open_json(pa.input_stream(str(path)), **options)
            table = _first_rows(reader, max_passages)
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # mixed types or a syntax error: the Python path explains it
    n = table.num_rows
    ids = next((table[k] for k in ("id", "_id") if table[k].null_count == 0), None)
    if ids is None or n == 0:
        return None
    title, text, contents = table["title"], table["text"], table["contents"]
    if text.null_count == 0:
        return _assemble(path, ids, title, text, "line")
    if text.null_count == n and contents.null_count == 0:
        split_title, split_text = _split_contents(contents)
        if title.null_count == n:
            return _assemble(path, ids, split_title, split_text, "line")
        own = pc.is_valid(title)
        return _assemble(path, ids, pc.if_else(own, title, split_title),
                         pc.if_else(own, contents, split_text), "line")
    return None


def passage_from_record(rec: Any, where: str = "passage") -> dict:
    """One JSON passage record (plain, FlashRAG, BEIR or DPR-ctx shaped) → ``{id, title, text}``.

    >>> passage_from_record({"id": 7, "contents": '"Evan Morris"\\nEvan Morris was a lobbyist.'})
    {'id': '7', 'title': 'Evan Morris', 'text': 'Evan Morris was a lobbyist.'}
    """
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object {{id, title, text}}, got "
                        f"{type(rec).__name__}; write one passage object per line")
    pid = next((rec[k] for k in DOC_ID_KEYS if rec.get(k) is not None), None)
    if pid is None:
        raise DataError(f"{where}: passage has no id (expected one of {', '.join(DOC_ID_KEYS)}); "
                        "give every passage a unique id")
    if not isinstance(pid, (str, int)) or isinstance(pid, bool):
        raise DataError(f"{where}: passage id must be a string or integer, got "
                        f"{type(pid).__name__}; fix the id")
    title, text = _title_text(rec, where)
    return {"id": str(pid), "title": title, "text": text}


def _title_text(rec: dict, where: str) -> tuple[str, str]:
    text = rec.get("text")
    title = rec.get("title")
    if text is None and isinstance(rec.get("contents"), str):
        contents = rec["contents"]
        if title is None and "\n" in contents:
            title, text = contents.split("\n", 1)
            title = title.strip()
            if len(title) >= 2 and title[0] == title[-1] == '"':
                title = title[1:-1]
        else:
            text = contents
    if text is None:
        raise DataError(f"{where}: passage has no text (expected 'text' or FlashRAG 'contents'); "
                        "add the text or drop the passage")
    if not isinstance(text, str):
        raise DataError(f"{where}: passage 'text' must be a string, got {type(text).__name__}; "
                        "fix the record")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise DataError(f"{where}: passage 'title' must be a string, got {type(title).__name__}; "
                        "fix the record")
    return title, text


def _check_unique_ids(path: Path, fmt: str, table) -> None:
    import pyarrow.compute as pc

    ids = table["id"]
    if pc.count_distinct(ids).as_py() == table.num_rows:
        return
    counts = pc.value_counts(ids)
    dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
    where = pc.indices_nonzero(pc.equal(ids, dup).combine_chunks()).to_pylist()[:2]
    unit = "row" if fmt == "parquet" else "line"
    first, second = (_record_line(path, fmt, i) for i in where)
    raise DataError(f"{path} {unit} {second}: passage id '{dup}' repeats (first on {unit} {first}); "
                    "expected unique passage ids; de-duplicate the corpus")


def _record_line(path: Path, fmt: str, index: int) -> int:
    """The 1-based line (row for Parquet) of the ``index``-th record, skipping blank lines."""
    if fmt == "parquet":
        return index + 1
    seen = -1
    header = None
    for line_no, line in _lines(path):
        if header is None and fmt == "dpr":
            header = line.split("\t", 1)[0].strip().strip('"').lower() == "id"
            if header:
                continue
        if line.strip():
            seen += 1
            if seen == index:
                return line_no
    return index + 1  # pragma: no cover - a JSON array: fall back to the record number


# --------------------------------------------------------------------------- questions


def _dataset_from(qid: str, path: Path | None) -> str:
    m = _ID_PREFIX.match(qid)
    if m and m.group(1).lower() not in SPLIT_NAMES | {"q", "id", "query"}:
        return m.group(1).lower()
    if path is None:
        return ""
    stem = path.name.split(".")[0]
    if stem.lower() in SPLIT_NAMES and path.parent.name:
        return path.parent.name
    return stem


def _string_list(value: Any, field: str, where: str) -> list[str]:
    """A str, a number or a (nested) list of them → a flat list of distinct non-empty strings.

    Nulls inside a list are skipped; other types (dicts, bools) are errors.
    """
    out: list[str] = []

    def add(v: Any, depth: int) -> None:
        if v is None:  # a null inside a list of answers: nothing to add
            return
        if isinstance(v, str):
            if v.strip():
                out.append(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(str(v))
        elif isinstance(v, list) and depth < 2:
            for item in v:
                add(item, depth + 1)
        else:
            raise DataError(f"{where}: '{field}' must be a string or a list of strings, got "
                            f"{type(v).__name__}; fix the record")

    add(value, 0)
    return list(dict.fromkeys(out))


def _answers(rec: dict, where: str) -> tuple[list[str], str | None]:
    """Golds: ASQA's ``qa_pairs[*].short_answers`` when the record has them (ALCE's ASQA also
    carries the long-form reference in ``answer``, which must not become the gold), else the
    first of :data:`ANSWER_KEYS`."""
    pairs = rec.get("qa_pairs")
    if pairs is None:
        for key in ANSWER_KEYS:
            if key in rec and rec[key] is not None:
                return _string_list(rec[key], key, where), key
    if pairs is not None:
        if not isinstance(pairs, list):
            raise DataError(f"{where}: 'qa_pairs' must be a list of {{short_answers}}, got "
                            f"{type(pairs).__name__}; fix the record")
        out: list[str] = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict) or "short_answers" not in pair:
                raise DataError(f"{where}: qa_pairs[{i}] has no 'short_answers' (ASQA format); "
                                "fix the record")
            out += _string_list(pair["short_answers"], f"qa_pairs[{i}].short_answers", where)
        return list(dict.fromkeys(out)), "qa_pairs"
    return [], None


def _ctxs(value: Any, key: str, where: str) -> list[dict]:
    if not isinstance(value, list):
        raise DataError(f"{where}: '{key}' must be a list of passages {{id, title, text, score}}, got "
                        f"{type(value).__name__}; fix the record")
    out = []
    for i, c in enumerate(value):
        here = f"{where} {key}[{i}]"
        if not isinstance(c, dict):
            raise DataError(f"{here}: expected a passage object {{id, title, text, score}}, got "
                            f"{type(c).__name__}; fix the record")
        title, text = _title_text(c, here)
        pid = next((c[k] for k in DOC_ID_KEYS if c.get(k) is not None), None)
        score = c.get("score", c.get("socre"))  # RAG-Instruct writes 'socre'
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise DataError(f"{here}: 'score' must be a number, got {score!r}; "
                                "fix the record") from None
        out.append({"id": None if pid is None else str(pid), "title": title, "text": text,
                    "score": score})
    return out


def _gold(rec: dict, where: str) -> list[str]:
    if rec.get("gold") is not None:
        return _string_list(rec["gold"], "gold", where)
    pos = rec.get("positive_ctxs")
    if isinstance(pos, list):  # DPR retriever-training JSON
        ids = [next((c[k] for k in DOC_ID_KEYS if c.get(k) is not None), None)
               for c in pos if isinstance(c, dict)]
        return list(dict.fromkeys(str(i) for i in ids if i is not None))
    return []


def normalize_question(rec: Any, *, where: str, require_answers: bool = True,
                       default_id: str = "", default_dataset: str | None = None,
                       path: Path | None = None) -> dict:
    """One question record in any supported shape → the canonical row.

    Returns ``{id, dataset, question, answers, gold}`` plus ``ctxs`` when the record carries
    retrieved passages (``ctxs``/``docs``/``retrieval_ctxs``/``retrieval_result``) and
    ``retrieved_question`` when it has one (DynamicRAG's retrieval query). ``where``
    prefixes error messages (``"file line N"``).

    >>> normalize_question({"Question": "Who?", "qa_pairs": [{"short_answers": ["Al", "Bo"]}],
    ...                     "docs": [{"title": "T", "text": "x"}]}, where="f line 1", default_id="1")
    {'id': '1', 'dataset': '', 'question': 'Who?', 'answers': ['Al', 'Bo'], 'gold': [], 'ctxs': [{'id': None, 'title': 'T', 'text': 'x', 'score': None}]}
    """
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object with a question and answers, got "
                        f"{type(rec).__name__}; write one object per line")
    qkey = next((k for k in QUESTION_KEYS if k in rec), None)
    if qkey is None:
        raise DataError(f"{where}: missing field 'question' (expected one of "
                        f"{', '.join(QUESTION_KEYS)}); add it or remove the record")
    question = rec[qkey]
    if not isinstance(question, str):
        raise DataError(f"{where}: '{qkey}' must be a string, got {type(question).__name__}; "
                        "fix the record")
    if not question.strip():
        raise DataError(f"{where}: '{qkey}' is empty; write the question or remove the record")
    answers, akey = _answers(rec, where)
    if require_answers and not answers:
        what = "has no non-empty answer" if akey else "missing answers"
        raise DataError(f"{where}: {what} (expected one of {', '.join(ANSWER_KEYS)} or ASQA "
                        "qa_pairs[*].short_answers); add answers, or set require_answers: false "
                        "for questions without gold answers")
    qid = next((rec[k] for k in ID_KEYS if rec.get(k) is not None), None)
    if qid is None:
        qid = default_id
    elif isinstance(qid, bool) or not isinstance(qid, (str, int)):
        raise DataError(f"{where}: question id must be a string or integer, got "
                        f"{type(qid).__name__}; fix the id")
    qid = str(qid)
    dataset = next((rec[k] for k in DATASET_KEYS if isinstance(rec.get(k), str) and rec[k]), None)
    if dataset is None:
        dataset = default_dataset if default_dataset is not None else _dataset_from(qid, path)
    row = {"id": qid, "dataset": dataset, "question": question, "answers": answers,
           "gold": _gold(rec, where)}
    if isinstance(rec.get("retrieved_question"), str) and rec["retrieved_question"].strip():
        row["retrieved_question"] = rec["retrieved_question"]   # DynamicRAG's retrieval query
    ckey = next((k for k in CTX_KEYS if rec.get(k) is not None), None)
    if ckey is not None:
        row["ctxs"] = _ctxs(rec[ckey], ckey, where)
    return row


def read_questions(path: str | Path, *, require_answers: bool = True,
                   max_questions: int | None = None,
                   default_dataset: str | None = None) -> list[dict]:
    """Read a question set (JSONL or a JSON array) into canonical rows.

    Accepted fields (first match wins): question ← ``question|Question|query|instruction|text``;
    answers ← ASQA ``qa_pairs[*].short_answers`` when present, else
    ``answers|golden_answers|answer|output`` (string or list); ``retrieved_question`` kept; ``ctxs|docs|retrieval_ctxs|retrieval_result`` → ``ctxs``;
    gold passage ids ← ``gold`` (list or str) or DPR ``positive_ctxs[*].passage_id``; id ←
    ``id|_id|qid|q_id`` else the line number; dataset ← ``dataset|source``, else the id prefix
    (``nq_12`` → ``nq``), else the file stem (or its folder when the stem is a split name).
    Question ids must be unique.
    """
    path = _check_file(path)
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for line_no, rec in iter_json_records(path):
        where = f"{path} line {line_no}"
        row = normalize_question(rec, where=where, require_answers=require_answers,
                                 default_id=str(line_no), default_dataset=default_dataset, path=path)
        if row["id"] in seen:
            raise DataError(f"{where}: question id '{row['id']}' repeats (first on line "
                            f"{seen[row['id']]}); expected unique ids; de-duplicate the file")
        seen[row["id"]] = line_no
        rows.append(row)
        if max_questions is not None and len(rows) >= max_questions:
            break
    with_ctxs = sum("ctxs" in r for r in rows)
    log.info("read %d questions from %s%s", len(rows), path,
             f" ({with_ctxs} with retrieved passages)" if with_ctxs else "")
    return rows


# --------------------------------------------------------------------------- qrels


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
    path = _check_file(path)
    qrels: dict[str, dict[str, int]] = {}
    data_lines = 0
    for line_no, line in _lines(path):
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
        raise _empty(path, "qrels: query-id, corpus-id, score")
    if not qrels:
        raise DataError(f"{path} line 2: no relevance judgements after the header (expected "
                        "query-id, corpus-id, score rows); check the qrels file")
    return qrels


def merge_qrels(questions: Iterable[dict], qrels: dict[str, dict[str, int]],
                min_score: int = 1) -> list[dict]:
    """Add the ids of passages judged relevant (grade >= ``min_score``) to each question's ``gold``.

    Existing gold ids are kept first; question rows are copied, not modified.

    >>> merge_qrels([{"id": "q1", "gold": ["d1"]}], {"q1": {"d7": 1, "d8": 0}})
    [{'id': 'q1', 'gold': ['d1', 'd7']}]
    """
    out = []
    for q in questions:
        rel = [d for d, g in qrels.get(q["id"], {}).items() if g >= min_score]
        out.append({**q, "gold": list(dict.fromkeys(list(q.get("gold") or []) + rel))})
    return out


# --------------------------------------------------------------------------- tables


def to_table(rows: list[dict], schema):
    """Rows → a ``pyarrow.Table`` with exactly ``schema``'s columns (extra keys dropped).

    Missing list columns become ``[]``, other missing columns null.

    >>> import pyarrow as pa
    >>> to_table([{"id": "1", "extra": 0}], pa.schema([("id", pa.string()),
    ...          ("gold", pa.list_(pa.string()))])).to_pylist()
    [{'id': '1', 'gold': []}]
    """
    import pyarrow as pa

    list_fields = [f.name for f in schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)]
    if list_fields:
        rows = [{**r, **{k: [] for k in list_fields if r.get(k) is None}} for r in rows]
    return pa.Table.from_pylist(rows, schema=schema)


__all__ = [
    "CORPUS_FORMATS", "detect_corpus_format", "read_corpus", "read_corpus_table",
    "passage_from_record", "iter_json_records", "normalize_question", "read_questions",
    "read_qrels", "merge_qrels", "to_table",
]

