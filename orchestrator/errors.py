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


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``.

    >>> did_you_mean("retreive", ["retrieve", "rerank"])
    " (did you mean 'retrieve'?)"
    """
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def disk_full(exc: BaseException, cache_root: str = "") -> str | None:
    """The one line for a write that found the disk full (ENOSPC) or the quota spent (EDQUOT),
    anywhere in ``exc``'s chain, naming where: the file written when it lies outside the cache,
    else the cache directory; None for any other error.

    >>> disk_full(OSError(errno.ENOSPC, "Error writing bytes to file"), "/c")[:56]
    'cache directory /c: the disk is full (No space left on d'
    """
    full = next((e for e in _chain(exc)
                 if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)), None)
    if full is None:
        return None
    what = "the disk quota is exceeded" if full.errno == errno.EDQUOT else "the disk is full"
    line = f"{what} ({os.strerror(full.errno)}); {FULL_DISK_HINT}"
    name = str(full.filename or "")
    if name and not (cache_root and Path(name).is_relative_to(cache_root)):
        return f"{name}: {line}"
    return f"cache directory {cache_root}: {line}" if cache_root else line


def _chain(exc: BaseException | None):
    """``exc``, then the exception it was raised from (or while handling), and so on."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
