"""Rows to a pyarrow table of a declared schema."""

from __future__ import annotations


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

