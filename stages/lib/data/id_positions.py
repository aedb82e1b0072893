"""Where passage ids lie in a table, found from its id column alone.

A step that needs a few passages of a large corpus by id (a query's source passage, the hits of
a search) reads the corpus' ``id`` column, finds the rows, and then ``take``s only those rows:
1M passages of about 100 words as Python rows cost 1.9 GB a process, their id column a few tens
of MB (``bench/bench_reinforced_ir.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def id_column(table) -> "pa.Array":
    """The ``id`` column of ``table`` (a table handle), read alone, as one array."""
    return table.read(columns=["id"]).column("id").combine_chunks()


def id_positions(ids, column: "pa.Array") -> "np.ndarray":
    """The 0-based row of each of ``ids`` (strings, or a pyarrow string array) in ``column``
    (:func:`id_column`), ``-1`` where an id is not there; an id held by several rows gives the
    first (``load`` refuses a corpus that repeats one).

    >>> import pyarrow as pa
    >>> id_positions(["p2", "x", "p0"], pa.array(["p0", "p1", "p2"])).tolist()
    [2, -1, 0]
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, pa.string())
    found = pc.index_in(wanted.cast(column.type), value_set=column)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
