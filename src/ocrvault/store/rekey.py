"""Re-wrapping stored keys under the primary master key, so old versions can retire.

With tenant keys (crypto/tenant_keys.py) the master key wraps only one key per tenant:
rewrapping those is a handful of calls, after which every job row of the tenant records
the new master version above its data key. Rows from before tenant keys (the keyring's
own ``OCK`` wrap, ``key_epoch`` NULL) are moved under their tenant's epoch key here, which
is the migration of the old envelope format.

Work goes in batches, each its own transaction, ordered by job id: an interrupted
run simply resumes (rows already done are no longer selected), and a job deleted
meanwhile has no wrapped key left to rewrap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update

from ocrvault.crypto import Keyring
from ocrvault.crypto.tenant_keys import TenantKeys
from ocrvault.store.db import Database
from ocrvault.store.tables import JobRow

Progress = Callable[[int, int], None]


def _needing_rewrap(primary: int) -> ColumnElement[bool]:
    return JobRow.wrapped_dek.is_not(None) & (JobRow.master_key_version != primary)


def _legacy() -> ColumnElement[bool]:
    return JobRow.wrapped_dek.is_not(None) & JobRow.key_epoch.is_(None)


def count_wrapped_under(db: Database, version: int) -> int:
    """How many stored data keys still need master ``version`` to open."""
    with db.transaction() as session:
        return int(session.scalar(
            select(func.count()).select_from(JobRow)
            .where(JobRow.wrapped_dek.is_not(None), JobRow.master_key_version == version)
        ) or 0)


def rewrap_all(db: Database, keyring: Keyring, batch: int = 500,
               on_progress: Progress | None = None,
               tenant_keys: TenantKeys | None = None) -> int:
    """Bring every data key under the primary master key; returns how many job rows changed.

    Without ``tenant_keys`` (the keyring alone) each DEK is rewrapped by the keyring."""
    if tenant_keys is None:
        return _rewrap_legacy(db, keyring, batch, on_progress)
    under = tenant_keys.rewrap_tenant_keys()
    done = 0
    with db.transaction() as session:
        for tenant_id, version in under.items():
            result = session.execute(
                update(JobRow).where(JobRow.tenant_id == tenant_id,
                                     JobRow.key_epoch.is_not(None), _needing_rewrap(version))
                .values(master_key_version=version).execution_options(synchronize_session=False))
            done += int(getattr(result, "rowcount", 0) or 0)
    return done + _move_legacy(db, keyring, tenant_keys, batch, on_progress)


def _move_legacy(db: Database, keyring: Keyring, tenant_keys: TenantKeys, batch: int,
                 on_progress: Progress | None) -> int:
    """Move keyring-wrapped DEKs under their tenant's epoch key."""
    done = 0
    while True:
        with db.transaction() as session:
            rows = session.scalars(select(JobRow).where(_legacy()).order_by(JobRow.id)
                                   .limit(batch).with_for_update(skip_locked=True)).all()
            for row in rows:
                assert row.wrapped_dek is not None
                dek = keyring.unwrap_dek(row.wrapped_dek, row.tenant_id, row.id)
                under = tenant_keys.wrap_dek(dek, row.tenant_id, row.id, _content_expiry(row))
                row.wrapped_dek, row.key_epoch = under.wrapped, under.epoch
                row.master_key_version = under.master_key_version
        done += len(rows)
        if on_progress is not None:
            on_progress(done, done)
        if len(rows) < batch:
            return done


def _content_expiry(row: JobRow) -> datetime:
    """The latest moment any of the job's content may live."""
    known = [t for t in (row.input_expires_at, row.expires_at, row.outputs_expires_at) if t]
    if known:
        return max(known)
    longest = max((row.retention or {}).values(), default=0)
    return row.created_at + timedelta(seconds=longest)


def _rewrap_legacy(db: Database, keyring: Keyring, batch: int,
                   on_progress: Progress | None) -> int:
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
