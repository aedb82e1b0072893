"""A small file replaced whole or not at all: the run record, the history, a lease, a memo.

Written beside its final name under a name of this process (``.NAME.PID.tmp``) and renamed over
it, so a reader sees the old file or the new one, never half of one, and two processes writing
the same file at once each rename a whole file (the last one wins).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    """``text`` as the content of ``path``, replaced at once.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "status.json"
    ...     write_text(p, '{"state": "running"}'); write_text(p, '{"state": "done"}')
    ...     print(p.read_text(), sorted(f.name for f in Path(d).iterdir()))
    {"state": "done"} ['status.json']
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)   # a full disk or a signal leaves no temporary file
        raise
