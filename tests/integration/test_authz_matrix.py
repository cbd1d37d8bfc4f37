"""The authorization matrix, generated from tables: every v1 route x every role x where
the target lives (own tenant, own tenant's other environment, another tenant) x the
caller's environment x the state of its key, each with its exact status and code.

A second matrix covers every route on a key (every ``Kind.KEY`` route, so a new one joins
it): the caller's rights x the target key's rights. A key acts on another only when the
other lies within its own rights: scopes, expiry, address allow-list, job visibility.

One app serves the whole matrix on a fast fake engine. The clock is set once: every
key is made at EPOCH, then time moves two hours on, past the one-hour expiries and
grace periods and inside the 48-hour one. Routes that destroy their target get a fresh
target for every case.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from ipaddress import IPv4Network, ip_network
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ocrvault.access.service import KeySpec
from ocrvault.api.app import create_app
from ocrvault.audit import AuditAction, AuditQuery
from ocrvault.environments import Environment
from ocrvault.principal import JobVisibility, Principal, RequestContext, Role, Scope
from ocrvault.retention.policy import RetentionPolicy
from ocrvault.runtime import Runtime
from ocrvault.store.webhooks import delivery_id_of
from tests.clocks import FakeClock
from tests.conftest import assert_problem, auth, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine

PNG = encode(text_page(["matrix"]), "PNG")


class KeyState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ROTATED_IN_GRACE = "rotated-in-grace"
    ROTATED_AFTER_GRACE = "rotated-after-grace"


DEAD = {KeyState.EXPIRED, KeyState.REVOKED, KeyState.ROTATED_AFTER_GRACE}


class Target(StrEnum):
    NONE = "none"  # routes that address no single resource
    OWN = "own"
    OWN_OTHER_ENV = "own-other-env"
    OTHER_TENANT = "other-tenant"


class Kind(StrEnum):
    JOB = "job"
    KEY = "key"
    AUDIT = "audit"
    WEBHOOK = "webhook"


NOT_FOUND = {Kind.JOB: "job_not_found", Kind.KEY: "key_not_found",
             Kind.AUDIT: "audit_entry_not_found", Kind.WEBHOOK: "webhook_not_found"}


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    scope: Scope
    ok: int
    kind: Kind | None = None
    destroys: bool = False
    request: dict[str, Any] = field(default_factory=dict)
    # Whether a live key reaches the target's test-mode twin (administration does; jobs and
    # per-key retention are strictly per environment).
    live_sees_test: bool = False


POLICY = {"json": RetentionPolicy().as_dict()}
# A public address needs no DNS: the SSRF guard lets it be registered (nothing is sent).
WEBHOOK = {"url": "https://1.1.1.1/hook", "events": ["job.succeeded"]}

ROUTES = [
    Route("read", "POST", "/v1/read", Scope.READ_SUBMIT, 202, request={"content": PNG}),
    Route("read-sync", "POST", "/v1/read:sync", Scope.READ_SUBMIT, 200, request={"content": PNG}),
    Route("list-jobs", "GET", "/v1/jobs", Scope.JOBS_READ, 200),
    Route("sample-page", "GET", "/v1/sample.png", Scope.READ_SUBMIT, 200),
    Route("get-job", "GET", "/v1/jobs/{id}", Scope.JOBS_READ, 200, Kind.JOB),
    Route("get-output", "GET", "/v1/jobs/{id}/outputs/text", Scope.JOBS_READ, 200, Kind.JOB),
    Route("delete-job", "DELETE", "/v1/jobs/{id}", Scope.JOBS_DELETE, 200, Kind.JOB, True),
    Route("delete-jobs", "DELETE", "/v1/jobs", Scope.JOBS_DELETE, 200,
          request={"params": {"before": "2000-01-01T00:00:00Z"}}),
    Route("create-key", "POST", "/v1/keys", Scope.KEYS_MANAGE, 201,
          request={"json": {"name": "made", "scopes": []}}),
    Route("list-keys", "GET", "/v1/keys", Scope.KEYS_MANAGE, 200),
    Route("get-key", "GET", "/v1/keys/{id}", Scope.KEYS_MANAGE, 200, Kind.KEY,
          live_sees_test=True),
    Route("revoke-key", "DELETE", "/v1/keys/{id}", Scope.KEYS_MANAGE, 200, Kind.KEY, True,
          live_sees_test=True),
    Route("rotate-key", "POST", "/v1/keys/{id}/rotate", Scope.KEYS_MANAGE, 200, Kind.KEY, True,
          live_sees_test=True),
    Route("list-audit", "GET", "/v1/audit", Scope.AUDIT_READ, 200),
    Route("security-posture", "GET", "/v1/security/posture", Scope.AUDIT_READ, 200),
    Route("get-audit-entry", "GET", "/v1/audit/{id}", Scope.AUDIT_READ, 200, Kind.AUDIT,
          live_sees_test=True),
    Route("get-retention", "GET", "/v1/retention", Scope.POLICIES_MANAGE, 200),
    Route("put-retention", "PUT", "/v1/retention", Scope.POLICIES_MANAGE, 200, request=POLICY),
    Route("patch-retention", "PATCH", "/v1/retention", Scope.POLICIES_MANAGE, 200,
          request={"json": {"result": "PT1H"}}),
    Route("get-key-retention", "GET", "/v1/keys/{id}/retention", Scope.POLICIES_MANAGE, 200,
          Kind.KEY),
    Route("put-key-retention", "PUT", "/v1/keys/{id}/retention", Scope.POLICIES_MANAGE, 200,
          Kind.KEY, request=POLICY),
    Route("patch-key-retention", "PATCH", "/v1/keys/{id}/retention", Scope.POLICIES_MANAGE,
          200, Kind.KEY, request={"json": {"outputs": 60}}),
    # What the deployment reads: for choosing a submission's languages (and engine).
    Route("list-engines", "GET", "/v1/engines", Scope.READ_SUBMIT, 200),
    Route("list-languages", "GET", "/v1/languages", Scope.READ_SUBMIT, 200),
    # Webhook endpoints are strictly per tenant and environment, like jobs.
    Route("create-webhook", "POST", "/v1/webhooks", Scope.WEBHOOKS_MANAGE, 201,
          request={"json": WEBHOOK}),
    Route("list-webhooks", "GET", "/v1/webhooks", Scope.WEBHOOKS_MANAGE, 200),
    Route("get-webhook", "GET", "/v1/webhooks/{id}", Scope.WEBHOOKS_MANAGE, 200, Kind.WEBHOOK),
    Route("patch-webhook", "PATCH", "/v1/webhooks/{id}", Scope.WEBHOOKS_MANAGE, 200,
          Kind.WEBHOOK, request={"json": {"description": "changed"}}),
    Route("delete-webhook", "DELETE", "/v1/webhooks/{id}", Scope.WEBHOOKS_MANAGE, 204,
          Kind.WEBHOOK, True),
    Route("rotate-webhook", "POST", "/v1/webhooks/{id}/rotate-secret", Scope.WEBHOOKS_MANAGE,
          200, Kind.WEBHOOK),
    Route("test-webhook", "POST", "/v1/webhooks/{id}/test", Scope.WEBHOOKS_MANAGE, 202,
          Kind.WEBHOOK),
    Route("list-deliveries", "GET", "/v1/webhooks/{id}/deliveries", Scope.WEBHOOKS_MANAGE, 200,
          Kind.WEBHOOK),
    Route("redeliver", "POST", "/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
          Scope.WEBHOOKS_MANAGE, 202, Kind.WEBHOOK),
]


@dataclass(frozen=True)
class Case:
    route: Route
    role: Role
    target: Target
    environment: Environment
    state: KeyState

    def __str__(self) -> str:
        return "-".join((self.route.name, self.role, self.target, self.environment, self.state))


def other(environment: Environment) -> Environment:
    return Environment.TEST if environment is Environment.LIVE else Environment.LIVE


def expected(case: Case) -> tuple[int, str | None]:
    """The rules, stated once: dead keys 401; then the scope; then tenant and environment
    (a test key never reaches live data; a live key reaches test data only where
    ``live_sees_test``)."""
    route = case.route
    if case.state in DEAD:
        return 401, "unauthorized"
    if route.scope not in case.role.scopes:
        return 403, "insufficient_scope"
    if route.kind is not None and (
        case.target is Target.OTHER_TENANT
        or (case.target is Target.OWN_OTHER_ENV
            and not (route.live_sees_test and case.environment is Environment.LIVE))
    ):
        return 404, NOT_FOUND[route.kind]
    return route.ok, None


CASES = [
    Case(route, role, target, environment, state)
    for route in ROUTES
    for target in ([Target.OWN, Target.OWN_OTHER_ENV, Target.OTHER_TENANT] if route.kind
                   else [Target.NONE])
    for role, environment, state in itertools.product(Role, Environment, KeyState)
]


class World:
    """Two tenants, targets of each kind in each environment, and a key per role,
    environment and state in the tenant "own"."""

    def __init__(self, runtime: Runtime, client: TestClient, clock: FakeClock) -> None:
        self.runtime, self.client, self.clock = runtime, client, clock
        self.admins: dict[tuple[str, Environment], Principal] = {}
        self.admin_secrets: dict[tuple[str, Environment], str] = {}
        admin_secrets = self.admin_secrets
        for tenant, environment in itertools.product(("own", "other"), Environment):
            issued = runtime.access.bootstrap_tenant(tenant, environment)
            admin_secrets[tenant, environment] = issued.secret
            self.admins[tenant, environment] = self.login(issued.secret)
        self.keys = {(role, env, state): self._key(role, env, state)
                     for role, env, state in itertools.product(Role, Environment, KeyState)}
        # Age the keys, not the data: test-mode jobs live one hour at most.
        clock.advance(timedelta(hours=2))
        self.shared: dict[tuple[Kind, str, Environment], str] = {}
        self.deliveries: dict[str, str] = {}  # webhook id -> a delivery of it
        for tenant, environment in itertools.product(("own", "other"), Environment):
            job = self.make(Kind.JOB, tenant, environment)
            self.shared[Kind.JOB, tenant, environment] = job
            self.shared[Kind.KEY, tenant, environment] = self.make(Kind.KEY, tenant, environment)
            self.shared[Kind.AUDIT, tenant, environment] = self._entry_of(job, tenant, environment)
            hook = self.make(Kind.WEBHOOK, tenant, environment)
            self.shared[Kind.WEBHOOK, tenant, environment] = hook
            # A delivery of it to redeliver: queued only (nothing is sent here).
            owner = self.admins[tenant, environment]
            self.deliveries[hook] = delivery_id_of(runtime.webhooks.test(owner, hook), hook)
            wait_for_job(client, job, admin_secrets[tenant, environment])

    def login(self, secret: str) -> Principal:
        return self.runtime.access.authenticate(secret, RequestContext("setup"),
                                                Scope.KEYS_MANAGE)

    def _key(self, role: Role, environment: Environment, state: KeyState) -> str:
        access, admin = self.runtime.access, self.admins["own", environment]
        lifetime = {"expires_at": self.clock() + timedelta(hours=1)} if (
            state is KeyState.EXPIRED) else {}
        issued = access.create_key(admin, KeySpec(name=f"{role}-{state}", scopes=role.scopes,
                                                  environment=environment, **lifetime))
        if state is KeyState.REVOKED:
            access.revoke_key(admin, issued.key_id)
        grace = {KeyState.ROTATED_IN_GRACE: 48, KeyState.ROTATED_AFTER_GRACE: 1}.get(state)
        if grace is not None:
            access.rotate_key(admin, issued.key_id, timedelta(hours=grace))  # keep the old secret
        return issued.secret

    def make(self, kind: Kind, tenant: str, environment: Environment) -> str:
        owner = self.admins[tenant, environment]
        if kind is Kind.JOB:
            jobs = self.runtime.jobs
            return jobs.submit(owner, PNG, jobs.params(None, None, None)).id
        if kind is Kind.WEBHOOK:
            return self.runtime.webhooks.create(owner, WEBHOOK["url"], ("job.succeeded",),
                                                None).endpoint.id
        return self.runtime.access.issue_key(owner.tenant_id, "target", Role.REVIEWER,
                                             environment).key_id

    def _entry_of(self, job_id: str, tenant: str, environment: Environment) -> str:
        page = self.runtime.audit_reader.list(
            self.admins[tenant, environment],
            AuditQuery(action=AuditAction.JOB_SUBMITTED, target=job_id),
        )
        return page.entries[0].id

    def target_of(self, case: Case) -> str:
        kind = case.route.kind
        if kind is None:
            return ""
        tenant = "other" if case.target is Target.OTHER_TENANT else "own"
        environment = (other(case.environment) if case.target is Target.OWN_OTHER_ENV
                       else case.environment)
        if case.route.destroys:
            return self.make(kind, tenant, environment)
        return self.shared[kind, tenant, environment]


@pytest.fixture(scope="module")
def world(module_databases: TestDatabases,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = FakeClock()
    settings = module_databases.settings(tmp_path_factory.mktemp("matrix") / "data", workers=2,
                                         reaper_interval_seconds=3600)
    runtime = Runtime.build(settings, engine=FixedEngine(), clock=clock)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        yield World(runtime, client, clock)


def foreign_ids(world: World, case: Case, listing: dict[str, Any]) -> set[str]:
    """Ids in a listing that the caller must not see."""
    if case.route.name == "list-jobs":
        others = {job for (kind, tenant, env), job in world.shared.items()
                  if kind is Kind.JOB and (tenant == "other" or env is not case.environment)}
        return others & {job["id"] for job in listing["jobs"]}
    if case.route.name == "list-keys":
        keys = listing["keys"]
        hidden = {k["id"] for k in keys if case.environment is Environment.TEST
                  and k["environment"] != "test"}
        other_tenant = {world.shared[Kind.KEY, "other", env] for env in Environment}
        return hidden | (other_tenant & {k["id"] for k in keys})
    entries = listing["entries"]
    other_actors = {p.key_id for (tenant, _), p in world.admins.items() if tenant == "other"}
    return {e["id"] for e in entries if e["actor_key_id"] in other_actors
            or (case.environment is Environment.TEST and e["environment"] != "test")}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_authorization_matrix(world: World, case: Case) -> None:
    secret = world.keys[case.role, case.environment, case.state]
    target = world.target_of(case)
    path = case.route.path.format(id=target, delivery=world.deliveries.get(target, "none"))
    response = world.client.request(case.route.method, path, headers=auth(secret),
                                    **case.route.request)
    status, code = expected(case)
    if code is not None:
        assert_problem(response, status, code)
        return
    assert response.status_code == status, response.text
    if case.route.name in ("list-keys", "list-audit", "list-jobs"):
        assert not foreign_ids(world, case, response.json())


def test_the_matrix_covers_every_v1_route(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    served = {(method.upper(), path.replace("{fmt}", "text")) for path, operations in paths.items()
              if path.startswith("/v1/") for method in operations}
    named = {"/jobs/": "{job_id}", "/keys/": "{key_id}", "/audit/": "{entry_id}",
             "/webhooks/": "{webhook_id}"}
    tabled = {(r.method, r.path.replace("{id}", next(v for k, v in named.items() if k in r.path))
               .replace("{delivery}", "{delivery_id}"))
              if "{id}" in r.path else (r.method, r.path) for r in ROUTES}
    assert served == tabled


def test_the_rules_reach_every_outcome() -> None:
    assert {expected(case) for case in CASES} == {
        (401, "unauthorized"), (403, "insufficient_scope"), (404, "job_not_found"),
        (404, "key_not_found"), (404, "audit_entry_not_found"), (404, "webhook_not_found"),
        (200, None), (201, None), (202, None), (204, None),
    }


# Key-on-key operations: the caller's rights x the target key's rights.

@dataclass(frozen=True)
class Rights:
    scopes: frozenset[Scope]
    expires_in: timedelta | None = None
    allowed_ips: tuple[str, ...] = ()
    job_visibility: JobVisibility = JobVisibility.TENANT


DAY = timedelta(days=1)
REVIEWER = Role.REVIEWER.scopes
MANAGER = frozenset({Scope.KEYS_MANAGE, Scope.POLICIES_MANAGE})

# Every caller may call every key route (keys:manage and policies:manage).
HOLDERS = {
    "admin": Rights(Role.ADMIN.scopes),
    "manager-only": Rights(MANAGER),
    "expiring-in-a-week": Rights(Role.ADMIN.scopes, expires_in=7 * DAY),
    "ip-bound": Rights(Role.ADMIN.scopes, allowed_ips=("10.0.0.0/8",)),
    "own-jobs": Rights(Role.ADMIN.scopes, job_visibility=JobVisibility.OWN),
}
TARGETS = {
    "admin": Rights(Role.ADMIN.scopes),
    "reviewer": Rights(REVIEWER),
    "manager-only": Rights(MANAGER),
    "expiring-sooner": Rights(REVIEWER, expires_in=DAY),
    "expiring-later": Rights(REVIEWER, expires_in=30 * DAY),
    "ip-within": Rights(REVIEWER, allowed_ips=("10.1.0.0/16",)),
    "ip-elsewhere": Rights(REVIEWER, allowed_ips=("192.0.2.0/24",)),
    "own-jobs": Rights(REVIEWER, job_visibility=JobVisibility.OWN),
}
KEY_ROUTES = [route for route in ROUTES if route.kind is Kind.KEY]
CALLER_ADDRESS = ("10.0.0.7", 50000)


def lies_within(target: Rights, holder: Rights) -> bool:
    """The rule, stated once here independently of the service's."""
    if not target.scopes <= holder.scopes:
        return False
    if holder.expires_in is not None and (target.expires_in is None
                                          or target.expires_in > holder.expires_in):
        return False
    if holder.allowed_ips and not (target.allowed_ips and all(
            any(IPv4Network(t).subnet_of(IPv4Network(h)) for h in holder.allowed_ips)
            for t in target.allowed_ips)):
        return False
    return holder.job_visibility is JobVisibility.TENANT or (
        target.job_visibility is JobVisibility.OWN)


