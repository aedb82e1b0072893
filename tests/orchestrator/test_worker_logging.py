"""A worker process (a shard, an isolated step, a SLURM or Ray task) logs as the driver does."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_a_worker_does_not_log_a_line_per_http_request():
    """httpx logs every request at INFO, with its URL (a password in base_url among it): the
    driver quieted it, a worker did not, so a sharded endpoint step's log had a line per
    request."""
    code = ("import logging, sys; from orchestrator.logs import worker_logging; "
            "worker_logging('x.log'); logging.getLogger('httpx').info('GET http://u:pw@h/v1'); "
            "logging.getLogger('ragline.test').info('kept')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert "kept" in out.stderr and "pw@h" not in out.stderr
