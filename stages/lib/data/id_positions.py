"""Where passage ids lie in a table, found from its id column alone.

A step that needs a few passages of a large corpus by id (a query's source passage, the hits of
a search) reads the corpus' ``id`` column, finds the rows, and then ``take``s only those rows:
MS MARCO's 8.8M passages as Python rows cost about 15 GB a process, the id column about 0.3 GB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def id_positions(ids, table) -> "np.ndarray":
    """The 0-based row of each of ``ids`` in ``table`` (a table handle with an ``id`` column),
    ``-1`` where an id is not there; ``ids`` is a list of strings or a pyarrow string array.

    >>> import pyarrow as pa
    >>> class Handle:                    # a stand-in for an artifact table handle
    ...     def read(self, columns):
    ...         return pa.table({"id": ["p0", "p1", "p2"]}).select(columns)
    >>> id_positions(["p2", "x", "p0"], Handle()).tolist()
    [2, -1, 0]
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.read(columns=["id"]).column("id").combine_chunks()
    wanted = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, pa.string())
    found = pc.index_in(wanted.cast(column.type), value_set=column)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
