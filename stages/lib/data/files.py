"""Line, JSON, Parquet and saved-dataset readers shared by the data formats (corpus, questions,
qrels): gzip is read transparently, every record comes with its line (row) number, and a bad
line is a one-line ``DataError`` naming the file and the line."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.api import DataError

log = logging.getLogger(__name__)


def first_rows(reader, n: int):
    """The first ``n`` rows of a streaming pyarrow reader, reading no further batch than needed."""
    import pyarrow as pa

    batches, seen = [], 0
    for batch in reader:
        batches.append(batch)
        seen += batch.num_rows
        if seen >= n:
            break
    return pa.Table.from_batches(batches, reader.schema).slice(0, n)

def strip_gz(path: Path) -> str:
    """The lower-case suffix of ``path`` ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line (``\n``-separated, ending kept); a bad byte fails
    with its line number. Reads ``.gz`` transparently and drops a UTF-8 byte-order mark."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            kind = binary_kind(raw, path.name) if line_no == 1 else None
            if kind is not None:   # the suffix says how a file is read
                raise DataError(f"{path}: {kind}")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path} line {line_no}: not UTF-8 text (byte "
                                f"0x{raw[err.start]:02X} at column {err.start + 1}: {err.reason}); "
                                "re-encode the file as UTF-8") from None
            yield line_no, (line.lstrip("\ufeff") if line_no == 1 else line)


def binary_kind(head: bytes, name: str) -> str | None:
    """What a readable binary file is that its name sends to a text reader, and what to do.

    >>> binary_kind(b"PAR1\\x15\\x04", "corpus.jsonl")
    'a Parquet file, not text; name it corpus.parquet'
    >>> binary_kind(b"\\x1f\\x8b\\x08", "corpus.jsonl"), binary_kind(b'{"id": 1}', "c.jsonl")
    ('gzip-compressed, not text; name it corpus.jsonl.gz', None)
    >>> binary_kind(b"BZh91AY&SY", "q.jsonl.bz2")
    'bzip2-compressed, not text; decompress it (bunzip2 -k q.jsonl.bz2) and point the input at ...'
    """
    if head.startswith(b"PAR1"):
        return f"a Parquet file, not text; name it {Path(name).stem}.parquet"
    if head.startswith(b"\x1f\x8b"):
        return f"gzip-compressed, not text; name it {name}.gz"
    for magic, kind, unpack, suffix in COMPRESSED:
        if re.match(magic, head):
            # re-encoding, the advice for a bad byte, cannot help a compressed file
            return f"{kind}, not text; {_unpack_advice(name, unpack, suffix)}"
    return None


# Compressions the readers do not open (gzip they do): the file's first bytes, what it is, the
# command that unpacks it and its suffix. bzip2's "BZh" is followed by its block size and a
# block's (or the end's) magic, so that a text line starting "BZh" is not taken for one.
COMPRESSED = ((rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", "bzip2-compressed", "bunzip2 -k", ".bz2"),
              (rb"\xfd7zXZ\x00", "xz-compressed", "unxz -k", ".xz"),
              (rb"\x28\xb5\x2f\xfd", "zstd-compressed", "unzstd", ".zst"),
              (rb"PK\x03\x04", "a zip archive", "unzip", ".zip"))


def _unpack_advice(name: str, unpack: str, suffix: str) -> str:
    """How to make a compressed file readable: unpack it, or recompress it with gzip (the
    unpacking commands want the file to carry its compression's suffix).

    >>> _unpack_advice("q.jsonl.xz", "unxz -k", ".xz")
    'decompress it (unxz -k q.jsonl.xz) and point the input at q.jsonl, or gzip that (gzip -k ...'
    >>> _unpack_advice("q.jsonl", "unxz -k", ".xz")
    'rename it q.jsonl.xz, decompress it (unxz -k q.jsonl.xz) and point the input at q.jsonl, ...'
    >>> _unpack_advice("corpus.zip", "unzip", ".zip")
    'decompress it (unzip corpus.zip) and point the input at the file inside, or gzip that ...'
    """
    packed, file, rename = name, name, ""
    if suffix == ".zip":
        file = "FILE"
    elif name.lower().endswith(suffix):
        file = name[:-len(suffix)]
    else:
        packed = f"{name}{suffix}"
        rename = f"rename it {packed}, "
    inner = "the file inside" if suffix == ".zip" else file
    return (f"{rename}decompress it ({unpack} {packed}) and point the input at {inner}, or gzip "
            f"that (gzip -k {file} gives {file}.gz, which is read as is)")


def first_line(path: Path) -> tuple[int, str]:
    """The first non-blank line, or ``(0, "")`` for an empty file."""
    lines = numbered_lines(path)
    try:
        return next(((n, line) for n, line in lines if line.strip()), (0, ""))
    finally:
        lines.close()


def check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path in the recipe")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file; point the input at the file itself")
    return path


