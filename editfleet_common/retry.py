"""Waiting between retries of an HTTP API (the scorer's API judge, the editor's API editors): exponential
backoff with jitter, at least what the server's Retry-After asks for."""

from __future__ import annotations

import email.utils
import random
import time

MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 600.0


def backoff_delay(retry: int, base_s: float, retry_after_s: float | None = None, rng=random) -> float:
    """Seconds before retry number `retry` (0 for the first): exponential with jitter, at least the
    server's Retry-After."""
    step = min(MAX_BACKOFF_S, base_s * (2 ** retry))
    delay = step / 2 + rng.uniform(0, step / 2)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def retry_after_seconds(headers) -> float | None:
    """Retry-After (seconds or an HTTP date) or retry-after-ms, from response headers."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
