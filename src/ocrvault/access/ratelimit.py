"""Request rates per key, behind a small interface.

:class:`TokenBuckets` keeps the buckets in this process: right for the embedded
deployment, and for the audit log's own flood guard on any deployment. Several API
nodes would each allow a key its full rate; the scaled deployment plugs in a shared
implementation of :class:`RateLimiter` (a Redis token bucket, one Lua script per
``acquire``) through ``Runtime.build(..., rate_limiter=...)``.
"""

from __future__ import annotations

import threading
from typing import Protocol

from ocrvault.clock import Clock, utcnow


class RateLimiter(Protocol):
    def acquire(self, bucket: str, per_minute: int) -> float:
        """Take one request from ``bucket``: 0.0 if allowed, else the seconds until it would be."""
        ...


class TokenBuckets:
    """Token buckets of ``per_minute`` capacity refilling at ``per_minute`` a minute.

    Thread-safe. Memory stays bounded: past ``max_buckets``, full buckets (idle ones)
    are dropped, then the oldest.
    """

    def __init__(self, clock: Clock = utcnow, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._max = max_buckets
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # bucket -> (tokens, at)

    def acquire(self, bucket: str, per_minute: int) -> float:
        now = self._clock().timestamp()
        rate = per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.pop(bucket, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + max(0.0, now - at) * rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate
            self._buckets[bucket] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            if len(self._buckets) > self._max:
                self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        # A bucket refills to full within a minute of its last use at any rate.
        for name in [n for n, (_, at) in self._buckets.items() if now - at >= 60.0]:
            del self._buckets[name]
        while len(self._buckets) > self._max:
            del self._buckets[next(iter(self._buckets))]
