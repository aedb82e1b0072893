"""Corpus readers: passages ``{id, title, text}`` from DPR ``psgs_w100.tsv`` (``id, text, title``;
note column 1 is the text), plain JSONL ``{id, title, text}``, FlashRAG JSONL ``{id, contents}``
(first line of ``contents`` is the title, quotes stripped), BEIR ``corpus.jsonl``
``{_id, title, text}``, Tevatron's ``{docid, title, text}``, Reinforced-IR's ``corpus.json`` (a
JSON list of passage strings: ids are their 0-based positions), Parquet (AutoRAG's
``corpus.parquet``: ``doc_id``, ``contents``, all text, and ``metadata``) and a Hugging Face
dataset's ``save_to_disk`` folder (format ``dataset``, the same columns as Parquet).

Big corpora are read with pyarrow (multi-threaded, no per-row Python); rows come back as a
``pyarrow.Table`` from :func:`read_corpus_table` or as dicts from :func:`read_corpus`. Bad input
raises ``DataError`` whose one-line message names the file, the line, what was expected and what
to do.
"""

from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path
from typing import Any

from orchestrator.api import DataError
from stages.lib.data.fields import check_mapped, file_column, renamed, visible_columns
from stages.lib.data.files import (arrow_batches, check_file, empty_error, first_line,
                                     first_rows, iter_json_records, numbered_lines,
                                     saved_dataset_files, strip_gz)
from stages.lib.data.surrogates import check_texts

log = logging.getLogger(__name__)

CORPUS_FORMATS = ("dpr", "jsonl", "flashrag", "beir", "parquet", "dataset")
_FORMAT_ALIASES = {"tsv": "dpr", "psgs_w100": "dpr", "json": "jsonl", "ndjson": "jsonl",
                   "pq": "parquet"}
DOC_ID_KEYS = ("id", "_id", "doc_id", "docid", "passage_id")


PASSAGE_FIELDS = ("id", "title", "text")


def _passage_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])


