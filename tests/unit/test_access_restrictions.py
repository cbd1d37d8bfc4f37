"""Key restrictions (one check each, all-of, failing closed), rate buckets, and the key
rules the matrix does not reach: escalation, rotation, revocation, refusal floods."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ocrvault.access.keys import Environment
from ocrvault.access.principal import Principal, RequestContext, Role, Scope
from ocrvault.access.ratelimit import TokenBuckets
from ocrvault.access.restrictions import RESTRICTIONS, Attempt, Refusal, evaluate
from ocrvault.access.service import AccessService, KeySpec
from ocrvault.audit import AuditAction, AuditLog, ChainSigner
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.errors import AuthError, ErrorCode, InputRejected, OcrVaultError, ResourceError
from ocrvault.store.db import Database
from ocrvault.store.tables import ApiKeyRow, AuditEntryRow
from tests.clocks import EPOCH, FakeClock

HOUR = timedelta(hours=1)


def key_row(**changes: Any) -> ApiKeyRow:
    values: dict[str, Any] = {
        "id": "k1", "tenant_id": "t1", "name": "k", "environment": "live", "digest": "d",
        "hint": "h", "scopes": ["jobs:read"], "created_at": EPOCH, "expires_at": None,
        "revoked_at": None, "previous_digest": None, "previous_expires_at": None,
        "allowed_ips": None,
    }
    return ApiKeyRow(**(values | changes))


def attempt(row: ApiKeyRow, **changes: Any) -> Attempt:
    base = Attempt(key=row, previous_secret=False, environment=Environment.LIVE,
                   scope=Scope.JOBS_READ, client_ip="10.0.0.7", now=EPOCH)
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("row", "changes", "code", "action"),
    [
        ({}, {}, None, None),
        ({"revoked_at": EPOCH}, {}, "unauthorized", AuditAction.AUTH_REFUSED),
        ({"expires_at": EPOCH}, {}, "unauthorized", AuditAction.KEY_EXPIRED_USED),
        ({"expires_at": EPOCH + HOUR}, {}, None, None),
        ({"previous_expires_at": EPOCH + HOUR}, {"previous_secret": True}, None, None),
        ({"previous_expires_at": EPOCH}, {"previous_secret": True}, "unauthorized",
         AuditAction.KEY_EXPIRED_USED),
        ({}, {"environment": Environment.TEST}, "unauthorized", AuditAction.AUTH_REFUSED),
        ({"scopes": ["jobs:read", "jobs:everything"]}, {}, "unauthorized",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ["10.0.0.0/8"]}, {}, None, None),
        ({"allowed_ips": ["192.168.0.0/16", "2001:db8::/32"]}, {}, "ip_not_allowed",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ["10.0.0.0/8"]}, {"client_ip": None}, "ip_not_allowed",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ["10.0.0.0/8"]}, {"client_ip": "testclient"}, "ip_not_allowed",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ["not a cidr"]}, {}, "unauthorized", AuditAction.AUTH_REFUSED),
        ({}, {"scope": Scope.JOBS_DELETE}, "insufficient_scope", AuditAction.AUTH_REFUSED),
    ],
    ids=["valid", "revoked", "expired", "expires-later", "old-secret-in-grace",
         "old-secret-after-grace", "wrong-environment", "unknown-scope", "ip-allowed",
         "ip-not-listed", "ip-unknown", "ip-unparseable", "stored-cidr-malformed",
         "scope-missing"],
)
def test_each_restriction_refuses_with_its_code(
    row: dict[str, Any], changes: dict[str, Any], code: str | None,
    action: AuditAction | None,
) -> None:
    refusal = evaluate(attempt(key_row(**row), **changes))
    assert (refusal.code.value, refusal.action) == (code, action) if refusal else code is None


def test_the_first_refusal_wins_and_a_failing_check_refuses() -> None:
    both = attempt(key_row(revoked_at=EPOCH), scope=Scope.AUDIT_READ)
    refusal = evaluate(both)
    assert refusal is not None and refusal.code is ErrorCode.UNAUTHORIZED

    class Broken:
        def check(self, attempt: Attempt) -> Refusal | None:
            raise RuntimeError("cannot decide")

    refusal = evaluate(attempt(key_row()), (*RESTRICTIONS, Broken()))
    assert refusal is not None and refusal.code is ErrorCode.UNAUTHORIZED


def test_token_buckets_allow_the_rate_then_say_how_long_to_wait() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock)
    assert [buckets.acquire("k", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.acquire("k", 3) == pytest.approx(20.0)
    assert buckets.acquire("other", 3) == 0.0
    clock.advance(timedelta(seconds=20))
    assert buckets.acquire("k", 3) == 0.0
    assert buckets.acquire("k", 3) > 0


def test_token_buckets_stay_bounded() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock, max_buckets=100)
    for n in range(1000):
        buckets.acquire(f"ip-{n}", 10)
        clock.advance(timedelta(seconds=1))
    assert len(buckets._buckets) <= 100


# The service, on a real database.

@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def access(tmp_path: Path, clock: FakeClock) -> Iterator[AccessService]:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    db.migrate()
    audit = AuditLog(db, ChainSigner(Keyring(FileKeyringProvider(tmp_path / "k.json"))), clock)
    yield AccessService(db, audit, clock)
    db.dispose()


def login(access: AccessService, secret: str, scope: Scope = Scope.KEYS_MANAGE,
          ip: str | None = "10.0.0.7") -> Principal:
    return access.authenticate(secret, RequestContext("req-1", ip), scope)


def entries(access: AccessService, action: AuditAction) -> int:
    with access.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntryRow)
                                  .where(AuditEntryRow.action == action.value)) or 0)


def spec(**changes: Any) -> KeySpec:
    return replace(KeySpec(name="child", scopes=frozenset({Scope.JOBS_READ}),
                           environment=Environment.LIVE), **changes)


def refused_code(call: Any) -> str:
    with pytest.raises(OcrVaultError) as caught:
        call()
    return caught.value.code.value


def test_a_key_cannot_grant_what_it_lacks(access: AccessService) -> None:
    tenant = access.bootstrap_tenant("acme")
    reviewer = login(access, access.issue_key(tenant.tenant_id, "r", Role.REVIEWER).secret,
                     Scope.JOBS_READ)
    developer = replace(reviewer, scopes=Role.DEVELOPER.scopes | {Scope.KEYS_MANAGE})
    error = refused_code(lambda: access.create_key(
        developer, spec(scopes=frozenset({Scope.JOBS_READ, Scope.AUDIT_READ}))))
    assert error == "insufficient_scope"
    with pytest.raises(AuthError, match="audit:read"):
        access.create_key(developer, spec(scopes=frozenset({Scope.AUDIT_READ})))


def test_a_test_key_cannot_mint_live_keys(access: AccessService) -> None:
    admin = login(access, access.bootstrap_tenant("acme", Environment.TEST).secret)
    assert refused_code(lambda: access.create_key(admin, spec())) == "forbidden"
    assert access.create_key(admin, spec(environment=Environment.TEST)).secret.startswith(
        "ocv_test_")


def test_a_key_cannot_make_a_key_that_outlives_it_or_works_elsewhere(
    access: AccessService, clock: FakeClock,
) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    bounded = access.create_key(root, spec(
        scopes=Role.ADMIN.scopes, expires_at=clock() + HOUR,
        allowed_ips=(ip_network("10.0.0.0/8"),)))
    maker = login(access, bounded.secret)
    assert refused_code(lambda: access.create_key(maker, spec(allowed_ips=(
        ip_network("10.1.0.0/16"),)))) == "forbidden"  # no expiry: would outlive it
    within = {"expires_at": clock() + HOUR / 2, "allowed_ips": (ip_network("10.1.0.0/16"),)}
    assert access.create_key(maker, spec(**within)).key.allowed_ips == ("10.1.0.0/16",)
    wider = within | {"allowed_ips": (ip_network("0.0.0.0/0"),)}
    assert refused_code(lambda: access.create_key(maker, spec(**wider))) == "forbidden"
    past = within | {"expires_at": clock() - HOUR}
    assert refused_code(lambda: access.create_key(maker, spec(**past))) == "invalid_parameter"


def test_rotation_keeps_the_old_secret_for_the_grace_only(
    access: AccessService, clock: FakeClock,
) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    first = access.create_key(root, spec())
    second = access.rotate_key(root, first.key_id, HOUR)
    assert second.key_id == first.key_id and second.secret != first.secret
    assert login(access, first.secret, Scope.JOBS_READ).key_id == first.key_id
    clock.advance(HOUR)
    assert refused_code(lambda: login(access, first.secret, Scope.JOBS_READ)) == "unauthorized"
    assert login(access, second.secret, Scope.JOBS_READ).key_id == first.key_id
    third = access.rotate_key(root, first.key_id, HOUR)  # a second rotation ends the first grace
    assert refused_code(lambda: login(access, first.secret, Scope.JOBS_READ)) == "unauthorized"
    assert login(access, second.secret, Scope.JOBS_READ) and login(access, third.secret,
                                                                    Scope.JOBS_READ)
    for grace in (timedelta(days=8), timedelta(seconds=-1)):
        with pytest.raises(InputRejected):
            access.rotate_key(root, first.key_id, grace)
    # Once, after the grace; after the second rotation the first secret is simply unknown.
    assert entries(access, AuditAction.KEY_EXPIRED_USED) == 1


def test_revocation_is_immediate_idempotent_and_audited_once(access: AccessService) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    child = access.create_key(root, spec())
    access.rotate_key(root, child.key_id, HOUR)
    access.revoke_key(root, child.key_id)
    access.revoke_key(root, child.key_id)
    assert entries(access, AuditAction.KEY_REVOKED) == 1
    assert refused_code(lambda: login(access, child.secret, Scope.JOBS_READ)) == "unauthorized"
    with pytest.raises(ResourceError) as caught:
        access.rotate_key(root, child.key_id, HOUR)
    assert caught.value.code is ErrorCode.KEY_REVOKED


def test_refusal_floods_cannot_fill_the_audit_log(access: AccessService) -> None:
    tenant = access.bootstrap_tenant("acme")
    reviewer = access.issue_key(tenant.tenant_id, "r", Role.REVIEWER).secret
    for _ in range(500):  # one source: its own limit
        with pytest.raises(AuthError):
            login(access, reviewer, Scope.KEYS_MANAGE, ip="192.0.2.1")
    assert entries(access, AuditAction.AUTH_REFUSED) == 20
    for n in range(700):  # many sources: the overall limit
        with pytest.raises(AuthError):
            login(access, "ocv_live_" + "x" * 36, Scope.JOBS_READ, ip=f"2001:db8::{n:x}")
    assert entries(access, AuditAction.AUTH_REFUSED) <= 600
    assert entries(access, AuditAction.AUTH_REFUSALS_SUPPRESSED) == 2  # one per exhausted bucket