def empty_error(path: Path, expected: str) -> DataError:
    return DataError(f"{path} line 1: the file is empty (expected {expected}); "
                     "check that the file was fully written")


def _at_bracket(err: json.JSONDecodeError) -> json.JSONDecodeError:
    """A trailing comma's error placed where Python before 3.13 places it, at the bracket that
    follows the comma (3.13 says "Illegal trailing comma ..." at the comma itself), so that
    the messages and their line numbers read the same on every Python.

    >>> doc = '{"a": 1,\\n}'
    >>> err = json.JSONDecodeError("Illegal trailing comma before end of object", doc, 7)
    >>> moved = _at_bracket(err)
    >>> moved.lineno, moved.colno, doc[moved.pos]
    (2, 1, '}')
    """
    if not err.msg.startswith("Illegal trailing comma") or err.doc[err.pos:err.pos + 1] != ",":
        return err   # another error, or moved already
    rest = err.doc[err.pos + 1:]
    return json.JSONDecodeError(err.msg, err.doc, err.pos + 1 + len(rest) - len(rest.lstrip()))


def _json_problem(err: json.JSONDecodeError, unit: str = "line") -> str:
    """What is wrong with the JSON and where, in words that read cleanly: json's own message
    (without the dangling "at" of "Invalid control character at"), or plainer words for a
    trailing comma, a string left open, a raw tab and a value cut off where the ``unit`` ends."""
    err = _at_bracket(err)
    doc, pos, column = err.doc, err.pos, err.colno
    here = doc[pos:pos + 1]
    if here in ("}", "]") and doc[:pos].rstrip().endswith(","):
        return f"a trailing ',' before the '{here}' at column {column}, which JSON does not allow"
    if err.msg.startswith("Unterminated string"):
        return f"the string that opens at column {column} never closes"
    if err.msg.startswith("Invalid control character") and here in ("\n", "\r"):
        return (f"a string still open at the end of the line, column {column}: its closing quote "
                "is missing, or it holds a raw line break, which must be written \\n")
    if err.msg.startswith("Invalid control character"):
        return (f"a raw control character U+{ord(here):04X} in a string at column {column}, "
                "which JSON does not allow: escape it, a tab as \\t")
    if not doc[pos:].strip():
        return f"the {unit} ends inside the JSON value: the record is cut off"
    if err.msg == "Extra data":
        return f"more text after the JSON value at column {column}"
    msg = err.msg.removesuffix(" at")   # "Expecting value", "Invalid \\escape", ...
    return f"{msg[0].lower()}{msg[1:]} at column {column}"


def _json_error(path: Path, line: int, err: json.JSONDecodeError) -> DataError:
    if err.msg == "Extra data" and err.doc[err.pos:].strip() == ",":
        return DataError(f"{path} line {line}: a ',' follows the JSON object; JSON lines are "
                         "separated by newlines only; remove the trailing commas (or make the file "
                         "one JSON array [...])")
    return DataError(f"{path} line {line}: invalid JSON ({_json_problem(err)}); "
                     "expected one JSON object per line; fix or remove that line")


def _nan_is_null(token: str) -> float | None:
    """How the readers take the tokens JSON lacks but Python's ``json.dumps`` writes: ``NaN``,
    a float missing value (pandas'), is null, a missing value, as a Parquet NaN is
    (:func:`present`); read as a number it became the gold answer "nan". ``Infinity`` stays a
    float.

    >>> json.loads('{"answer": NaN, "score": -Infinity}', parse_constant=_nan_is_null)
    {'answer': None, 'score': -inf}
    """
    return None if token == "NaN" else float(token)


