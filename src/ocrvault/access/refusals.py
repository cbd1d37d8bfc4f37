"""Refused requests in the audit log: each one accounted for, without a flood filling the log.

A refusal of a known key (missing scope, address not allowed, revoked, expired,
forbidden) is always an entry of its own: those are the attempts an investigator looks
for, and a flood of bad keys must not hide them (issue 10). Refusals that name no known
key (malformed or unknown keys) and rate-limit refusals are counted per source (tenant
and address) per one-minute window: the first few of a window, within a budget per
source and overall, are entries of their own; the rest make one
``auth:refusals:aggregated`` entry with their count and reason codes, written once the
window has closed (at the next refusal after it, at the periodic flush, and at shutdown).

Residual risks: counts live in this process until flushed, so a crash (not a stop)
loses the open windows' counts, at most a minute of them; and a holder of a known key,
even a revoked one, can write one entry per refused request (the price of never
aggregating an escalation attempt; revoked and expired keys are still logged so that
their use is seen).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ocrvault.audit.events import Actor
from ocrvault.clock import Clock

WINDOW = timedelta(minutes=1)
PER_SOURCE = 20  # refusals a source gets as entries of their own, a window
OVERALL = 600  # and all sources together
MAX_SOURCES = 10_000  # past this, further sources share one tally: memory stays bounded

Source = tuple[str | None, str | None]  # (tenant id, client address)
_OVERFLOW: Source = ("*", "*")


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Refusals of one source in one window that were not entries of their own."""

    actor: Actor
    opened: datetime
    reasons: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.reasons.values())

    def detail(self) -> dict[str, object]:
        return {"count": self.count, "window_start": self.opened.isoformat(),
                "window_seconds": int(WINDOW.total_seconds()), "reasons": self.reasons}


@dataclass
class _Tally:
    actor: Actor
    opened: datetime
    logged: int = 0
    unlogged: Counter[str] = field(default_factory=Counter)


class RefusalTally:
    """Thread-safe. ``admit`` says whether a refusal gets its own entry; ``closed`` hands
    over the aggregates of windows that have ended."""

    def __init__(self, clock: Clock, per_source: int = PER_SOURCE, overall: int = OVERALL,
                 max_sources: int = MAX_SOURCES) -> None:
        self._clock = clock
        self._per_source, self._overall, self._max_sources = per_source, overall, max_sources
        self._lock = threading.Lock()
        self._tallies: dict[Source, _Tally] = {}
        self._ended: list[_Tally] = []
        self._overall_opened: datetime | None = None
        self._overall_logged = 0

    def admit(self, actor: Actor, reason: str) -> bool:
        """Count one refusal by ``actor``: True when it should be recorded on its own now,
        False when it was kept for its window's aggregate."""
        now = self._clock()
        with self._lock:
            if self._overall_opened is None or now - self._overall_opened >= WINDOW:
                self._overall_opened, self._overall_logged = now, 0
            tally = self._tally_of(actor, now)
            if tally.logged < self._per_source and self._overall_logged < self._overall:
                tally.logged += 1
                self._overall_logged += 1
                return True
            tally.unlogged[reason] += 1
            return False

    def _tally_of(self, actor: Actor, now: datetime) -> _Tally:
        source: Source = (actor.tenant_id, actor.client_ip)
        if source not in self._tallies and len(self._tallies) >= self._max_sources:
            source, actor = _OVERFLOW, Actor(name="anonymous (many sources)")
        tally = self._tallies.get(source)
        if tally is not None and now - tally.opened >= WINDOW:
            self._ended.append(self._tallies.pop(source))
            tally = None
        if tally is None:
            # The source, not the request: an aggregate speaks for many requests and keys.
            tally = _Tally(replace(actor, key_id=None, request_id=None), now)
            self._tallies[source] = tally
        return tally

    def closed(self, *, sweep: bool = True, everything: bool = False) -> list[Aggregate]:
        """The aggregates of ended windows, each handed over once: those a new refusal
        ended, plus (``sweep``) every other window past its minute, or (``everything``: at
        stop) every window."""
        now = self._clock()
        with self._lock:
            ended, self._ended = self._ended, []
            if sweep or everything:
                for source in [s for s, t in self._tallies.items()
                               if everything or now - t.opened >= WINDOW]:
                    ended.append(self._tallies.pop(source))
        return [Aggregate(t.actor, t.opened, dict(sorted(t.unlogged.items())))
                for t in ended if t.unlogged]
