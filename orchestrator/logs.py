"""Logging: a rich console for people, one log file per task for the record."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_WARNING = re.compile(r"\S+ \S+ WARNING (\S+): (.*)")  # a WARNING line written with FORMAT
_consoles: dict[bool, object] = {}


def console():
    """The rich console for progress, logs and errors (stderr), created on first use."""
    return _make(stderr=True)


def report():
    """The rich console for what a command reports (stdout): plan tables, ``rag stages``,
    ``status``, ``show``, result tables; ``rag stages | grep retrieve`` and ``rag plan … >
    plan.txt`` get them, while progress and errors stay on stderr."""
    return _make(stderr=False)


def _make(stderr: bool):
    if stderr not in _consoles:
        from rich.console import Console

        # Not a terminal (CI, a log file, a pipe): 120 columns, so tables are not cut at 80.
        # No emoji codes: "pipeline.yaml:100:" is a file and line, not ":100:" (a 💯 sign).
        stream = sys.stderr if stderr else sys.stdout
        _consoles[stderr] = Console(stderr=stderr, highlight=False, emoji=False,
                                    width=None if stream.isatty() else 120)
    return _consoles[stderr]


def quiet_when_closed(note: str | None = None) -> None:
    """Once the reader of stdout or stderr is gone (``rag stages | grep -q retrieve``, ``rag run
    … | head``), that console goes quiet and the command goes on: rich's default is to exit 1
    at the next line, which left a run's record ``running`` and made a reader that stops early
    look like a failure. ``note`` is said on stderr when stdout closes."""
    for c in (console(), report()):
        c.on_broken_pipe = functools.partial(_silence, c, note)


def _silence(c, note: str | None) -> None:
    """Quiet console ``c`` whose pipe is closed; its stream now writes to /dev/null, so the
    bytes still buffered in it do not fail again when Python exits."""
    c.quiet = True
    quiet_stream(c.file)
    if note and c is not console():
        console().print(f"[yellow]note:[/] {note}")


def quiet_stream(stream) -> None:
    """Point ``stream``'s file descriptor at /dev/null (its reader has gone)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # not a real file (a test's capture): nothing is left buffered
        pass


def escape(text: str) -> str:
    """``text`` printed as is by the rich console (``[slurm]`` is not a style tag)."""
    from rich.markup import escape as _escape

    return _escape(str(text))


def setup_cli_logging(verbose: bool = False) -> None:
    """WARNING and above to the terminal (INFO with -v); step logs go to files."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    level = logging.INFO if verbose else logging.WARNING
    if not any(getattr(h, "_ragline", False) for h in root.handlers):
        h = _TerminalHandler(level)
        h._ragline = True  # type: ignore[attr-defined]
        # Library warnings (deprecations and the like) go to the step's log file, not the terminal.
        h.addFilter(lambda record: record.name != "py.warnings" or verbose)
        root.addHandler(h)
    quiet_libraries()


NOISY = ("httpx", "urllib3", "filelock", "datasets", "fsspec")
"""Libraries that log a line per HTTP request or lock (with the URL) at INFO."""


def quiet_libraries() -> None:
    """WARNING and above only from :data:`NOISY`, in the driver and in every worker."""
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _TerminalHandler(logging.Handler):
    """rich's RichHandler, made at the first record that reaches the terminal (importing
    rich.logging costs a run that logs nothing, a no-op rerun, ~10 ms)."""

    def __init__(self, level: int):
        super().__init__(level)
        self._rich: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._rich is None:
            from rich.logging import RichHandler

            self._rich = RichHandler(console=console(), show_path=False, show_time=False,
                                     level=self.level)
        self._rich.emit(record)


@contextmanager
def task_log(path: str | Path):
    """Send every log record (stage, libraries, warnings) to ``path`` while the task runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def worker_logging(path: str | Path) -> None:
    """A worker process logs to its task file (its stdout/stderr are redirected there too)."""
    logging.basicConfig(level=logging.INFO, format=FORMAT, stream=sys.stderr)
    logging.captureWarnings(True)
    quiet_libraries()   # a line per request, with its URL, in a sharded step's log otherwise


def logged_warnings(path: str | Path, start: int = 0) -> list[str]:
    """The distinct WARNING messages (first lines) a task's log holds from byte ``start`` on, in
    order; Python's own warnings (``py.warnings``: deprecations) left out, as on the terminal.

    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "t.log"
    >>> _ = log.write_text("2024-05-01 10:00:00,000 INFO ragline: starts\\n"
    ...                    "2024-05-01 10:00:01,000 WARNING ragline.step.a: 3 rows left out\\n"
    ...                    "2024-05-01 10:00:02,000 WARNING ragline.step.a: 3 rows left out\\n")
    >>> logged_warnings(log)
    ['3 rows left out']
    """
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    found = (_WARNING.fullmatch(line) for line in text.splitlines())
    return list(dict.fromkeys(m.group(2) for m in found if m and m.group(1) != "py.warnings"))
