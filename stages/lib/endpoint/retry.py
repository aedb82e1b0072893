"""How long to wait before retrying a request: exponential backoff with full jitter.

Attempt ``a`` (0 for the first retry) waits a uniform draw from ``[0, min(cap, base * 2**a)]``
("full jitter": many clients that failed together do not retry together), unless the server
said how long to wait, which is honoured up to ``max_wait``: ``retry-after-ms`` (milliseconds,
sent by OpenAI beside a rounded ``Retry-After``) over ``Retry-After`` (seconds or an HTTP date).

    >>> backoff_delay(0, rand=1.0), backoff_delay(3, rand=1.0), backoff_delay(10, rand=1.0)
    (0.5, 4.0, 30.0)
    >>> backoff_delay(3, rand=0.5)            # half of min(30, 0.5 * 2**3)
    2.0
    >>> backoff_delay(0, retry_after="7", rand=0.0), backoff_delay(0, retry_after="9999")
    (7.0, 300.0)
    >>> backoff_delay(0, retry_after="1", retry_after_ms="250")
    0.25

With the defaults (base 0.5 s, cap 30 s) the 6 waits of ``max_retries: 6`` without a server hint
add up to at most 0.5 + 1 + 2 + 4 + 8 + 16 = 31.5 s, half that on average.
"""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""HTTP statuses worth retrying: timeout, conflict, rate limit, server and gateway errors."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent/bad.

    >>> parse_retry_after("2.5"), parse_retry_after(None), parse_retry_after("soon")
    (2.5, None, None)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=0.0)
    60.0
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def parse_retry_after_ms(value: str | None) -> float | None:
    """Seconds from a ``retry-after-ms`` header (milliseconds); None if absent or bad.

    >>> parse_retry_after_ms("1500"), parse_retry_after_ms(None), parse_retry_after_ms("soon")
    (1.5, None, None)
    """
    try:
        ms = float(value) if value else None
    except ValueError:
        return None
    return None if ms is None or ms != ms else max(0.0, ms / 1000.0)


def backoff_delay(attempt: int, retry_after: str | None = None, *, base: float = 0.5,
                  cap: float = 30.0, max_wait: float = 300.0, rand: float | None = None,
                  retry_after_ms: str | None = None) -> float:
    """Seconds to sleep before retry number ``attempt`` (0-based); see the module docstring."""
    told = parse_retry_after_ms(retry_after_ms)
    if told is None:
        told = parse_retry_after(retry_after)
    if told is not None:
        return min(told, max_wait)
    draw = random.random() if rand is None else rand
    return draw * min(cap, base * 2.0 ** attempt)