def iter_json_records(path: str | Path, sets: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each record of a JSONL file or a JSON array file;
    with ``sets``, a file that is one JSON object of lists (``{name: [records]}``, over many
    lines) is one record, for the reader to split (others refuse a one-object file).

    The layout is sniffed from the first non-blank character (``[`` = array, :func:`json_array`),
    not the extension: DynamicRAG's ``.json`` files are often JSON lines. JSONL is read one line at
    a time; blank lines are skipped. For an array, the line number is where the element starts
    (every element of a one-line array is on line 1: a reader numbering records without an id
    numbers an array's elements instead).
    """
    path = check_file(path)
    lines = numbered_lines(path)
    try:
        first_line_no, first = next(((n, line) for n, line in lines if line.strip()), (0, ""))
        if not first_line_no:
            raise empty_error(path, "JSON lines or a JSON array")
        if first.lstrip().startswith("["):
            text = first + "".join(line for _, line in lines)
            yield from _iter_json_array(path, text, first_line_no)
            return
        yield first_line_no, _parse_line(path, first_line_no, first, lines, sets)
        for line_no, line in lines:
            if line.strip():
                yield line_no, _parse_line(path, line_no, line, None)
    finally:
        lines.close()


PARQUET_SUFFIXES = (".parquet", ".pq")
DELIMITED_SUFFIXES = (".csv", ".tsv")   # optionally .gz


def json_array(path: Path) -> bool:
    """Whether :func:`iter_records` reads ``path`` as one JSON array (its first non-blank
    character is ``[``), not as JSON lines, a table or a saved dataset.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "q.json"
    >>> _ = p.write_text('\\n [{"question": "a"}, {"question": "b"}]')
    >>> json_array(p), json_array(p.with_name("q.csv"))
    (True, False)
    """
    if not path.is_file() or strip_gz(path) in DELIMITED_SUFFIXES + PARQUET_SUFFIXES:
        return False
    return first_line(path)[1].lstrip().startswith("[")


def iter_records(path: str | Path, what: str,
                 sets: bool = False) -> tuple[str, Iterator[tuple[int, Any]]]:
    """``(unit, records)`` of a file of ``what`` (``"questions"``): ``"row"`` and its rows for a
    ``.parquet``/``.pq`` file or a Hugging Face dataset folder (``save_to_disk``), else
    ``"line"`` and its records: a ``.csv``/``.tsv`` file's rows (DPR's question files or a table
    with a header, :mod:`stages.lib.data.delimited`), any other file's JSON records."""
    files = saved_dataset_files(Path(path))
    if files is not None:
        return "row", iter_arrow_records(Path(path), files, what)
    path = check_file(path)
    suffix = strip_gz(path)
    if suffix in DELIMITED_SUFFIXES:
        from stages.lib.data.delimited import iter_delimited_records

        return "line", iter_delimited_records(path, what)
    if suffix in PARQUET_SUFFIXES:
        return "row", iter_parquet_records(path, what)
    return "line", iter_json_records(path, sets)


def saved_dataset_files(path: Path) -> list[Path] | None:
    """The Arrow files of a Hugging Face dataset folder written by ``save_to_disk`` (its
    ``state.json`` lists them), or None when ``path`` is no such folder. A ``DatasetDict`` folder
    (``dataset_dict.json``, a subfolder per split) is refused, naming its splits."""
    if not path.is_dir():
        return None
    if (path / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if (p / "state.json").is_file())
        raise DataError(f"{path}: a Hugging Face DatasetDict folder (splits: "
                        f"{', '.join(splits) or 'none'}); expected one split; point the input at "
                        f"one split's folder, e.g. {path / (splits or ['test'])[0]}")
    state = path / "state.json"
    if not state.is_file():
        return None
    try:
        text = state.read_text()
    except OSError as e:
        raise DataError(f"{state}: cannot read it ({e.strerror}); make the saved dataset's folder "
                        "readable") from None
    try:
        files = [path / f["filename"] for f in json.loads(text)["_data_files"]]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{state}: not the state file of a saved dataset (expected a "
                        "_data_files list); save the dataset again with save_to_disk") from None
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{path}: {missing[0]} is listed in state.json but missing; copy the "
                        "whole folder, or save the dataset again with save_to_disk")
    return files


def arrow_batches(file: Path) -> Iterator:
    """The record batches of one of a saved dataset's Arrow files (an Arrow IPC stream,
    memory-mapped); a file that is not one, or is cut short, is a ``DataError`` naming it."""
    import pyarrow as pa

    try:
        yield from pa.ipc.open_stream(pa.memory_map(str(file)))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{file}: cannot read as an Arrow stream ({e}); save the dataset again "
                        "with save_to_disk") from None


def present(rec: dict) -> dict:
    """A table row's values less its nulls and float NaNs, the two ways a table marks a missing
    value (pyarrow keeps a NaN that a table was given; read as a value it became the answer
    "nan"), as keys a JSON line does not have.

    >>> present({"id": "q1", "answer": float("nan"), "gold": None, "score": 0.5})
    {'id': 'q1', 'score': 0.5}
    """
    return {k: v for k, v in rec.items() if v is not None and not (isinstance(v, float) and v != v)}


def iter_arrow_records(path: Path, files: list[Path], what: str) -> Iterator[tuple[int, dict]]:
    """Yield ``(row number, record)`` for each row of a saved dataset's Arrow files (Arrow IPC
    streams), nulls and NaNs left out as for Parquet (:func:`iter_parquet_records`)."""
    row_no = 0
    for file in files:
        for batch in arrow_batches(file):
            for rec in batch.to_pylist():
                row_no += 1
                yield row_no, present(rec)
    if row_no == 0:
        raise DataError(f"{path}: the saved dataset has no rows (expected {what})")


def iter_parquet_records(path: str | Path, what: str = "records") -> Iterator[tuple[int, dict]]:
    """Yield ``(row number, record)`` for each row of a Parquet file, read a batch at a time.

    A null value is left out of its record, as a key a JSON line does not have (Parquet gives
    every row every column: a set exported with an optional field has nulls where it is absent),
    and so is a float NaN, pandas' missing value (:func:`present`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = check_file(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: cannot read as Parquet ({str(e).splitlines()[0]}); a .parquet "
                        f"file must be Parquet: convert it, or name it .jsonl if it holds "
                        "JSON lines") from None
    if pf.metadata.num_rows == 0:
        raise DataError(f"{path}: the Parquet file has no rows (expected {what}); check that the "
                        "file was fully written")
    row_no = 0
    for batch in pf.iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            row_no += 1
            yield row_no, present(rec)


def _parse_line(path: Path, line_no: int, line: str, rest, sets: bool = False) -> Any:
    try:
        return json.loads(line, parse_constant=_nan_is_null)
    except json.JSONDecodeError as err:
        if rest is not None and line.lstrip().startswith("{"):
            # The first line is not a whole object: maybe one pretty-printed JSON object.
            try:
                whole = json.loads(line + "".join(text for _, text in rest),
                                   parse_constant=_nan_is_null)
            except json.JSONDecodeError:
                whole = None
            if sets and isinstance(whole, dict) and whole and all(isinstance(v, list)
                                                                  for v in whole.values()):
                return whole    # an object of sets ({name: [records]}): the reader asked for it
            if isinstance(whole, dict):
                keys = ", ".join(list(whole)[:5])
                raise DataError(
                    f"{path} line {line_no}: the file is a single JSON object (keys: {keys}); "
                    "expected JSON lines (one record per line) or a JSON array of records; "
                    "extract the list of records into its own file") from None
        raise _json_error(path, line_no, err) from None


def _iter_json_array(path: Path, text: str, start_line: int) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder(parse_constant=_nan_is_null)
    pos = text.index("[") + 1
    line, counted = start_line, 0
    n = len(text)
    ws = re.compile(r"\s*")
    pos = ws.match(text, pos).end()
    if pos < n and text[pos] == "]":
        raise empty_error(path, "at least one record in the JSON array")
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            err = _at_bracket(err)
            raise DataError(f"{path} line {start_line + err.lineno - 1}: invalid JSON "
                            f"({_json_problem(err, 'file')}); expected a JSON array of "
                            "records; fix the record") from None
        yield line, value
        pos = ws.match(text, end).end()
        if pos < n and text[pos] == ",":
            comma, pos = pos, ws.match(text, pos + 1).end()
            if pos < n and text[pos] == "]":
                comma_line = line + text.count("\n", counted, comma)
                raise DataError(f"{path} line {comma_line}: a ',' after the last record of the "
                                "array (a trailing comma); JSON allows none; remove that comma")
            continue
        if pos < n and text[pos] == "]":
            return
        bad_line = line + text.count("\n", counted, pos)
        raise DataError(f"{path} line {bad_line}: invalid JSON (expected ',' or ']' after a record "
                        "of the array); fix the array syntax")
