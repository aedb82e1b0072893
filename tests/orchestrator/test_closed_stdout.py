"""A reader that stops early (``rag stages | grep -q retrieve``, ``rag plan --json | head -1``)
is not a failure: every command exits 0, silently, when its stdout pipe closes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("command", [["stages"], ["stages", "--json"],
                                     ["plan", "conf/dynamicrag_demo.yaml", "--json"],
                                     ["dag", "conf/dynamicrag_demo.yaml"]])
def test_a_command_whose_reader_has_gone_exits_0_quietly(tmp_path, command):
    """Before: `rag stages` exited 1 with no message, `rag plan --json` said "internal error:
    BrokenPipeError" (only `rag run` went on)."""
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run([sys.executable, "-m", "orchestrator", *command, "--runs-dir",
                              str(tmp_path / "runs")] if command[0] != "stages" else
                             [sys.executable, "-m", "orchestrator", *command],
                             cwd=REPO, stdout=write, stderr=subprocess.PIPE, text=True,
                             timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write)
    assert out.returncode == 0 and out.stderr == "", out.stderr
