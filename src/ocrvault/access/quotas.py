"""Per-key quotas: concurrent jobs, and pages per UTC day (asynchronous and synchronous).

Checked before anything is stored. Pages are counted atomically in the database, so
every API node sees the same count; the concurrent-jobs count is exact on SQLite
(one writer at a time) and, on PostgreSQL, may let simultaneous submissions
overshoot by the number of requests in flight.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from ocrvault.clock import Clock, utcnow
from ocrvault.errors import ErrorCode, Throttled
from ocrvault.principal import Principal
from ocrvault.store.db import Database
from ocrvault.store.repository import JobRepository, UsageRepository


class QuotaGuard:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def admit(self, principal: Principal, pages: int, *, new_job: bool) -> None:
        """Count ``pages`` (and a job, if ``new_job``) against the key, or raise Throttled."""
        limits = principal.limits
        if limits.concurrent_jobs is None and limits.pages_per_day is None:
            return
        now = self.clock()
        with self.db.transaction() as session:
            if new_job and limits.concurrent_jobs is not None and JobRepository(
                session
            ).active_count_for_key(principal.tenant_id, principal.key_id) >= (
                limits.concurrent_jobs
            ):
                raise Throttled(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"This key may have {limits.concurrent_jobs} jobs queued or running at "
                    "once; wait for one to finish.",
                )
            if limits.pages_per_day is not None and not UsageRepository(session).add_pages(
                principal.tenant_id, principal.key_id, now.date().isoformat(), pages,
                limits.pages_per_day,
            ):
                raise Throttled(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"This key may submit {limits.pages_per_day} pages a day (UTC); this "
                    "request would pass that.",
                    retry_after=_seconds_to_midnight(now),
                )


def _seconds_to_midnight(now: datetime) -> int:
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=now.tzinfo)
    return max(1, int((midnight - now).total_seconds()))
