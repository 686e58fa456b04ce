"""Retry timing: full-jitter exponential backoff, a server's Retry-After, one deadline."""

from __future__ import annotations

import random


def next_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    Full jitter spreads retries of many writers; a server's Retry-After is a floor, since
    retrying earlier only earns another refusal.
    """
    ceiling = min(max_s, base_s * (2 ** max(0, attempt - 1)))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