@dataclass(frozen=True)
class KeyCase:
    route: Route
    holder: str
    target: str

    def __str__(self) -> str:
        return f"{self.route.name}-{self.holder}-on-{self.target}"


def key_expected(case: KeyCase) -> tuple[int, str | None]:
    if lies_within(TARGETS[case.target], HOLDERS[case.holder]):
        return case.route.ok, None
    return 403, "forbidden"


KEY_CASES = [KeyCase(route, holder, target)
             for route in KEY_ROUTES for holder in HOLDERS for target in TARGETS]


def key_with(world: World, name: str, rights: Rights, made_at: datetime) -> tuple[str, str]:
    expires = {"expires_at": made_at + rights.expires_in} if rights.expires_in else {}
    issued = world.runtime.access.create_key(world.admins["own", Environment.LIVE], KeySpec(
        name=name, scopes=rights.scopes, environment=Environment.LIVE,
        allowed_ips=tuple(ip_network(cidr) for cidr in rights.allowed_ips),
        job_visibility=rights.job_visibility, **expires))
    return issued.key_id, issued.secret


@pytest.fixture(scope="module")
def holders(world: World) -> dict[str, str]:
    made_at = world.clock()
    return {name: key_with(world, f"holder-{name}", rights, made_at)[1]
            for name, rights in HOLDERS.items()}


