"""Cluster-wide locks held as leases in the database, so that work meant to run once per
cluster (the scheduler's reaper, audit retention) runs on one node at a time.

A lock is a row (name, owner, expiry). :meth:`ClusterLock.hold` takes the lock when it is
free or its lease has run out, or renews it for its holder; each is one conditional
UPDATE or one INSERT, atomic on SQLite and PostgreSQL alike, so two nodes asking at once
cannot both win. A holder that stops releases the row; one that dies is taken over once
its lease runs out.

Residual risk: expiry is judged by the asking node's clock, so nodes' clocks must agree to
well within the lease (NTP does); a holder whose task outlives its lease may overlap for a
moment with the next holder, which is why the tasks run under it are idempotent.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from ocrvault.clock import Clock
from ocrvault.store.db import Database
from ocrvault.store.tables import ClusterLockRow


class ClusterLock:
    def __init__(self, db: Database, name: str, owner: str, lease: timedelta,
                 clock: Clock) -> None:
        self.db = db
        self.name = name
        self.owner = owner
        self.lease = lease
        self.clock = clock

    def hold(self) -> bool:
        """Take or renew the lease for ``lease`` from now; whether this owner holds it."""
        now = self.clock()
        with self.db.transaction() as session:
            renewed = session.execute(
                update(ClusterLockRow)
                .where(ClusterLockRow.name == self.name,
                       or_(ClusterLockRow.owner == self.owner, ClusterLockRow.expires_at <= now))
                .values(owner=self.owner, expires_at=now + self.lease))
            if renewed.rowcount == 1:  # type: ignore[attr-defined]
                return True
        try:
            with self.db.transaction() as session:
                session.execute(insert(ClusterLockRow).values(
                    name=self.name, owner=self.owner, expires_at=now + self.lease))
        except IntegrityError:
            return False  # another node holds it (or took it a moment ago)
        return True

    def release(self) -> None:
        """Give the lock up now, if this owner holds it, so another node need not wait for
        the lease to run out."""
        with self.db.transaction() as session:
            session.execute(delete(ClusterLockRow).where(ClusterLockRow.name == self.name,
                                                         ClusterLockRow.owner == self.owner))
