"""Content hashes: xxh3-128 of file bytes, and a size+mtime memo so unchanged sources are not re-read.

xxh3-128 hashes several times faster than sha256 (bench/README.md has the figures), so hashing a
new artifact is close to the cost of reading it. Cache keys themselves are sha256 of small
canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import xxhash

from orchestrator.atomic import write_text

CHUNK = 8 << 20
log = logging.getLogger("ragline")


def hash_file(path: str | Path) -> str:
    """xxh3-128 hex digest of a file's bytes, read in chunks of 8 MiB at most (a small file's
    buffer is its size: zero-filling 8 MiB took 13 times as long as hashing a 100-byte file)."""
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(min(CHUNK, os.fstat(f.fileno()).st_size + 1))
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def hash_strings(parts: list[str]) -> str:
    """xxh3-128 of a list of strings (used to combine file or shard hashes in order).

    >>> hash_strings(["a", "b"]) == hash_strings(["a", "b"]) != hash_strings(["b", "a"])
    True
    """
    h = xxhash.xxh3_128()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same value always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def key_of(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``: the cache key of a task."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


class SourceMemo:
    """Remembers ``path -> (size, mtime_ns, ctime_ns, hash)`` so an unchanged source file is never
    re-read. The change time is the kernel's: an edit that puts the size and modification time
    back (``touch -r``) still moves it, so the file is read again.

    A directory source (a model checkpoint) hashes as the ordered list of its files' relative
    paths and hashes, each file memoised the same way.

    Several processes share the file (the members of a sweep, ``rag gc``): :meth:`save` merges
    what this one learned or forgot into the file as it is then, under a lock, so that a
    process that saves later does not drop another's rows (which would have the next run read
    a 16 GB checkpoint whole again).
    """

    def __init__(self, path: Path):
        self.path = path
        self.changed = False
        self.memo: dict[str, list] = {}
        self.loaded: dict[str, list] = {}     # the rows as read, to tell this process' changes
        try:
            memo = json.loads(path.read_text())
        except (FileNotFoundError, NotADirectoryError):   # (a cache at a file: refused later)
            return
        except (OSError, ValueError) as e:
            log.warning("%s is damaged (%s); source files will be hashed again", path,
                        str(e).splitlines()[0])
            return
        self.memo = _rows(memo)
        self.loaded = dict(self.memo)

    def file_hash(self, path: Path | str) -> str:
        st = os.stat(path)
        key = str(path)
        hit = self.memo.get(key)
        if hit and hit[:3] == [st.st_size, st.st_mtime_ns, st.st_ctime_ns]:
            return hit[3]
        digest = hash_file(path)
        self.memo[key] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest]
        self.changed = True
        return digest

    def hash(self, path: str | Path) -> str:
        path = Path(path).resolve()
        if path.is_file():
            return self.file_hash(path)
        parts = []
        top = str(path)
        # strings, not Path: 20,000 files in 0.1 s. Links to folders are followed, as the readers
        # follow them (a folder of sets made of links), unless one leads back up (a loop)
        links: dict[str, tuple[str, ...]] = {}   # folder -> the targets of the links above it
        for root, dirs, files in os.walk(top, followlinks=True):
            above = links.get(os.path.dirname(root), ())
            if os.path.islink(root):
                real = os.path.realpath(root)
                if _loops_back(root, real, above):
                    dirs[:] = []
                    continue
                above += (real,)
            if dirs and above:
                links.update((os.path.join(root, d), above) for d in dirs)
            dirs.sort()
            rel = root[len(top) + 1:]
            for name in sorted(files):
                parts += [f"{rel}/{name}" if rel else name, self.file_hash(f"{root}/{name}")]
        return hash_strings(parts)

    def prune(self, here_only: bool = False) -> int:
        """Forget the files that no longer exist (``rag gc``); the number forgotten. With
        ``here_only`` (a cache that other hosts use too), only those whose folder exists here:
        a path under a folder this host lacks may be another host's file (node-local disk), and
        forgetting it would have that host read it whole again."""
        gone = [key for key in self.memo if not os.path.exists(key)
                and (not here_only or os.path.isdir(os.path.dirname(key)))]
        for key in gone:
            del self.memo[key]
        self.changed = self.changed or bool(gone)
        return len(gone)

    def save(self) -> None:
        """Write this process' new, changed and forgotten rows into the file as it is now."""
        if not self.changed:
            return
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.path}.lock"):
            try:
                rows = _rows(json.loads(self.path.read_text()))
            except (OSError, ValueError):      # none yet, or damaged: this process' rows alone
                rows = {}
            rows.update((k, v) for k, v in self.memo.items() if self.loaded.get(k) != v)
            for key in self.loaded.keys() - self.memo.keys():   # forgotten, unless re-learned
                if rows.get(key) == self.loaded[key]:
                    del rows[key]
            write_text(self.path, json.dumps(rows))
        self.memo, self.loaded, self.changed = rows, dict(rows), False


