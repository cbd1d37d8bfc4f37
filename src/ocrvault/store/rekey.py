"""Re-wrapping every stored data key under the primary master key, so old versions can retire.

Work goes in batches, each its own transaction, ordered by job id: an interrupted
run simply resumes (rows already under the primary are no longer selected), and a
job deleted meanwhile has no wrapped key left to rewrap.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, func, select

from ocrvault.crypto import Keyring
from ocrvault.store.db import Database
from ocrvault.store.tables import JobRow

Progress = Callable[[int, int], None]


def _needing_rewrap(primary: int) -> ColumnElement[bool]:
    return JobRow.wrapped_dek.is_not(None) & (JobRow.master_key_version != primary)


def count_wrapped_under(db: Database, version: int) -> int:
    """How many stored data keys still need master ``version`` to open."""
    with db.transaction() as session:
        return int(session.scalar(
            select(func.count()).select_from(JobRow)
            .where(JobRow.wrapped_dek.is_not(None), JobRow.master_key_version == version)
        ) or 0)


def rewrap_all(db: Database, keyring: Keyring, batch: int = 500,
               on_progress: Progress | None = None) -> int:
    """Rewrap every data key not under the primary; returns how many were rewrapped."""
    primary = keyring.primary
    with db.transaction() as session:
        total = int(session.scalar(
            select(func.count()).select_from(JobRow).where(_needing_rewrap(primary))
        ) or 0)
    done = 0
    while True:
        with db.transaction() as session:
            rows = session.scalars(
                select(JobRow).where(_needing_rewrap(primary)).order_by(JobRow.id).limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                assert row.wrapped_dek is not None
                row.wrapped_dek = keyring.rewrap(row.wrapped_dek, row.tenant_id, row.id)
                row.master_key_version = primary
        done += len(rows)
        if on_progress is not None:
            on_progress(done, total)
        if len(rows) < batch:
            return done
