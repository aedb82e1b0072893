"""Start a program that dies with the thread that started it, without a ``preexec_fn``.

``python -I -S orchestrator/executors/pdeathsig.py PARENT_PID SIGNAL -- PROGRAM ARGS...`` asks
Linux to send SIGNAL when its parent exits (``PR_SET_PDEATHSIG``, which ``execve`` keeps), exits
with 1 at once if PARENT_PID is no longer its parent (the parent died before the request took
effect), and then becomes PROGRAM (``os.execvp``: same process, same pid, PROGRAM's exit code).

A ``preexec_fn`` would do the same between fork and exec, but Python runs it in the child of the
caller, which here is threaded (the local runner's thread pool, a Ray worker's gRPC threads):
a lock another thread held at fork time can hang the child, and Python's documentation warns
against it. Costs one bare interpreter start per process launched (about 20 ms): run as a
file, isolated and without site-packages (``-I -S``), it imports nothing but ``ctypes``.
"""

from __future__ import annotations

import os
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def bound_to_parent(argv: list[str], sig: int) -> list[str]:
    """``argv`` wrapped so that it gets ``sig`` when this thread exits; ``argv`` itself off Linux.

    >>> bound_to_parent(["torchrun", "x"], 9)[-4:] if sys.platform.startswith("linux") else "-"
    ['9', '--', 'torchrun', 'x']
    """
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), str(int(sig)),
            "--", *argv]


def main(args: list[str]) -> None:
    import ctypes

    parent, sig, rest = int(args[0]), int(args[1]), args[3:]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    os.execvp(rest[0], rest)


if __name__ == "__main__":
    main(sys.argv[1:])