def _rows(memo) -> dict[str, list]:
    """The well-formed rows of a loaded ``sources.json`` (``path -> [size, mtime_ns, ctime_ns,
    hash]``); anything else in it is dropped."""
    if not isinstance(memo, dict):
        return {}
    return {k: v for k, v in memo.items() if isinstance(v, list) and len(v) == 4}


def _loops_back(link: str, real: str, above: tuple[str, ...]) -> bool:
    """Whether a linked folder met in a walk that follows links leads back into itself: its
    target ``real`` holds the link's own folder (``..``, ``/``), or is the target of a link
    above it on the way down (``a -> b``, ``b/c -> a``). Only a link can make a loop, so only
    links are asked (a resolved path each).

    >>> import os, tempfile
    >>> top = os.path.join(os.path.realpath(tempfile.mkdtemp()), "sets")
    >>> os.makedirs(os.path.join(top, "nq"))
    >>> for name, target in (("up", ".."), ("root", "/"), ("nq2", "nq")):
    ...     os.symlink(target, os.path.join(top, name))
    >>> [_loops_back(os.path.join(top, n), os.path.realpath(os.path.join(top, n)), ())
    ...  for n in ("up", "root", "nq2")]
    [True, True, False]
    """
    here = os.path.realpath(os.path.dirname(link))
    inside = here == real or here.startswith(real.rstrip(os.sep) + os.sep)
    return inside or real in above


def stage_code_hash(fn) -> str:
    """A hash of a stage function's code: its decorator line, signature and body, parsed, so that
    comments and formatting do not count; "" when the source cannot be read (a built-in, a REPL).

    >>> def f(x):  # a comment
    ...     return x + 1
    >>> def g(x):
    ...     return x + 1
    >>> def h(x):
    ...     return x + 2
    >>> stage_code_hash(f) == stage_code_hash(g), stage_code_hash(f) == stage_code_hash(h)
    (True, False)
    """
    import ast
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return ""
    try:
        tree = ast.parse(source)
        node = tree.body[0]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.name = "_"  # the function's own name is not its code
        text = ast.dump(tree, annotate_fields=False)
    except SyntaxError:
        text = source
    return hash_strings([text])


_code_memo: dict[str, dict] = {}


def registered_code(stage: str) -> dict:
    """``{"fn": stage_code_hash, "module": hash of the module file}`` of a registered stage
    ({} when the stage is not registered in this process); recorded with each cache entry."""
    if stage in _code_memo:
        return _code_memo[stage]
    import inspect

    from orchestrator.registry import REGISTRY

    spec = REGISTRY.get(stage)
    if spec is None:
        return {}
    try:
        module = hash_file(inspect.getsourcefile(spec.fn) or "")
    except (OSError, TypeError):
        module = ""
    _code_memo[stage] = {"fn": stage_code_hash(spec.fn), "module": module}
    return _code_memo[stage]
