"""Artifact types and handles: tables (Parquet + declared pyarrow schema), directories, files, metrics.

An artifact is a handle, never a pickle: a type, the files that hold it, and a content hash.
Stage code declares types by subclassing ``Table`` / ``Directory`` / ``Metrics``; at run time it
receives instances of those classes bound to files in the cache. Every artifact directory written
by the runner has a versioned ``_manifest.json`` and, for tables, a ``_preview.jsonl`` for humans.

pyarrow is imported lazily: ``rag --help`` never pays for it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from orchestrator.errors import StageOutputError, did_you_mean
from orchestrator.hashing import hash_file, hash_strings

FORMAT = "ragline-artifact/1"
PREVIEW_ROWS = 5
GROUP_ROWS = 65_536          # at most this many rows per Parquet row group
GROUP_BYTES = 16 * 2**20     # and about this many uncompressed bytes
TAKE_BATCH = 8192            # rows decoded at a time by take
TAKE_THREADS = min(4, os.cpu_count() or 1)   # row groups take decodes at once


def group_rows(table) -> int:
    """Rows per Parquet row group for ``table``: 64k rows, fewer when rows are wide (16 MiB).

    A shard or a ``take`` reads whole row groups, so a group bounds what reading one row costs.
    A power of two from the table's size, so equal rows give equal bytes (and hashes) even when
    their in-memory layout differs a little (a validity bitmap or not).

    >>> import pyarrow as pa
    >>> group_rows(pa.table({"x": list(range(10))}))
    65536
    >>> group_rows(pa.table({"t": ["x" * 4096] * 100}))
    2048
    """
    if table.num_rows == 0:
        return GROUP_ROWS
    rows = GROUP_BYTES // max(1, table.nbytes // table.num_rows)
    return max(1024, min(GROUP_ROWS, 1 << max(0, int(rows).bit_length() - 1)))


@dataclass
class Ref:
    """Where an artifact lives and what it is; JSON-serialisable so worker processes get it too."""

    kind: str  # table | dir | file | metrics
    type: str  # "module:Class" of the declared artifact type
    content_hash: str
    paths: list[str]
    rows: list[int] = field(default_factory=list)  # rows per part, tables only
    producer: str = ""  # "step.output" or "source NAME"

    def to_json(self) -> dict:
        """A plain dict (lists copied, one level: ``asdict`` deep-copied every path of every
        shard, per task; a 512-shard step read by 512 tasks spent seconds there)."""
        return {**vars(self), "paths": list(self.paths), "rows": list(self.rows)}

    @property
    def num_rows(self) -> int:
        return sum(self.rows)

    def covering(self, start: int, stop: int | None) -> Ref:
        """This Ref less the parts that hold none of rows ``[start, stop)``: what a shard of a
        step reads of a gathered table (its content hash stays the whole table's).

        >>> r = Ref("table", "m:T", "h", ["a", "b", "c"], rows=[4, 0, 4])
        >>> r.covering(2, 6).paths, r.covering(4, 8).paths, r.covering(0, None).paths
        (['a', 'c'], ['c'], ['a', 'b', 'c'])
        """
        if stop is None or len(self.rows) != len(self.paths) or len(self.paths) < 2:
            return self
        keep, at = [], 0
        for i, n in enumerate(self.rows):
            if n and at < stop and at + n > start:
                keep.append(i)
            at += n
        return Ref(self.kind, self.type, self.content_hash, [self.paths[i] for i in keep],
                   [self.rows[i] for i in keep], self.producer)


class Artifact:
    """Base of the artifact types. ``kind`` says how the runner stores it."""

    kind: ClassVar[str] = ""

    def __init__(self, ref: Ref):
        self.ref = ref

    @classmethod
    def type_name(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"

    @classmethod
    def check_source(cls, path: Path) -> None:
        """Refuse a recipe source this type cannot read, with a one-line ``ConfigError`` or
        ``DataError`` naming the file (a prompt file's YAML, its placeholders).

        ``rag plan`` calls it for every source input of a step that will run, before any step
        runs, so a bad file is reported before the hours of training upstream of the step that
        reads it. It runs on every plan: keep it cheap (read a small file, never a corpus).
        The default accepts anything.
        """

    @classmethod
    def checks_sources(cls) -> bool:
        """Whether this type overrides :meth:`check_source`."""
        return cls.check_source.__func__ is not Artifact.check_source.__func__

    @classmethod
    def key_names(cls, path: Path) -> list[str]:
        """The parts of a recipe source's path that its stage reads besides the content (a
        question file's set name comes from its file name): they join the content hash in the
        step's key, so the same bytes under another name are another key. Default: none.
        """
        return []

    @classmethod
    def names_in_key(cls) -> bool:
        """Whether this type overrides :meth:`key_names`."""
        return cls.key_names.__func__ is not Artifact.key_names.__func__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.ref.producer or self.ref.paths})"


class Table(Artifact):
    """Rows in Parquet parts with a declared ``schema`` (a ``pyarrow.Schema``) on the subclass.

    A handle may be a row range of the whole table (a shard): ``read`` returns only those rows.
    """

    kind = "table"
    schema: ClassVar[Any] = None

    def __init__(self, ref: Ref, start: int = 0, stop: int | None = None):
        super().__init__(ref)
        self.start = start
        self.stop = ref.num_rows if stop is None else stop

    @property
    def num_rows(self) -> int:
        return self.stop - self.start

    @classmethod
    def from_rows(cls, rows: list[dict], where: str):
        """``rows`` as a ``pyarrow.Table`` of this type, converted and checked as the writer
        converts a stage's returned rows (one that does not fit: ``StageOutputError`` naming
        ``where``, the column and the row): for a stage that builds its output a block of rows
        at a time and returns the blocks' tables."""
        return _to_table(rows, cls, where)

    def _spans(self, lo: int, hi: int):
        """``(path, part_lo, part_hi)`` for each Parquet part overlapping table rows [lo, hi)."""
        offset = 0
        for path, n in zip(self.ref.paths, self.ref.rows):
            a, b = max(lo, offset), min(hi, offset + n)
            if a < b:
                yield path, a - offset, b - offset
            offset += n

    def stored_schema(self):
        """The columns as stored, with their types: the parts' schemas unified (a pass-through
        column that is null in every row of one shard's part takes the other parts' type)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.ref.paths:
            return self.schema
        return pa.unify_schemas([pq.read_schema(p) for p in self.ref.paths],
                                promote_options="default")

    def _empty(self, columns: list[str] | None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(self.ref.paths[0]) if self.ref.paths else self.schema
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        return schema.empty_table()

    def read(self, columns: list[str] | None = None):
        """This handle's rows as one ``pyarrow.Table``; only the row groups they lie in are read.

        A chunk per row group: ``read_row_groups`` would combine them into one, holding the
        table twice at its peak (650 against 363 MiB for a 219 MiB table, bench/README.md)."""
        import pyarrow.parquet as pq

        pieces = []
        for path, lo, hi in self._spans(self.start, self.stop):
            pf = pq.ParquetFile(path)
            groups, first = row_groups_between(_group_rows(pf), lo, hi)
            part = concat([pf.read_row_group(g, columns=columns) for g in groups])
            pieces.append(part.slice(lo - first, hi - lo))
        if not pieces:
            return self._empty(columns)
        return concat(pieces) if len(pieces) > 1 else pieces[0]

    def rows(self, columns: list[str] | None = None) -> list[dict]:
        """This handle's rows as a list of dicts."""
        return self.read(columns).to_pylist()

    def iter_tables(self, batch_size: int = 65_536, columns: list[str] | None = None):
        """Yield this handle's rows as ``pyarrow.Table`` pieces of at most ``batch_size`` rows.

        Streams: the row groups of the range are decoded one at a time (a group holds about
        16 MiB of rows: ``group_rows``). Not ``ParquetFile.iter_batches``, which buffers ahead:
        660 MiB at its peak to stream a 219 MiB table, against 195 MiB a group at a time.
        """
        import pyarrow.parquet as pq

        carry, held = [], 0
        for path, lo, hi in self._spans(self.start, self.stop):
            pf = pq.ParquetFile(path)
            counts = _group_rows(pf)
            groups, offset = row_groups_between(counts, lo, hi)
            for g in groups:
                group = pf.read_row_group(g, columns=columns)
                first, offset = offset, offset + group.num_rows
                a, b = max(lo, first), min(hi, offset)
                carry.append(group.slice(a - first, b - a))
                held += b - a
                while held >= batch_size:
                    table = concat(carry)
                    yield table.slice(0, batch_size)
                    carry, held = [table.slice(batch_size)], held - batch_size
        if held:
            yield concat(carry)

    def iter_batches(self, batch_size: int = 1024, columns: list[str] | None = None):
        """Yield lists of row dicts of at most ``batch_size`` rows (streamed, see ``iter_tables``)."""
        for table in self.iter_tables(batch_size, columns):
            yield table.to_pylist()

    def iter_rows(self, batch_size: int = 1024, columns: list[str] | None = None):
        """Yield this handle's rows as dicts, ``batch_size`` of them converted at a time, so a
        loop over a large table holds one batch as Python objects (``rows()`` holds them all)."""
        for rows in self.iter_batches(batch_size, columns):
            yield from rows

    def take(self, positions, columns: list[str] | None = None):
        """The rows at ``positions`` (0-based within this handle, any order, repeats allowed).

        Reads only the row groups that hold one of them, one group at a time, and keeps only the
        asked rows of each, so a few thousand rows of a 21M-row corpus cost a few row groups, not
        the corpus. Sorted unique positions come back as they were read (a chunk per row group,
        no copy); any other order is gathered into one contiguous table.
        """
        import numpy as np
        import pyarrow as pa

        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        if len(pos) and (pos.min() < 0 or pos.max() >= self.num_rows):
            raise IndexError(f"take: positions must lie in [0, {self.num_rows}), got "
                             f"{int(pos.min())}..{int(pos.max())}")
        wanted = np.unique(pos) + self.start          # sorted table rows
        pieces = []
        for path, lo, hi in self._spans(self.start, self.stop):
            pieces += _take_from_part(path, wanted, lo, hi, _part_offset(self.ref, path),
                                      columns)
        if not pieces:
            return self._empty(columns)
        found = concat(pieces)                  # the unique rows, sorted, a chunk per row group
        if len(pos) == len(wanted) and bool((np.diff(pos) > 0).all()):
            return found                         # asked sorted and unique: no copy
        return found.combine_chunks().take(pa.array(np.searchsorted(wanted, pos + self.start)))


def concat(pieces: list):
    """Row pieces of one table (row groups, or parts its shards wrote) as one ``pyarrow.Table``.

    A pass-through column that was null in every row of one shard is typed ``null`` in that
    part and, say, ``list<struct>`` in another: the null type is promoted, not refused.
    """
    import pyarrow as pa

    return pa.concat_tables(pieces, promote_options="default")


def _group_rows(pf) -> list[int]:
    return [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]


def _part_offset(ref: Ref, path: str) -> int:
    offset = 0
    for p, n in zip(ref.paths, ref.rows):
        if p == path:
            return offset
        offset += n
    raise KeyError(path)


def _take_from_part(path: str, wanted, lo, hi, part_offset, columns) -> list:
    """Rows of ``wanted`` (sorted table rows) inside part rows [lo, hi), group by group.

    The groups that hold some of them are decoded on up to ``TAKE_THREADS`` threads (Parquet
    decoding releases the GIL), each a batch at a time, keeping only the asked rows; the pieces
    come back in row order. A thread opens its own reader of the file.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pyarrow.parquet as pq

    readers = threading.local()

    def reader():
        if getattr(readers, "pf", None) is None:
            readers.pf = pq.ParquetFile(path)
        return readers.pf

    jobs, offset = [], 0
    for g, n in enumerate(_group_rows(reader())):
        a, b = max(lo, offset), min(hi, offset + n)
        i, j = np.searchsorted(wanted, [a + part_offset, b + part_offset]) if a < b else (0, 0)
        if i < j:
            jobs.append((g, wanted[i:j] - part_offset - offset))
        offset += n
    if len(jobs) < 2 or TAKE_THREADS < 2:
        return [p for job in jobs for p in _take_from_group(reader(), *job, columns)]
    with ThreadPoolExecutor(min(TAKE_THREADS, len(jobs))) as pool:
        done = pool.map(lambda job: _take_from_group(reader(), *job, columns), jobs)
        return [p for pieces in done for p in pieces]


def _take_from_group(pf, group: int, local, columns) -> list:
    """The rows ``local`` (sorted, within the group) of row group ``group``, a batch at a time."""
    import numpy as np
    import pyarrow as pa

    pieces, start = [], 0
    for batch in pf.iter_batches(TAKE_BATCH, row_groups=[group], columns=columns,
                                 use_threads=False):
        u, v = np.searchsorted(local, [start, start + batch.num_rows])
        if u < v:
            pieces.append(pa.Table.from_batches([batch.take(pa.array(local[u:v] - start))]))
        start += batch.num_rows
    return pieces


def row_groups_between(counts: list[int], lo: int, hi: int) -> tuple[list[int], int]:
    """(indices of the row groups overlapping rows [lo, hi), first row of the first of them).

    >>> row_groups_between([4, 4, 4], 5, 9)
    ([1, 2], 4)
    >>> row_groups_between([4, 4, 4], 0, 4)
    ([0], 0)
    """
    groups, first, offset = [], None, 0
    for g, n in enumerate(counts):
        if offset < hi and lo < offset + n:
            groups.append(g)
            first = offset if first is None else first
        offset += n
    return groups, (lo if first is None else first)


class Directory(Artifact):
    """A directory of files (a checkpoint, an index); the stage gets ``.path``."""

    kind = "dir"

    @property
    def path(self) -> Path:
        return Path(self.ref.paths[0])


class File(Artifact):
    """One external file (a recipe source); the stage gets ``.path``."""

    kind = "file"

    @property
    def path(self) -> Path:
        return Path(self.ref.paths[0])


class Metrics(Artifact):
    """A small JSON object of named values."""

    kind = "metrics"

    def read(self) -> dict:
        return json.loads(Path(self.ref.paths[0]).read_text())


# ---------------------------------------------------------------- schema compatibility


def type_problems(consumer, producer, where: str) -> list[str]:
    """Why a producer's pyarrow type cannot feed a consumer's (empty list: it can).

    Structs are structural: the producer may carry extra fields. Lists compare item types.

    >>> import pyarrow as pa
    >>> c = pa.list_(pa.struct([("id", pa.string())]))
    >>> p = pa.list_(pa.struct([("id", pa.string()), ("score", pa.float32())]))
    >>> type_problems(c, p, "ctxs"), type_problems(p, c, "ctxs")
    ([], ['ctxs.score is missing (expected float)'])
    """
    import pyarrow as pa

    if pa.types.is_struct(consumer) and pa.types.is_struct(producer):
        names = {producer.field(i).name: producer.field(i).type for i in range(producer.num_fields)}
        out = []
        for i in range(consumer.num_fields):
            f = consumer.field(i)
            if f.name not in names:
                out.append(f"{where}.{f.name} is missing (expected {f.type})")
            else:
                out += type_problems(f.type, names[f.name], f"{where}.{f.name}")
        return out
    list_types = (pa.types.is_list(consumer) or pa.types.is_large_list(consumer))
    if list_types and (pa.types.is_list(producer) or pa.types.is_large_list(producer)):
        return type_problems(consumer.value_type, producer.value_type, where)
    if consumer.equals(producer):
        return []
    return [f"{where} is {producer}, expected {consumer}"]


def schema_problems(consumer, producer) -> list[str]:
    """Columns of ``consumer`` (a ``pyarrow.Schema``) that ``producer`` lacks or types differently."""
    have = {f.name: f.type for f in producer}
    out = []
    for f in consumer:
        if f.name not in have:
            out.append(f"column '{f.name}' is missing (expected {f.type})")
        else:
            out += type_problems(f.type, have[f.name], f"column '{f.name}'")
    return out


def schema_fingerprint(schema) -> str:
    return hash_strings([f"{f.name}:{f.type}" for f in schema])


# ---------------------------------------------------------------- writing outputs


def _expects(cls: type[Artifact]) -> str:
    """The hint for a stage's wrong return value: what its declared output type expects."""
    head = f"fix the stage's return value: {cls.__name__}"
    if cls.kind == "table":
        cols = [f"{f.name} ({f.type})" for f in cls.schema]
        more = f", ... ({len(cols)} in all)" if len(cols) > 12 else ""
        return (f"{head} expects a list of row dicts (or a pyarrow.Table) with the columns "
                f"{', '.join(cols[:12])}{more}")
    if cls.kind == "metrics":
        return f"{head} expects a dict of JSON values, e.g. {{\"recall@10\": 0.5}}"
    if cls.kind == "dir":
        return f"{head} expects the path of a directory the stage filled: ctx.new_dir(\"name\")"
    return f"{head} is a {cls.kind}, which a stage cannot output"


def _short(value, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


_CONVERT_ERRORS = (TypeError, ValueError, OverflowError)  # pyarrow's ArrowInvalid is a ValueError


def _misfit(rows: list[dict], schema) -> str | None:
    """``column 'n' (int64): row 0 has 'three' (str)``: the first value of ``rows`` that does not
    convert to its declared column type, or None. Only called once the whole conversion failed:
    column by column, then in chunks, then value by value within the failing chunk."""
    import pyarrow as pa

    def fits(values, type_) -> bool:
        try:
            pa.array(values, type=type_)
        except (pa.ArrowException, *_CONVERT_ERRORS):
            return False
        return True

    for f in schema:
        values = [r.get(f.name) for r in rows]
        if fits(values, f.type):
            continue
        for start in range(0, len(values), 1024):
            chunk = values[start:start + 1024]
            if fits(chunk, f.type):
                continue
            for i, v in enumerate(chunk, start):
                if not fits([v], f.type):
                    return (f"column '{f.name}' ({f.type}): row {i} has {_short(v)} "
                            f"({type(v).__name__})")
    return None


def _truncated(rows: list[dict], schema) -> str | None:
    """The first float with a fraction in an integer column: pyarrow's conversion would store
    1.5 as 1 without a word.

    >>> import pyarrow as pa
    >>> _truncated([{"n": 2.0}, {"n": 1.5}], pa.schema([("n", pa.int64())]))
    "column 'n' (int64): row 1 has 1.5 (float), which would be stored as 1"
    """
    import pyarrow as pa

    for f in schema:
        if not pa.types.is_integer(f.type):
            continue
        for i, r in enumerate(rows):
            v = r.get(f.name)
            if isinstance(v, float) and not v.is_integer():
                stored = f"would be stored as {int(v)}" if math.isfinite(v) else "is no integer"
                return f"column '{f.name}' ({f.type}): row {i} has {_short(v)} (float), which {stored}"
    return None


def _untyped(rows: list[dict], names: list, cls: type[Table]) -> str | None:
    """The first extra (undeclared) column whose values pyarrow cannot give one type, or None."""
    import pyarrow as pa

    for name in names:
        try:
            pa.array([r.get(name) for r in rows])
        except (pa.ArrowException, *_CONVERT_ERRORS) as e:
            return (f"column '{name}' (not declared by {cls.__name__}, so typed from its values) "
                    f"cannot be typed: {e}")
    return None


def _to_table(value, cls: type[Table], where: str):
    """Turn a stage's return value (rows or a pyarrow Table) into a Table with ``cls.schema``.

    A value that does not fit is the stage's bug, not bad input: ``StageOutputError``."""
    import pyarrow as pa

    schema = cls.schema

    def wrong(problem: str) -> StageOutputError:
        return StageOutputError(where, problem, hint=_expects(cls))

    if isinstance(value, pa.Table):
        problems = schema_problems(schema, value.schema)
        if problems:
            # Try a safe cast of the declared columns (int64 -> int32, and so on) before failing.
            try:
                cols = {f.name: value.column(f.name).cast(f.type) for f in schema}
            except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise wrong(f"{problems[0]} (declared by {cls.__name__})") from None
            extra = [n for n in value.column_names if n not in cols]
            return pa.table({**cols, **{n: value.column(n) for n in extra}})
        return value
    if isinstance(value, list):
        odd = next((i for i, r in enumerate(value) if not isinstance(r, dict)), None)
        if odd is not None:
            raise wrong(f"row {odd} is {_short(value[odd])} ({type(value[odd]).__name__}), "
                        f"not a dict of column values")
        # extra columns: every key any row has beyond the schema, in order of first appearance
        # (a loader's optional fields, e.g. ASQA's qa_pairs, may start on any row)
        extra_fields = list(dict.fromkeys(k for r in value for k in r if k not in schema.names))
        absent = [n for n in schema.names if value and not any(n in r for r in value)]
        if absent:   # from_pylist would fill it with nulls: a misnamed key, silently cached
            keys = list(dict.fromkeys(k for r in value[:100] for k in r))
            raise wrong(f"no row has the column '{absent[0]}' that {cls.__name__} declares"
                        f"{did_you_mean(absent[0], extra_fields)}; the rows have: "
                        f"{', '.join(map(str, keys[:12]))}")
        try:
            table = pa.Table.from_pylist(value, schema=schema)
        except (pa.ArrowException, *_CONVERT_ERRORS) as e:
            raise wrong(f"rows do not fit {cls.__name__}: "
                        f"{_misfit(value, schema) or e}") from None
        truncated = _truncated(value, schema)
        if truncated:
            raise wrong(f"rows do not fit {cls.__name__}: {truncated}")
        if extra_fields:  # extra columns pass through, typed by inference
            try:
                extra = pa.Table.from_pylist([{k: r.get(k) for k in extra_fields} for r in value])
            except (pa.ArrowException, *_CONVERT_ERRORS) as e:
                raise wrong(_untyped(value, extra_fields, cls) or f"extra columns: {e}") from None
            for name in extra_fields:
                table = table.append_column(name, extra.column(name))
        return table
    got = "None (does the stage return its rows?)" if value is None else type(value).__name__
    raise wrong(f"expected a list of row dicts or a pyarrow.Table for {cls.__name__}, got {got}")


class _NotJson(TypeError):
    def __init__(self, value):
        super().__init__(type(value).__name__)
        self.value = value


def _json_number(value) -> float:
    """``json.dumps``'s fallback for a metric value: numbers of other types (numpy and torch
    scalars) as floats; anything else is not a JSON value."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _NotJson(value) from None


def _metrics_text(value, cls: type[Metrics], where: str) -> str:
    """A stage's metrics dict as JSON text; a value that is not JSON names its metric."""
    if not isinstance(value, dict):
        got = "None (does the stage return its metrics?)" if value is None else type(value).__name__
        raise StageOutputError(where, f"expected a dict of metrics, got {got}", hint=_expects(cls))
    try:
        # in the stage's order, not sorted: a ``display`` block lists the columns to show in
        # order (orchestrator.cli.summary.shown), and a reader sees the metrics as written
        return json.dumps(value, indent=2, default=_json_number)
    except (TypeError, ValueError) as e:
        problem = f"metrics are not JSON: {e}"
        for name, metric in value.items():
            try:
                json.dumps(metric, default=_json_number)
            except _NotJson as bad:
                what = "is" if bad.value is metric else "holds"
                problem = (f"metric '{name}' {what} a {type(bad.value).__name__}; metrics are "
                           f"JSON values (numbers, strings, lists, dicts)")
                break
            except (TypeError, ValueError) as other:
                problem = f"metric '{name}' is not JSON: {other}"
                break
        raise StageOutputError(where, problem, hint=_expects(cls)) from None


def write_artifact(value, cls: type[Artifact], dest: Path, producer: str, key: str) -> Ref:
    """Write a stage's return value for output type ``cls`` into ``dest`` and return its Ref.

    ``dest`` is inside a temporary directory that the caller renames into the cache once every
    output is written, so a crash leaves nothing that looks complete.
    """
    dest.mkdir(parents=True, exist_ok=True)
    where = f"step '{producer.split('.')[0]}' output '{producer.split('.', 1)[-1]}'"
    manifest: dict[str, Any] = {"format": FORMAT, "type": cls.type_name(), "kind": cls.kind,
                                "producer": producer, "key": key}
    if cls.kind == "table":
        import pyarrow.parquet as pq

        table = _to_table(value, cls, where)
        part = dest / "part-00000.parquet"
        group = group_rows(table)
        with pq.ParquetWriter(part, table.schema, compression="zstd") as writer:
            for lo in range(0, max(1, table.num_rows), group):
                # one contiguous piece per row group: Parquet's pages follow the chunks they
                # are given, so equal rows built in other pieces would give other bytes (a
                # reader's batches, retrieve's 256-question ctxs) and another hash
                writer.write_table(table.slice(lo, group).combine_chunks(), row_group_size=group)
        files = [part]
        rows = [table.num_rows]
        manifest.update(num_rows=table.num_rows,
                        schema_fingerprint=schema_fingerprint(cls.schema),
                        columns={f.name: str(f.type) for f in table.schema})
        with open(dest / "_preview.jsonl", "w") as f:
            for row in table.slice(0, PREVIEW_ROWS).to_pylist():
                f.write(json.dumps(row, default=str, ensure_ascii=False)[:4000] + "\n")
    elif cls.kind == "metrics":
        text = _metrics_text(value, cls, where)
        path = dest / "metrics.json"
        path.write_text(text)
        files, rows = [path], []
    elif cls.kind == "dir":
        if not isinstance(value, (str, os.PathLike)) or not Path(value).is_dir():
            raise StageOutputError(where, "expected the path of a directory the stage filled, "
                                          f"got {_short(value)}", hint=_expects(cls))
        src = Path(value)
        data = dest / "data"
        if src.resolve() != data.resolve():
            try:
                os.replace(src, data)  # same filesystem: ctx.new_dir() lives beside dest
            except OSError:
                shutil.copytree(src, data, symlinks=True)
        files = sorted(p for p in data.rglob("*") if p.is_file())
        rows = []
        manifest["files"] = {str(p.relative_to(data)): p.stat().st_size for p in files}
        files_for_ref = [data]
    else:
        raise StageOutputError(where, f"cannot write an artifact of kind '{cls.kind}'",
                               hint=_expects(cls))
    content_hash, per_file = hash_files(dest, cls.kind, files)
    manifest["content_hash"] = content_hash
    manifest["hashes"] = per_file
    (dest / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    paths = [str(p) for p in (files_for_ref if cls.kind == "dir" else files)]
    return Ref(cls.kind, cls.type_name(), content_hash, paths, rows, producer)


def hash_files(dest: Path, kind: str, files: list[Path]) -> tuple[str, dict[str, str]]:
    """(content hash of an artifact, {file relative to ``dest``: its hash}) over ``files``."""
    per_file = {str(p.relative_to(dest)): hash_file(p) for p in files}
    return hash_strings([kind] + [x for item in per_file.items() for x in item]), per_file


def artifact_files(dest: Path, kind: str) -> list[Path]:
    """The files an artifact's content hash covers, found again on disk (``rag verify``)."""
    if kind == "table":
        return sorted(dest.glob("part-*.parquet"))
    if kind == "metrics":
        return [dest / "metrics.json"]
    return sorted(p for p in (dest / "data").rglob("*") if p.is_file())


def rehash(dest: Path, kind: str) -> tuple[str, dict[str, str]]:
    """Hash an artifact directory's content again, exactly as ``write_artifact`` did."""
    return hash_files(dest, kind, artifact_files(dest, kind))