@pytest.mark.parametrize("case", KEY_CASES, ids=str)
def test_key_on_key_matrix(world: World, holders: dict[str, str], case: KeyCase) -> None:
    target_id, _ = key_with(world, f"target-{case.target}", TARGETS[case.target], world.clock())
    client = TestClient(world.client.app, client=CALLER_ADDRESS, raise_server_exceptions=False)
    response = client.request(case.route.method, case.route.path.format(id=target_id),
                              headers=auth(holders[case.holder]), **case.route.request)
    status, code = key_expected(case)
    if code is not None:
        assert_problem(response, status, code)
        shown = world.client.get(f"/v1/keys/{target_id}",
                                 headers=auth(world.admin_secrets["own", Environment.LIVE]))
        assert shown.json()["revoked_at"] is None and shown.json()["rotated_at"] is None
        return
    assert response.status_code == status, response.text
    if case.route.name == "rotate-key":  # the rotated key keeps its restrictions
        rotated = response.json()
        rights = TARGETS[case.target]
        assert tuple(rotated["allowed_ips"]) == rights.allowed_ips
        assert (rotated["expires_at"] is None) == (rights.expires_in is None)


def test_the_key_rules_reach_every_outcome() -> None:
    assert {key_expected(case) for case in KEY_CASES} == {(200, None), (403, "forbidden")}
    for holder in HOLDERS:  # each restricted caller is refused something, allowed something
        outcomes = {key_expected(KeyCase(KEY_ROUTES[0], holder, t)) for t in TARGETS}
        assert len(outcomes) == (1 if holder == "admin" else 2), holder
