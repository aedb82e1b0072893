"""New timestamps, same bytes: a cache entry copied or touched is re-hashed and kept.

A cache hit compares every file's size and mtime with its commit (``store.changed_file``): a few
stat calls, no reads. A copy that does not keep timestamps (``cp -r``, ``rsync`` without ``-t``,
many backup restores) or a ``touch`` changes every mtime and no byte, and used to quarantine every
entry, so the next run computed everything again. On a stat mismatch the entry is now read once:

- each artifact is hashed again and must give the content hash it was committed with (a rewrite,
  even with its size and mtime put back, still differs: ``rag verify`` finds those);
- each artifact's ``_manifest.json`` must name that hash and each file's own;
- the entry must hold the same files, each of the size committed (the log and the preview, which
  no step reads, are checked by size only).

Then the entry's stat table is recorded afresh (``restamp``), later lookups stat-check it again,
and the entry is a hit. Anything else is the change it looks like, and is quarantined as before.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from orchestrator.artifacts import rehash
from orchestrator.leases import tmp_name
from orchestrator.store import ENTRY, make_read_only   # (store imports this module lazily)


def content_problem(entry, now: dict[str, list]) -> str | None:
    """None when ``entry``'s files, whose stats are ``now`` (``store.file_table``), still hold
    what was committed; else the first file (relative to the entry) that does not.

    >>> from types import SimpleNamespace
    >>> entry = SimpleNamespace(path=Path("/nowhere"), meta={"outputs": {}},
    ...                         files={"_log.txt": [10, 1], "outputs": [None, 1]})
    >>> content_problem(entry, {"_log.txt": [10, 99], "outputs": [None, 99]}) is None
    True
    >>> content_problem(entry, {"_log.txt": [12, 99], "outputs": [None, 99]})
    '_log.txt'
    >>> content_problem(entry, {"outputs": [None, 99]})
    '_log.txt (deleted)'
    >>> content_problem(entry, {"_log.txt": [10, 1], "outputs": [None, 1], "x": [1, 1]})
    'x (added)'
    """
    gone = sorted(set(entry.files) - set(now))
    if gone:
        return f"{gone[0]} (deleted)"
    added = sorted(set(now) - set(entry.files))
    if added:
        return f"{added[0]} (added)"
    for rel, (size, _) in entry.files.items():
        if size is not None and now[rel][0] != size:
            return rel
    for name, out in entry.meta["outputs"].items():
        problem = _artifact_problem(entry.path / "outputs" / name, out, entry.files)
        if problem:
            return f"outputs/{name}/{problem}"
    return None


def _artifact_problem(dest: Path, out: dict, files: dict) -> str | None:
    """The first file of one artifact directory whose content is not the committed one."""
    digest, per_file = rehash(dest, out.get("kind", ""))
    manifest_rel = os.path.relpath(dest / "_manifest.json", dest.parent.parent)
    manifest: dict = {}
    if manifest_rel in files:
        try:   # unreadable (removed meanwhile: a gc): raised, and said as such by the caller
            manifest = json.loads((dest / "_manifest.json").read_text())
        except ValueError:
            return "_manifest.json"
    if digest == out.get("content_hash"):
        if manifest_rel in files and (manifest.get("content_hash") != digest
                                      or manifest.get("hashes") != per_file):
            return "_manifest.json"
        return None
    recorded = manifest.get("hashes") or {}
    bad = [f for f, h in per_file.items() if recorded.get(f) != h]
    return bad[0] if bad else "(its content hash)"


def restamp(entry, now: dict[str, list], tmp_dir: Path) -> bool:
    """Write ``entry``'s ``_entry.json`` again with the stat table ``now`` (the content was
    checked), through a file in ``tmp_dir`` renamed into place. False when it cannot be written
    (a read-only cache): the entry is still used, and re-hashed on the next lookup."""
    tmp = tmp_dir / tmp_name(entry.key)
    try:
        tmp.mkdir(parents=True)
        (tmp / ENTRY).write_text(json.dumps({**entry.meta, "files": now}, indent=1))
        os.chmod(tmp / ENTRY, 0o444)
        try:
            make_read_only(entry.path, now)
        except OSError:
            pass    # files of another user in a shared cache: their mode is theirs to keep
        os.replace(tmp / ENTRY, entry.path / ENTRY)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
