"""Key restrictions (one check each, all-of, failing closed), rate buckets, and the key
rules the matrix does not reach: escalation, key-on-key reach, rotation, cascaded
revocation, job visibility, names, refusal floods."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from ocrvault.access.ratelimit import TokenBuckets
from ocrvault.access.restrictions import RESTRICTIONS, Attempt, Refusal, evaluate
from ocrvault.access.service import AccessService, KeySpec
from ocrvault.audit import AuditAction, AuditLog, ChainSigner
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.environments import Environment
from ocrvault.errors import AuthError, ErrorCode, InputRejected, OcrVaultError, ResourceError
from ocrvault.principal import JobVisibility, Principal, RequestContext, Role, Scope
from ocrvault.store.db import Database
from ocrvault.store.records import ApiKeyRecord
from ocrvault.store.tables import AuditEntryRow
from tests.clocks import EPOCH, FakeClock
from tests.databases import TestDatabases

HOUR = timedelta(hours=1)


def key_record(**changes: Any) -> ApiKeyRecord:
    key = ApiKeyRecord(id="k1", tenant_id="t1", name="k", environment="live", digest="d",
                       hint="h", scopes=("jobs:read",), created_at=EPOCH)
    return replace(key, **changes)


def attempt(key: ApiKeyRecord, **changes: Any) -> Attempt:
    base = Attempt(key=key, previous_secret=False, environment=Environment.LIVE,
                   scope=Scope.JOBS_READ, client_ip="10.0.0.7", now=EPOCH)
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("stored", "changes", "code", "action"),
    [
        ({}, {}, None, None),
        ({"revoked_at": EPOCH}, {}, "unauthorized", AuditAction.AUTH_REFUSED),
        ({"expires_at": EPOCH}, {}, "unauthorized", AuditAction.KEY_EXPIRED_USED),
        ({"expires_at": EPOCH + HOUR}, {}, None, None),
        ({"previous_expires_at": EPOCH + HOUR}, {"previous_secret": True}, None, None),
        ({"previous_expires_at": EPOCH}, {"previous_secret": True}, "unauthorized",
         AuditAction.KEY_EXPIRED_USED),
        ({}, {"environment": Environment.TEST}, "unauthorized", AuditAction.AUTH_REFUSED),
        ({"scopes": ("jobs:read", "jobs:everything")}, {}, "unauthorized",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ("10.0.0.0/8",)}, {}, None, None),
        ({"allowed_ips": ("192.168.0.0/16", "2001:db8::/32")}, {}, "ip_not_allowed",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ("10.0.0.0/8",)}, {"client_ip": None}, "ip_not_allowed",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ("10.0.0.0/8",)}, {"client_ip": "testclient"}, "ip_not_allowed",
         AuditAction.AUTH_REFUSED),
        ({"allowed_ips": ("not a cidr",)}, {}, "unauthorized", AuditAction.AUTH_REFUSED),
        ({}, {"scope": Scope.JOBS_DELETE}, "insufficient_scope", AuditAction.AUTH_REFUSED),
    ],
    ids=["valid", "revoked", "expired", "expires-later", "old-secret-in-grace",
         "old-secret-after-grace", "wrong-environment", "unknown-scope", "ip-allowed",
         "ip-not-listed", "ip-unknown", "ip-unparseable", "stored-cidr-malformed",
         "scope-missing"],
)
def test_each_restriction_refuses_with_its_code(
    stored: dict[str, Any], changes: dict[str, Any], code: str | None,
    action: AuditAction | None,
) -> None:
    refusal = evaluate(attempt(key_record(**stored), **changes))
    assert (refusal.code.value, refusal.action) == (code, action) if refusal else code is None


def test_the_first_refusal_wins_and_a_failing_check_refuses() -> None:
    both = attempt(key_record(revoked_at=EPOCH), scope=Scope.AUDIT_READ)
    refusal = evaluate(both)
    assert refusal is not None and refusal.code is ErrorCode.UNAUTHORIZED

    class Broken:
        def check(self, attempt: Attempt) -> Refusal | None:
            raise RuntimeError("cannot decide")

    refusal = evaluate(attempt(key_record()), (*RESTRICTIONS, Broken()))
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
def access(databases: TestDatabases, tmp_path: Path,
           clock: FakeClock) -> Iterator[AccessService]:
    db = Database(databases.url(tmp_path))
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


def refusals(access: AccessService) -> tuple[int, int, int]:
    """(refusals of no known key recorded one by one, refusals counted in aggregates,
    aggregate entries)."""
    with access.db.transaction() as session:
        rows = session.scalars(select(AuditEntryRow).where(AuditEntryRow.action.in_(
            [AuditAction.AUTH_REFUSED.value, AuditAction.AUTH_REFUSALS_AGGREGATED.value]))).all()
    single = sum(1 for r in rows if r.action == AuditAction.AUTH_REFUSED and not r.actor_key_id)
    aggregates = [json.loads(r.detail or "{}") for r in rows
                  if r.action == AuditAction.AUTH_REFUSALS_AGGREGATED]
    return single, sum(a["count"] for a in aggregates), len(aggregates)


def refused_by(access: AccessService, key_id: str) -> int:
    with access.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntryRow).where(
            AuditEntryRow.action == AuditAction.AUTH_REFUSED.value,
            AuditEntryRow.actor_key_id == key_id)) or 0)


def test_a_flood_of_bad_keys_is_counted_and_hides_no_valid_keys_refusal(
    access: AccessService, clock: FakeClock,
) -> None:
    tenant = access.bootstrap_tenant("acme")
    reviewer = access.issue_key(tenant.tenant_id, "r", Role.REVIEWER)
    flood = 0
    for n in range(1400):  # one address, then many: past the old 600-a-minute budget
        with pytest.raises(AuthError):
            login(access, "ocv_live_" + "x" * 36, Scope.JOBS_READ,
                  ip="192.0.2.1" if n < 700 else f"2001:db8::{n:x}")
        flood += 1
    for _ in range(5):  # escalation attempts by a valid key: each one on record
        with pytest.raises(AuthError):
            login(access, reviewer.secret, Scope.KEYS_MANAGE, ip="192.0.2.1")
    assert refused_by(access, reviewer.key_id) == 5
    single, counted, _ = refusals(access)
    assert single <= 600 and counted == 0  # the aggregates wait for their window to close
    access.flush_refusals(everything=True)
    single, counted, aggregates = refusals(access)
    assert single + counted == flood
    assert aggregates >= 1


def test_a_closed_window_is_recorded_at_the_next_refusal_or_the_flush(
    access: AccessService, clock: FakeClock,
) -> None:
    def bad(ip: str) -> None:
        with pytest.raises(AuthError):
            login(access, "ocv_live_" + "x" * 36, Scope.JOBS_READ, ip=ip)

    for _ in range(25):
        bad("192.0.2.1")
        bad("192.0.2.2")
    assert refusals(access) == (40, 0, 0)
    assert access.flush_refusals() == 0  # the windows are still open
    clock.advance(timedelta(seconds=61))
    bad("192.0.2.1")  # ends its source's window: that aggregate is written now
    assert refusals(access) == (41, 5, 1)
    assert access.flush_refusals() == 5  # the other source's window, by the periodic flush
    assert refusals(access) == (41, 10, 2)


# Key-on-key operations: the target must lie within the caller's rights.

def made(access: AccessService, maker: Principal, **changes: Any) -> tuple[str, str]:
    issued = access.create_key(maker, spec(**changes))
    return issued.key_id, issued.secret


def test_a_keys_manage_only_key_cannot_touch_an_admin_key(access: AccessService) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    manager = login(access, made(access, root, scopes=frozenset({Scope.KEYS_MANAGE}))[1])
    admin_id, _ = made(access, root, scopes=Role.ADMIN.scopes)
    for operation in (lambda: access.rotate_key(manager, admin_id, HOUR),
                      lambda: access.revoke_key(manager, admin_id),
                      lambda: access.get_key(manager, admin_id)):
        assert refused_code(operation) == "forbidden"
    assert access.get_key(root, admin_id).revoked_at is None
    assert refused_by(access, manager.key_id) == 3  # escalation attempts are on record
    peer_id, _ = made(access, root, scopes=frozenset({Scope.KEYS_MANAGE}))
    assert access.rotate_key(manager, peer_id, HOUR).key_id == peer_id
    assert access.revoke_key(manager, peer_id).revoked_at is not None


def test_an_expiring_key_cannot_touch_a_key_that_outlives_it(
    access: AccessService, clock: FakeClock,
) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    week = clock() + timedelta(days=7)
    expiring = login(access, made(access, root, scopes=Role.ADMIN.scopes, expires_at=week)[1])
    forever_id, _ = made(access, root)
    later_id, _ = made(access, root, expires_at=week + HOUR)
    for target in (forever_id, later_id):
        assert refused_code(lambda t=target: access.rotate_key(expiring, t, HOUR)) == "forbidden"
    sooner_id, _ = made(access, root, expires_at=week - HOUR)
    assert access.rotate_key(expiring, sooner_id, HOUR).key.expires_at == week - HOUR


def test_an_ip_bound_key_cannot_touch_an_unrestricted_key(access: AccessService) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    bound = login(access, made(access, root, scopes=Role.ADMIN.scopes,
                               allowed_ips=(ip_network("10.0.0.0/8"),))[1])
    anywhere_id, _ = made(access, root)
    elsewhere_id, _ = made(access, root, allowed_ips=(ip_network("192.0.2.0/24"),))
    for target in (anywhere_id, elsewhere_id):
        assert refused_code(lambda t=target: access.rotate_key(bound, t, HOUR)) == "forbidden"
        assert refused_code(lambda t=target: access.revoke_key(bound, t)) == "forbidden"
    within_id, _ = made(access, root, allowed_ips=(ip_network("10.1.0.0/16"),))
    assert access.rotate_key(bound, within_id, HOUR).key.allowed_ips == ("10.1.0.0/16",)


def test_rotation_keeps_the_keys_expiry_and_address_restrictions(
    access: AccessService, clock: FakeClock,
) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    key_id, _ = made(access, root, expires_at=clock() + HOUR,
                     allowed_ips=(ip_network("10.0.0.0/8"),))
    rotated = access.rotate_key(root, key_id, timedelta(0))
    assert (rotated.key.expires_at, rotated.key.allowed_ips) == (clock() + HOUR, ("10.0.0.0/8",))
    assert refused_code(lambda: login(access, rotated.secret, Scope.JOBS_READ,
                                      ip="192.0.2.1")) == "ip_not_allowed"
    assert login(access, rotated.secret, Scope.JOBS_READ).key_id == key_id
    clock.advance(HOUR)
    assert refused_code(lambda: login(access, rotated.secret, Scope.JOBS_READ)) == "unauthorized"


def test_revoking_a_key_revokes_the_keys_it_made_transitively(access: AccessService) -> None:
    root = login(access, access.bootstrap_tenant("acme").secret)
    parent_id, parent_secret = made(access, root, scopes=Role.ADMIN.scopes)
    parent = login(access, parent_secret)
    child_id, child_secret = made(access, parent, scopes=Role.ADMIN.scopes)
    grandchild_id, grandchild_secret = made(access, login(access, child_secret))
    sibling_id, sibling_secret = made(access, root)
    access.revoke_key(root, parent_id)
    for secret in (parent_secret, child_secret, grandchild_secret):
        assert refused_code(lambda s=secret: login(access, s, Scope.JOBS_READ)) == "unauthorized"
    assert login(access, sibling_secret, Scope.JOBS_READ).key_id == sibling_id
    details = {k.id: k for k in access.list_keys(root)}
    assert details[parent_id].revoked_with is None
    assert details[parent_id].revoked_by == root.key_id
    assert details[child_id].revoked_with == parent_id
    assert details[grandchild_id].revoked_with == parent_id
    assert entries(access, AuditAction.KEY_REVOKED) == 3


def test_job_visibility_defaults_by_role_and_never_widens(access: AccessService) -> None:
    tenant = access.bootstrap_tenant("acme")
    root = login(access, tenant.secret)
    assert root.job_visibility is JobVisibility.TENANT
    developer = access.issue_key(tenant.tenant_id, "d", Role.DEVELOPER)
    assert developer.key.job_visibility is JobVisibility.OWN
    _, narrow_secret = made(access, root, scopes=Role.ADMIN.scopes,
                            job_visibility=JobVisibility.OWN)
    narrow = login(access, narrow_secret)
    assert refused_code(lambda: access.create_key(
        narrow, spec(job_visibility=JobVisibility.TENANT))) == "forbidden"
    assert access.create_key(narrow, spec()).key.job_visibility is JobVisibility.OWN
    assert refused_code(lambda: access.rotate_key(narrow, tenant.key_id, HOUR)) == "forbidden"


@pytest.mark.parametrize("name", ["a\nb", "\x1b[31mred", "\u202egpj.exe", "tab\there",
                                  "del\x7f", "\x85", "x" * 201])
def test_key_names_refuse_control_and_bidi_characters(access: AccessService, name: str) -> None:
    tenant = access.bootstrap_tenant("acme")
    with pytest.raises(InputRejected) as caught:
        access.issue_key(tenant.tenant_id, name, Role.REVIEWER)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert refused_code(lambda: access.bootstrap_tenant(name)) == "invalid_parameter"


def test_a_burst_with_one_key_writes_its_last_use_once_a_minute(
        access: AccessService, clock: FakeClock) -> None:
    """last_used_at is written at most once a minute: also when a burst of requests all
    read it stale at once (each would otherwise queue behind the single writer)."""
    secret = access.bootstrap_tenant("acme").secret
    writes: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE api_keys SET last_used_at"):
            writes.append(statement)

    event.listen(access.db.engine, "before_cursor_execute", count)
    barrier = threading.Barrier(12)

    def request() -> None:
        barrier.wait()
        login(access, secret)

    for minute in range(2):
        threads = [threading.Thread(target=request) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(writes) == minute + 1
        clock.advance(timedelta(minutes=1, seconds=1))
    caller = login(access, secret)
    assert access.get_key(caller, caller.key_id).last_used_at == EPOCH + timedelta(
        minutes=2, seconds=2)
