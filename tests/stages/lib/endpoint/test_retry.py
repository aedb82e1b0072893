"""Backoff delays: exponential, jittered, capped; Retry-After wins."""

from __future__ import annotations

import doctest

from stages.lib.endpoint import retry
from stages.lib.endpoint.retry import backoff_delay


def test_doctests():
    assert doctest.testmod(retry).failed == 0


def test_jitter_spreads_clients_that_failed_together():
    delays = [backoff_delay(4) for _ in range(200)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 150
    assert backoff_delay(4, retry_after="1.5") == 1.5
    assert backoff_delay(4, retry_after="garbage", rand=0.25) == 2.0