def detect_corpus_format(path: str | Path) -> str:
    """Name the corpus format of ``path``: one of :data:`CORPUS_FORMATS`.

    ``.parquet`` is Parquet and ``.tsv`` is DPR; JSON files are told apart by their first record:
    ``contents`` → flashrag, ``_id`` → beir, ``id`` + ``text`` → jsonl; a JSON array of strings
    (Reinforced-IR's ``corpus.json``) is jsonl too.
    """
    if saved_dataset_files(Path(path)) is not None:
        return "dataset"
    path = check_file(path)
    ext = strip_gz(path)
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext == ".tsv":
        return "dpr"
    if ext == ".csv":
        raise DataError(f"{path}: comma-separated corpora are not read; convert it to a TSV "
                        "(tab-separated, a header line id, text, title) or to JSON lines "
                        "{id, title, text}")
    if ext not in (".jsonl", ".json", ".ndjson"):
        head = first_line(path)[1].lstrip()
        if not head:
            raise empty_error(path, "a corpus: DPR TSV, JSON lines or Parquet")
        if head[0] not in "[{":
            if "\t" in head:
                return "dpr"
            raise DataError(f"{path} line 1: cannot tell the corpus format from the extension "
                            f"'{ext or '(none)'}' or the content; expected .tsv (DPR), .jsonl or "
                            f".parquet; rename the file or set the load step's corpus_format: to one "
                            f"of {', '.join(CORPUS_FORMATS)}")
    for line_no, rec in iter_json_records(path):
        if isinstance(rec, str) and _first_char(path) == "[":
            return "jsonl"   # Reinforced-IR's corpus.json: a JSON list of passage strings
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
                        "{_id, title, text} (BEIR); rename the keys or set the load step's "
                        "corpus_format:")
    raise empty_error(path, "a corpus")  # pragma: no cover - iter_json_records raises first


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
                      max_passages: int | None = None, check_unique: bool = True,
                      fields: dict[str, str] | None = None):
    """Read a corpus into a ``pyarrow.Table`` with string columns ``id, title, text``.

    ``format`` forces one of :data:`CORPUS_FORMATS` (``tsv`` and ``json`` are aliases);
    ``max_passages`` keeps the first N (and stops reading there). ``check_unique`` rejects a
    corpus whose passage ids repeat (retrieval results could not be mapped back otherwise).
    ``fields`` maps columns under other names (``{"text": "content"}``,
    :mod:`stages.lib.data.fields`); DPR TSV has its fixed columns.
    """
    path = Path(path)
    fmt = _resolve_format(path, format)
    fields = fields or {}
    if fmt == "dataset":
        table = _read_saved_dataset(path, max_passages, fields)
    elif fmt == "dpr":
        if fields:
            from orchestrator.errors import ConfigError

            raise ConfigError(f"{path}: passage_fields do not apply to a DPR TSV corpus (its "
                              "columns are id, text, title in that order); leave them unset")
        table = _read_dpr(check_file(path), max_passages)
    elif fmt == "parquet":
        table = _read_parquet(check_file(path), max_passages, fields)
    else:
        table = _read_json_corpus(check_file(path), max_passages, fields)
    if table.num_rows == 0:
        raise empty_error(path, "at least one passage")
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
    """DPR TSV: ``id, text, title``. A first line that names the columns (see
    :func:`_is_tsv_header`; ``id`` or ``docid``, ``_id``, ...) is a header, in any column order;
    without one the columns are DPR's ``id, text, title`` (or ``id, text``)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    first = next(numbered_lines(path), (0, ""))[1]
    if not first.strip():
        raise empty_error(path, "a DPR TSV with columns id, text, title")
    cells = _tsv_cells(first)
    names = [c.lower() for c in cells]
    header = _is_tsv_header(first)
    if header:
        if "text" not in names:
            raise DataError(f"{path} line 1: header {cells} has no 'text' column; expected the DPR "
                            "header id, text, title; fix the header")
        id_name = next(k for k in DOC_ID_KEYS if k in names)
        names[names.index(id_name)] = "id"   # docid, _id, ... name the id column too
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
            table = first_rows(reader, max_passages)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        raise _locate_tsv_error(path, options) from None
    _check_tsv_values(path, table, header)
    if "title" not in table.column_names:
        table = table.append_column("title", pa.array([""] * table.num_rows, pa.string()))
    return table.select(["id", "title", "text"])


def _tsv_cells(line: str) -> list[str]:
    return [c.strip().strip('"') for c in line.rstrip("\r\n").split("\t")]


def _is_tsv_header(line: str) -> bool:
    """Whether a TSV's first line names its columns: its first cell is an id name
    (:data:`DOC_ID_KEYS`), or it has an id name and ``text`` among its cells."""
    names = [c.lower() for c in _tsv_cells(line)]
    return names[0] in DOC_ID_KEYS or ("text" in names and not set(names).isdisjoint(DOC_ID_KEYS))


def _may_hold_newline(col) -> bool:
    """Whether a string column may hold a newline: a scan of its raw bytes, ten times faster
    than a search value by value (a chunk's bytes may include values sliced off: only a hint)."""
    import numpy as np

    return any(np.any(np.frombuffer(chunk.buffers()[2], np.uint8) == ord("\n"))
               for chunk in col.chunks if chunk.buffers()[2] is not None)


def _check_tsv_values(path: Path, table, header: bool) -> None:
    """Refuse what a TSV reader would otherwise load wrong without a word: lines swallowed by a
    field that opens a double quote it never closes (a value holding a tab and a newline), and,
    without a header, title and text in the other order (the title is the longer on most rows)."""
    import pyarrow.compute as pc

    for name in table.column_names:
        col = table[name]
        if not _may_hold_newline(col):
            continue
        multi = pc.and_(pc.match_substring(col, "\n"), pc.match_substring(col, "\t"))
        if pc.any(multi).as_py():
            index = pc.index(multi, True).as_py()
            raise DataError(f"{path} line {_record_line(path, 'dpr', index)}: the {name} of passage "
                            f"{table['id'][index].as_py()!r} runs over the next lines: a field "
                            "starts with a double quote that is never closed; write a quote inside "
                            'a quoted field as "", or quote the whole field')
    if header or "title" not in table.column_names or table.num_rows == 0:
        return
    head = table.slice(0, 1000)
    longer = pc.sum(pc.greater(pc.utf8_length(head["title"]), pc.utf8_length(head["text"]))).as_py()
    if longer * 2 > head.num_rows:
        raise DataError(f"{path} line 1: no header, so the columns are read as DPR's id, text, "
                        f"title, but column 3 (title) is longer than column 2 (text) on {longer} of "
                        f"the first {head.num_rows} passages; add a header line naming the columns "
                        "(e.g. id, title, text, tab-separated)")


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
            snippet = repr(row.text[:60])[1:-1]  # tabs and newlines escaped: one line
            return DataError(f"{path} {where}: expected {row.expected_columns} tab-separated columns "
                             f"(id, text, title), got {row.actual_columns} ('{snippet}'); fix the "
                             "row (a stray tab or an unbalanced double quote)")
        if "utf8" in str(err).lower().replace("-", ""):
            for _ in numbered_lines(path):  # raises with the line number of the first bad byte
                pass
        return DataError(f"{path}: cannot parse as DPR TSV ({str(err).splitlines()[0]}); expected "
                         "tab-separated id, text, title; fix the file or set the load step's "
                         "corpus_format:")
    return DataError(f"{path}: cannot parse as DPR TSV; expected tab-separated id, text, title")


def _read_parquet(path: Path, max_passages: int | None, fields: dict[str, str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: cannot read as Parquet ({str(e).splitlines()[0]}); a .parquet "
                        "file must be Parquet: convert it, or name it .jsonl/.tsv (or set the "
                        "load step's corpus_format:) if it holds JSON lines or DPR TSV") from None
    check_mapped(dict.fromkeys(pf.schema_arrow.names), fields, ("id", "text"), str(path),
                 "passage_fields")
    names = visible_columns(pf.schema_arrow.names, fields)
    cols = _passage_columns(path, names, "Parquet", fields)
    read = [file_column(c, fields) for c in cols]
    if max_passages is None:
        table = pf.read(columns=read)
    else:
        batches, n = [], 0
        for batch in pf.iter_batches(columns=read):
            batches.append(batch)
            n += batch.num_rows
            if n >= max_passages:
                break
        table = (pa.Table.from_batches(batches).slice(0, max_passages) if batches
                 else pf.read(columns=read))
    return _table_passages(path, table.rename_columns(cols), names)


def _read_saved_dataset(path: Path, max_passages: int | None, fields: dict[str, str]):
    """A Hugging Face dataset's ``save_to_disk`` folder: its Arrow files, memory-mapped."""
    import pyarrow as pa

    files = saved_dataset_files(path)
    if files is None:
        raise DataError(f"{path}: not a dataset saved with save_to_disk (no state.json); point "
                        "the corpus at such a folder, or set the load step's corpus_format: to "
                        "the file's format")
    batches = [b for file in files for b in arrow_batches(file)]
    if not batches:
        raise DataError(f"{path}: the saved dataset has no rows (expected at least one passage)")
    table = pa.Table.from_batches(batches)
    check_mapped(dict.fromkeys(table.schema.names), fields, ("id", "text"), str(path),
                 "passage_fields")
    names = visible_columns(table.schema.names, fields)
    cols = _passage_columns(path, names, "dataset", fields)
    table = table.select([file_column(c, fields) for c in cols]).rename_columns(cols)
    return _table_passages(path, table if max_passages is None else table.slice(0, max_passages),
                           names)


def _passage_columns(path: Path, names: list[str], what: str,
                     fields: dict[str, str] | None = None) -> list[str]:
    """The id, text (or FlashRAG's contents) and title columns of a table with ``names`` (as
    the reader sees them: ``fields`` mapped)."""
    id_col = next((k for k in DOC_ID_KEYS if k in names), None)
    text_col = next((k for k in ("text", "contents") if k in names), None)
    if id_col is None or text_col is None:
        mapped = f" (passage_fields: {fields})" if fields else ""
        raise DataError(f"{path} row 1: {what} columns {names}{mapped} lack an id or text "
                        "column; expected id, title, text (or _id/doc_id, contents); rename the "
                        "columns, or map them with the load step's passage_fields "
                        "(steps.load.passage_fields={text: COLUMN})")
    return [id_col, text_col] + (["title"] if "title" in names else [])


def _table_passages(path: Path, table, names: list[str]):
    """The passage table of the columns ``_passage_columns`` chose (``table`` holds just those)."""
    import pyarrow as pa

    id_col, text_col = table.schema.names[:2]

    def text_of(name: str):
        try:
            return _nan_as_null(table[name]).cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise DataError(f"{path}: column '{name}' is {table[name].type}, which cannot be read "
                            f"as text ({str(err).splitlines()[0]}); expected string columns id, "
                            "title, text") from None

    ids, text = text_of(id_col), text_of(text_col)
    title = text_of("title") if "title" in names else None
    # FlashRAG's contents start with the title line; AutoRAG's corpus.parquet (doc_id, contents,
    # metadata) holds chunks of text whose first line is no title
    autorag = id_col == "doc_id" and "metadata" in names
    if title is None and text_col == "contents" and not autorag:
        title, text = _split_contents(text)
    return _assemble(path, ids, title, text, "row")


def _nan_as_null(column):
    """A float column's NaNs as nulls, the missing values they stand for (pandas writes a
    missing cell of a float column as NaN; cast to text it was the title "nan").

    >>> import pyarrow as pa
    >>> _nan_as_null(pa.chunked_array([[1.5, float("nan")]])).cast(pa.string()).to_pylist()
    ['1.5', None]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_floating(column.type):
        return column
    return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)


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
    return first_line(path)[1].lstrip()[:1]


def _first_record(path: Path) -> Any:
    records = iter_json_records(path)
    try:
        return next(records)[1]
    finally:
        records.close()


def _read_json_corpus(path: Path, max_passages: int | None, fields: dict[str, str]):
    """JSONL corpora: a pyarrow fast path, and a Python path that locates errors exactly. A
    JSON array of strings is Reinforced-IR's ``corpus.json`` (:func:`_string_list_table`)."""
    import pyarrow as pa

    array = _first_char(path) == "["
    table = None if array else _read_json_fast(path, max_passages, fields)
    if table is not None:
        return table
    records = iter_json_records(path)
    first = next(records)
    if array and isinstance(first[1], str):
        return _string_list_table(path, chain([first], records), max_passages, fields)
    rows = []
    for index, (line_no, rec) in enumerate(chain([first], records)):
        where = f"{path} line {line_no}"
        if array and index and not isinstance(rec, dict):
            raise _mixed_array_error(path, line_no, index, rec, "objects")
        if fields:
            check_mapped(rec, fields, ("id", "text"), where, "passage_fields")
        rows.append(passage_from_record(renamed(rec, fields), where=where))
        if max_passages is not None and len(rows) >= max_passages:
            break
    return pa.Table.from_pylist(rows, schema=_passage_schema())


def _string_list_table(path: Path, records, max_passages: int | None, fields: dict[str, str]):
    """Reinforced-IR's ``corpus.json``, a JSON list of passage strings (SEEDS §5.2): the seed
    addresses a passage by its place in the list, so its id is that 0-based position (as a
    string); the title is empty and the text the string."""
    import pyarrow as pa

    if fields:
        from orchestrator.errors import ConfigError

        raise ConfigError(f"{path}: passage_fields do not apply to a JSON list of passage "
                          "strings (each item is a passage's text; its id is its position); "
                          "leave them unset")
    texts = []
    for index, (line_no, rec) in enumerate(records):
        if not isinstance(rec, str):
            raise _mixed_array_error(path, line_no, index, rec, "strings")
        check_texts({"text": rec}, f"{path} line {line_no}")
        texts.append(rec)
        if max_passages is not None and len(texts) >= max_passages:
            break
    log.info("%s: a JSON list of %d passage strings (Reinforced-IR's corpus.json): the ids are "
             "the passages' 0-based positions in the list, the titles empty", path, len(texts))
    text = pa.chunked_array([pa.array(texts, pa.string())])
    ids = pa.array(range(len(texts)), pa.int64()).cast(pa.string())
    return _assemble(path, ids, None, text, "line")


def _mixed_array_error(path: Path, line_no: int, index: int, rec: Any, before: str) -> DataError:
    """The error for a JSON array corpus whose item ``index`` is not of the kind of the items
    ``before`` it (``"strings"`` or ``"objects"``).

    >>> print(_mixed_array_error(Path("corpus.json"), 4, 2, {"id": 1}, "strings").message)
    ... # doctest: +ELLIPSIS
    corpus.json line 4: item 2 of the JSON array (counting from 0) is an object, but the ...
    """
    kinds = {dict: "an object", str: "a string", list: "an array", bool: "a boolean",
             type(None): "null"}
    kind = kinds.get(type(rec), f"a number ({type(rec).__name__})")
    return DataError(f"{path} line {line_no}: item {index} of the JSON array (counting from 0) "
                     f"is {kind}, but the items before it are {before}; expected a list of "
                     "passage strings (Reinforced-IR's corpus.json) or of {id, title, text} "
                     "objects; make every item the same kind")


def _json_id_type(value: Any):
    """The Arrow type the fast path reads an id column as, from the first record's value: a
    string, or an integer (cast to text as ``str`` writes it); None for a value the Python
    path must refuse (a float, a boolean, an integer past 64 bits, an object).

    >>> [str(_json_id_type(v)) for v in ("d1", 7, None, 2.0, True)]
    ['string', 'int64', 'string', 'None', 'None']
    """
    import pyarrow as pa

    if value is None or isinstance(value, str):
        return pa.string()
    if isinstance(value, int) and not isinstance(value, bool) and -2 ** 63 <= value < 2 ** 63:
        return pa.int64()
    return None


def _read_json_columns(path: Path, schema, max_passages: int | None):
    """The ``schema``'s columns of a JSON lines file, read with pyarrow (multi-threaded; other
    fields ignored, absent ones null); None where a value does not fit its column's type, the
    syntax is bad, the UTF-8 is bad, or pyarrow cannot stop after ``max_passages``."""
    import pyarrow as pa
    import pyarrow.json as pjson

    options = dict(read_options=pjson.ReadOptions(block_size=1 << 24),
                   parse_options=pjson.ParseOptions(explicit_schema=schema,
                                                    unexpected_field_behavior="ignore"))
    try:
        if max_passages is None:
            table = pjson.read_json(pa.input_stream(str(path)), **options)
        elif hasattr(pjson, "open_json"):  # pyarrow >= 17: stream, stop after max_passages
            reader = pjson.open_json(pa.input_stream(str(path)), **options)
            table = first_rows(reader, max_passages)
        else:
            return None
        # pyarrow's JSON reader does not check UTF-8: a Latin-1 byte would be cached as a
        # string no later step can decode
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # mixed types, a syntax error, bad UTF-8: the Python path names the line
    return table


def _read_json_fast(path: Path, max_passages: int | None, fields: dict[str, str],
                    id_keys: tuple[str, ...] = DOC_ID_KEYS):
    """Read JSONL with pyarrow (multi-threaded); None when the Python path must explain a problem.

    Same semantics as :func:`passage_from_record`: the id is a record's first id key present
    (:data:`DOC_ID_KEYS`: ``id``, ``_id``, Tevatron's ``docid``, ...), a string or an integer
    (as text); ``text`` wins over ``contents``; ``contents`` is split into title and text unless
    the record has its own ``title``. A file whose every record has an ``id`` is read again with
    that key alone when another id key cannot be read as one type (a float ``passage_id``, a
    parent ``doc_id`` of mixed types): the Python path never looks at those.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    first = _first_record(path)
    if not isinstance(first, dict):
        return None

    def with_id_alone():
        again = len(id_keys) > 1 and first.get(file_column("id", fields)) is not None
        return _read_json_fast(path, max_passages, fields, ("id",)) if again else None

    keys = id_keys + ("title", "text", "contents")  # absent keys read as nulls
    read = [file_column(k, fields) for k in keys]
    if len(set(read)) < len(read):   # a mapping onto another reader name: the Python path
        return None
    types = [_json_id_type(first.get(c)) if k in id_keys else pa.string()
             for k, c in zip(keys, read)]
    if types[0] is None:            # an ``id`` no reader takes: the Python path refuses it
        return None
    if None in types:
        return with_id_alone()
    table = _read_json_columns(path, pa.schema(list(zip(read, types))), max_passages)
    if table is None:
        return with_id_alone()
    if table.num_rows == 0:
        return None
    reader_name = dict(zip(read, keys))
    table = table.rename_columns([reader_name[n] for n in table.column_names])
    n = table.num_rows
    if any(table[k].null_count for k in ("id", "text") if k in fields):
        return None   # a mapped field missing: the Python path names the mapping
    id_cols = [table[k].cast(pa.string()) for k in id_keys if table[k].null_count < n]
    ids = id_cols[0] if len(id_cols) == 1 else pc.coalesce(*id_cols) if id_cols else None
    if ids is None or ids.null_count:
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
    title, text = title_text(rec, where)
    return {"id": str(pid), "title": title, "text": text}


def title_text(rec: dict, where: str) -> tuple[str, str]:
    """A passage record's (title, text): ``text``, else FlashRAG's ``contents`` (its first line
    the title when the record has none), else ``paragraph_text`` (the RAG-Instruct evaluation
    sets' passages, which the seed's evaluation reads the same way).

    >>> title_text({"title": "A", "paragraph_text": "Alpha is one."}, "eval.json set 1")
    ('A', 'Alpha is one.')
    >>> title_text({"contents": '"Alpha"\\nAlpha is one.'}, "corpus.jsonl line 1")
    ('Alpha', 'Alpha is one.')
    """
    text = rec.get("text")
    title = rec.get("title")
    if text is None and rec.get("contents") is None:
        text = rec.get("paragraph_text")
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
        raise DataError(f"{where}: passage has no text (expected 'text', FlashRAG 'contents' or "
                        "'paragraph_text'); add the text or drop the passage")
    if not isinstance(text, str):
        raise DataError(f"{where}: passage 'text' must be a string, got {type(text).__name__}; "
                        "fix the record")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise DataError(f"{where}: passage 'title' must be a string, got {type(title).__name__}; "
                        "fix the record")
    check_texts({"title": title, "text": text}, where)
    return title, text


def _check_unique_ids(path: Path, fmt: str, table) -> None:
    import pyarrow.compute as pc

    ids = table["id"]
    if pc.count_distinct(ids).as_py() == table.num_rows:
        return
    counts = pc.value_counts(ids)
    dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
    where = pc.indices_nonzero(pc.equal(ids, dup).combine_chunks()).to_pylist()[:2]
    unit = "row" if fmt in ("parquet", "dataset") else "line"
    first, second = (_record_line(path, fmt, i) for i in where)
    raise DataError(f"{path} {unit} {second}: passage id '{dup}' repeats (first on {unit} {first}); "
                    "expected unique passage ids; de-duplicate the corpus")


def _record_line(path: Path, fmt: str, index: int) -> int:
    """The 1-based line (row for Parquet and a saved dataset) of the ``index``-th record,
    skipping blank lines."""
    if fmt in ("parquet", "dataset"):
        return index + 1
    seen = -1
    header = None
    for line_no, line in numbered_lines(path):
        if header is None and fmt == "dpr":
            header = _is_tsv_header(line)
            if header:
                continue
        if line.strip():
            seen += 1
            if seen == index:
                return line_no
    return index + 1  # pragma: no cover - a JSON array: fall back to the record number
