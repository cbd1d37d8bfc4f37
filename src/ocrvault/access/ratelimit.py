"""Request rates per key, behind a small interface.

:class:`TokenBuckets` keeps the buckets in this process: right for the embedded
deployment, and for the audit log's own flood guard on any deployment. Several API
nodes would each allow a key its full rate, so the scaled deployment sets
``OCRVAULT_RATE_LIMIT_BACKEND=redis``: :class:`RedisTokenBuckets`, the same buckets in
Redis, one Lua script per ``acquire``, shared by every node.

Quotas (pages a day, concurrent jobs) need nothing more: they are counted in the
database every node shares (access/quotas.py).
"""

from __future__ import annotations

import threading
from typing import Protocol

from ocrvault.clock import Clock, utcnow
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, Unavailable


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


# One token bucket per key in a Redis hash, updated atomically by one script call. The
# time is Redis's own (TIME), so API nodes with skewed clocks share one refill. Lua
# numbers returned to a client are cut to integers: the wait goes back as a string.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = capacity / 60.0
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 61)
return tostring(wait)
"""
# A bucket untouched for a minute is full again at any rate: Redis forgets it after 61 s.


class RedisTokenBuckets:
    """The same token buckets as :class:`TokenBuckets`, held in Redis and shared by every
    API node that names the same Redis (``OCRVAULT_RATE_LIMIT_BACKEND=redis``).

    Fails closed: when Redis cannot be reached, ``acquire`` raises Unavailable (503,
    ``server_busy``) rather than letting every node allow a key its full rate.
    """

    def __init__(self, url: str, prefix: str = "ocrvault:ratelimit:",
                 timeout_seconds: float = 2.0) -> None:
        import redis

        self._prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_seconds,
                                           socket_connect_timeout=timeout_seconds)
        self._take = self._redis.register_script(_TAKE)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def acquire(self, bucket: str, per_minute: int) -> float:
        try:
            return float(self._take(keys=[self._prefix + bucket], args=[per_minute]))
        except self._errors:
            raise Unavailable(ErrorCode.SERVER_BUSY, "The rate-limit store cannot be reached; "
                              "retry in a few seconds.", retry_after=5) from None

    def close(self) -> None:
        self._redis.close()


def open_rate_limiter(settings: Settings, clock: Clock = utcnow) -> RateLimiter:
    """The limiter the settings name: in this process (memory), or shared (redis)."""
    if settings.rate_limit_backend == "redis":
        assert settings.rate_limit_redis_url, "checked by Settings"
        return RedisTokenBuckets(settings.rate_limit_redis_url)
    return TokenBuckets(clock)
