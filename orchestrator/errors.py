"""User-facing errors: one line of what went wrong and where, then what to do.

The CLI prints ``RagError`` without a traceback (unless ``RAGLINE_FULL_ERROR=1``) and exits with
``exit_code``: 2 for a recipe or usage problem found before anything ran, 1 for a step that failed.
A ``rag run`` whose failed steps all raised ``DataError`` or ``ConfigError`` (bad input found
while running) exits 2 too: rerunning it unchanged would fail the same way. A stage that returns
something its declared output type cannot hold raises ``StageOutputError``: its code, not the
input, must change, and the run exits 1.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable
from pathlib import Path

FULL_DISK_HINT = "free space (e.g. rag gc) and rerun: finished steps are kept"


class RagError(Exception):
    """An error a user can fix. ``str(err)`` is the one-line message; ``hint`` is the next step."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.key = key  # dotted recipe key the error is about; the DAG builder prefixes file:line

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(RagError):
    """The recipe, an override or a command-line argument is wrong; nothing was run."""

    exit_code = 2


class DataError(RagError):
    """An input file or table is malformed (names the file and line, or the column)."""


class StageOutputError(RagError):
    """A stage returned a value its declared output type cannot hold: the stage's code is wrong,
    not its input, so this is never "bad input" (exit 1, unlike ``DataError``).

    ``where`` is ``step 's' output 'out'`` (or ``step 's'``), ``problem`` what is wrong with the
    value; the task that ran the stage adds the stage's name and module (``of_stage``), so the
    line says whose code to fix.

    >>> e = StageOutputError("step 's' output 'out'", "metric 'p' is a PosixPath")
    >>> e.of_stage("my.count", "mystages.words").message
    "step 's' output 'out' of stage 'my.count' (mystages.words): metric 'p' is a PosixPath"
    """

    def __init__(self, where: str, problem: str, *, hint: str | None = None, stage: str = ""):
        self.where, self.problem, self.stage = where, problem, stage
        super().__init__(f"{where} of {stage}: {problem}" if stage else f"{where}: {problem}",
                         hint=hint)

    def of_stage(self, name: str, module: str) -> StageOutputError:
        """The same error, naming the stage that returned the value and its module."""
        return StageOutputError(self.where, self.problem, hint=self.hint,
                                stage=f"stage '{name}' ({module})")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name``, if one is close enough to be a typo of it.

    >>> closest("retreive", ["retrieve", "rerank"]), closest("x", ["retrieve"])
    ('retrieve', None)
    """
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``.

    >>> did_you_mean("retreive", ["retrieve", "rerank"])
    " (did you mean 'retrieve'?)"
    """
    close = closest(name, choices)
    return f" (did you mean '{close}'?)" if close else ""


_NO_ROOM = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EFBIG: "a file reached the file-size limit of ulimit -f"}
OTHER_DISK_HINT = ("free space on that disk and rerun: finished steps are kept (rag gc frees only "
                   "the cache's disk)")
FILE_SIZE_HINT = "raise the limit (ulimit -f unlimited) and rerun: finished steps are kept"


def disk_full(exc: BaseException, cache_root: str = "", runs_dir: str = "") -> str | None:
    """The one line for a write that found the disk full (ENOSPC), the quota spent (EDQUOT) or
    the file-size limit reached (EFBIG, ``ulimit -f``), anywhere in ``exc``'s chain, naming
    where: the cache directory when the file written lies in it (or none is known), the runs
    directory and the file when it lies there, else the file; None for any other error.
    ``rag gc`` is suggested only where it frees the full disk: the cache's.

    >>> disk_full(OSError(errno.ENOSPC, "Error writing bytes to file"), "/c")[:56]
    'cache directory /c: the disk is full (No space left on d'
    >>> disk_full(OSError(errno.EFBIG, "File too large"), "/c")
    'cache directory /c: a file reached the file-size limit of ulimit -f (File too large); \
raise the limit (ulimit -f unlimited) and rerun: finished steps are kept'
    """
    full = next((e for e in _chain(exc) if isinstance(e, OSError) and e.errno in _NO_ROOM), None)
    if full is None:
        return None
    what = f"{_NO_ROOM[full.errno]} ({os.strerror(full.errno)})"
    name = str(full.filename or written_file(full) or "")
    if not name and runs_dir and cache_root and not same_disk(runs_dir, cache_root):
        name = _fuller(runs_dir, cache_root)   # no file known: the disk with less room left
    # a file too large is named even in the cache: that file, not the disk, hit the limit
    in_cache = not name or (_under(name, cache_root) and full.errno != errno.EFBIG)
    if full.errno == errno.EFBIG:
        hint = FILE_SIZE_HINT
    elif in_cache or same_disk(name, cache_root):
        hint = FULL_DISK_HINT
    else:
        hint = OTHER_DISK_HINT
    if in_cache:
        return f"cache directory {cache_root}: {what}; {hint}" if cache_root else f"{what}; {hint}"
    if _under(name, runs_dir):
        writing = f" writing {name}" if name != str(runs_dir) else ""
        return f"runs directory {runs_dir}: {what}{writing}; {hint}"
    return f"{name}: {what}; {hint}"


def _under(path: str, folder: str) -> bool:
    return bool(folder) and Path(path).absolute().is_relative_to(Path(folder).absolute())


def written_file(exc: BaseException) -> str | None:
    """The file a write that raised ``exc`` was writing, when its OSError names none: a
    ``Path.write_text`` whose closing flush fails does not. Its traceback's innermost
    ``pathlib`` frame holds the path as ``self``."""
    from pathlib import PurePath

    found, tb = None, exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        name = frame.f_code.co_filename   # pathlib.py; from Python 3.13 a package, pathlib/
        in_pathlib = name.endswith("pathlib.py") or f"{os.sep}pathlib{os.sep}" in name
        here = frame.f_locals.get("self") if in_pathlib else None
        found = str(here) if isinstance(here, PurePath) else found
        tb = tb.tb_next
    return found


def _fuller(runs_dir: str, cache_root: str) -> str:
    """``runs_dir`` when its disk has less room left than the cache's, else "" (the cache)."""
    try:
        room = [os.statvfs(p).f_bavail * os.statvfs(p).f_frsize for p in (runs_dir, cache_root)]
    except OSError:
        return ""
    return str(runs_dir) if room[0] < room[1] else ""


def same_disk(path: str, other: str) -> bool:
    """Whether ``path`` and ``other`` (or the nearest folders above them that exist) lie on one
    file system; False when either is unknown."""
    if not path or not other:
        return False
    devices = []
    for p in (Path(path).absolute(), Path(other).absolute()):
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            devices.append(os.stat(p).st_dev)
        except OSError:
            return False
    return devices[0] == devices[1]


def _chain(exc: BaseException | None):
    """``exc``, then the exception it was raised from (or while handling), and so on."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
