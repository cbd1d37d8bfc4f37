"""ORM rows never leave store/: repositories take commands and hand out frozen snapshots."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ocrvault.environments import Environment
from ocrvault.store import audit, repository
from ocrvault.store.commands import NewApiKey, NewTenant, RevokeKey, RotateSecret
from ocrvault.store.db import Database
from ocrvault.store.records import ApiKeyRecord
from ocrvault.store.repository import KeyRepository, TenantRepository
from ocrvault.store.tables import Base
from tests.clocks import EPOCH
from tests.databases import TestDatabases

# The audit log's repository is being reworked into one chain per tenant (issue 13); it
# still hands out its rows to audit/, which the layering test allows for now.
CONVERTED = [repository.TenantRepository, repository.KeyRepository, repository.JobRepository,
             repository.UsageRepository, repository.RetentionRepository,
             audit.AuditRepository]


def _types_in(hint: object) -> Iterator[object]:
    yield hint
    for argument in typing.get_args(hint):
        yield from _types_in(argument)


@pytest.mark.parametrize("cls", CONVERTED, ids=lambda cls: cls.__name__)
def test_repository_methods_neither_take_nor_return_a_row(cls: type) -> None:
    crossings = [
        f"{cls.__name__}.{name} ({part}: {hint})"
        for name, method in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
        for part, hint in typing.get_type_hints(method, vars(inspect.getmodule(cls))).items()
        if any(isinstance(t, type) and issubclass(t, Base) for t in _types_in(hint))
    ]
    assert not crossings


@pytest.fixture
def db(databases: TestDatabases, tmp_path: Path) -> Database:
    return databases.open(tmp_path)


def _new_key(tenant_id: str) -> NewApiKey:
    return NewApiKey(id="k1", tenant_id=tenant_id, name="ci", environment=Environment.LIVE,
                     digest="d" * 64, hint="ocv_live_…abcd", scopes=("jobs:read",),
                     created_at=EPOCH, created_by=None, expires_at=None,
                     allowed_ips=("10.0.0.0/8",), rate_limit_per_minute=None,
                     max_concurrent_jobs=None, max_pages_per_day=None,
                     job_visibility="tenant")


def test_a_record_is_a_snapshot_that_later_commands_do_not_change(db: Database) -> None:
    with db.transaction() as session:
        TenantRepository(session).add(NewTenant("t1", "acme", EPOCH))
        added = KeyRepository(session).add(_new_key("t1"))
    with db.transaction() as session:
        keys = KeyRepository(session)
        read = keys.by_secret("d" * 64)
        revoked = keys.revoke(RevokeKey("k1", EPOCH, by=None, with_key=None))
        rotated = keys.rotate(RotateSecret("k1", "e" * 64, "ocv_live_…efgh", EPOCH,
                                           previous_expires_at=EPOCH + timedelta(hours=1)))

    assert read == added and read.allowed_ips == ("10.0.0.0/8",)
    assert read.revoked_at is None and revoked.revoked_at == EPOCH
    assert (rotated.digest, rotated.previous_digest) == ("e" * 64, "d" * 64)
    with db.transaction() as session:
        assert KeyRepository(session).by_secret("e" * 64) == rotated


def test_records_cannot_be_changed_in_place(db: Database) -> None:
    with db.transaction() as session:
        tenant = TenantRepository(session).add(NewTenant("t1", "acme", EPOCH))
        key = KeyRepository(session).add(_new_key("t1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.revoked_at = EPOCH  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tenant.name = "other"  # type: ignore[misc]
    assert isinstance(key, ApiKeyRecord)
