"""User-facing errors: one line of what went wrong and where, then what to do.

The CLI prints ``RagError`` without a traceback (unless ``RAGLINE_FULL_ERROR=1``) and exits with
``exit_code``: 2 for a recipe or usage problem found before anything ran, 1 for a step that failed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``.

    >>> did_you_mean("retreive", ["retrieve", "rerank"])
    " (did you mean 'retrieve'?)"
    """
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
