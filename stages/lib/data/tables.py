"""Rows to a pyarrow table of a declared schema; rows of a chunked table gathered cheaply."""

from __future__ import annotations


def to_table(rows: list[dict], schema, keep_null: tuple[str, ...] = ()):
    """Rows → a ``pyarrow.Table`` with exactly ``schema``'s columns (extra keys dropped).

    Missing list columns become ``[]``, other missing columns null; a list column named in
    ``keep_null`` stays null where a row lacks it (``ctxs``: none shipped, unlike ``[]``).

    >>> import pyarrow as pa
    >>> to_table([{"id": "1", "extra": 0}], pa.schema([("id", pa.string()),
    ...          ("gold", pa.list_(pa.string()))])).to_pylist()
    [{'id': '1', 'gold': []}]
    """
    import pyarrow as pa

    list_fields = [f.name for f in schema if f.name not in keep_null
                   and (pa.types.is_list(f.type) or pa.types.is_large_list(f.type))]
    if list_fields:
        rows = [{**r, **{k: [] for k in list_fields if r.get(k) is None}} for r in rows]
    return pa.Table.from_pylist(rows, schema=schema)


def take_rows(table, indices):
    """Rows ``indices`` (any order, repeats allowed) of a chunked ``pyarrow.Table``, contiguous.

    ``Table.take`` concatenates a chunked column before taking from it, copying all of it on
    every call; here each chunk gives only its own rows, so the cost is the rows taken.

    >>> import pyarrow as pa
    >>> t = pa.concat_tables([pa.table({"x": [0, 1]}), pa.table({"x": [2, 3]})])
    >>> take_rows(t, [3, 0, 3]).column("x").to_pylist()
    [3, 0, 3]
    """
    import numpy as np
    import pyarrow as pa

    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    batches = [b for b in table.to_batches() if b.num_rows]
    starts = np.cumsum([0] + [b.num_rows for b in batches])
    which = np.searchsorted(starts, idx, side="right") - 1
    order = np.argsort(which, kind="stable")
    chunk_of = which[order]
    parts = []
    for c in np.unique(chunk_of):
        lo, hi = np.searchsorted(chunk_of, [c, c + 1])
        parts.append(batches[c].take(pa.array(idx[order[lo:hi]] - starts[c])))
    if not parts:
        return table.schema.empty_table()
    gathered = pa.Table.from_batches(parts).combine_chunks()      # in chunk order
    return gathered.take(pa.array(np.argsort(order)))             # back in the asked order


def item_named(table):
    """``table`` with its lists' items named ``item``, as a table built from rows names them
    (Parquet names them ``element``, and a read keeps that): a stage that passes columns of
    its input through writes the bytes, and so the content hash, of the same rows built as
    Python values (a cached result and a new one agree, and nothing after it runs again).

    >>> import pyarrow as pa
    >>> t = pa.table({"x": pa.array([[1]], pa.list_(pa.field("element", pa.int64())))})
    >>> str(item_named(t).schema.field("x").type)
    'list<item: int64>'
    """
    import pyarrow as pa

    def named(t):
        if pa.types.is_list(t):
            return pa.list_(pa.field("item", named(t.value_type), t.value_field.nullable))
        if pa.types.is_struct(t):
            return pa.struct([f.with_type(named(f.type)) for f in t])
        return t

    schema = pa.schema([f.with_type(named(f.type)) for f in table.schema])
    columns = []
    for field in schema:
        column = table.column(field.name)
        if str(column.type) != str(field.type):   # == ignores the items' names
            column = _cast_slices(column, field.type)
        columns.append(column)
    return pa.table(columns, schema=schema)


def _cast_slices(column, type_):
    """``column`` cast to ``type_`` (the same buffers: only the types' names change), or, where
    pyarrow cannot cast a chunk where it lies (a slice of a struct with a field that is null in
    every row: "Struct child array has length smaller than expected", raised, or a result whose
    structure does not validate), a copy of it cast.

    >>> import pyarrow as pa
    >>> sliced = pa.chunked_array([pa.array([{"a": [1], "b": None}] * 4).slice(1, 2)])
    >>> want = pa.struct([("a", pa.list_(pa.field("x", pa.int64()))), ("b", pa.null())])
    >>> _cast_slices(sliced, want).to_pylist()
    [{'a': [1], 'b': None}, {'a': [1], 'b': None}]
    """
    import pyarrow as pa

    try:
        cast = column.cast(type_)
        cast.validate()       # the structure only (lengths, offsets): no pass over the values
        return cast
    except pa.ArrowInvalid:
        return pa.chunked_array([pa.concat_arrays([c]).cast(type_) for c in column.chunks], type_)
