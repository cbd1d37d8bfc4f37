"""A clock that tests move by hand: expiry, grace periods and rate limits without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = EPOCH) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
