"""The pdeathsig shim: the program it execs dies with the process that started it (here one
killed with SIGKILL, which can clean up nothing), keeps its own exit code, and never starts
when its parent is already gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from orchestrator.executors.pdeathsig import bound_to_parent
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")

STARTER = """
import subprocess, sys, time
from orchestrator.executors.pdeathsig import bound_to_parent
child = subprocess.Popen(bound_to_parent(["sleep", "60"], 9))
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _program(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")[0]


def test_the_program_dies_with_a_sigkilled_parent():
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=REPO, stdout=subprocess.PIPE,
                               text=True)
    child = int(starter.stdout.readline())
    try:
        deadline = time.monotonic() + 10          # the shim becomes the program itself
        while _program(child) != b"sleep" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(child) and _program(child) == b"sleep"
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_exit_code_is_the_programs_and_the_environment_passes_through():
    done = subprocess.run(bound_to_parent(["sh", "-c", 'echo "$RAGLINE_PROBE"; exit 3'], 15),
                          env={**os.environ, "RAGLINE_PROBE": "seen"}, capture_output=True,
                          text=True)
    assert done.returncode == 3 and done.stdout == "seen\n"


def test_nothing_starts_when_the_parent_is_already_gone(tmp_path):
    argv = bound_to_parent(["touch", str(tmp_path / "ran")], 15)
    argv[argv.index(str(os.getpid()))] = "1"     # a parent pid that is not ours
    assert subprocess.run(argv).returncode == 1
    assert not (tmp_path / "ran").exists()
