"""Reading the running deployment into a posture report (``checks.py`` judges each part).

Two views: :meth:`PostureService.for_tenant` answers for one tenant where policies are
per tenant (its retention per kind and environment, its audit chain, its webhooks, its
keys), and the deployment for the rest; :meth:`PostureService.for_deployment` is the
operator's view (every chain, every tenant's policies and endpoints).

Everything is read at the time of the call: settings in force, the database, the key
store, the master-key provider, the audit chains (verified then, entry by entry, so the
call costs a walk of the chains it covers), and the installed libraries.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Mapping

from ocrvault import __version__
from ocrvault.audit import ChainSigner, verify_chain, verify_log
from ocrvault.audit.verify import ChainReport
from ocrvault.clock import Clock
from ocrvault.config import Settings
from ocrvault.crypto import Keyring
from ocrvault.crypto.master import KeyAccessDenied, KeyServiceUnavailable
from ocrvault.crypto.tenant_keys import TenantKeys
from ocrvault.datadir import keyring_beside_data
from ocrvault.engines.catalog import AUTO, EngineCatalog
from ocrvault.environments import Environment
from ocrvault.errors import OcrVaultError
from ocrvault.posture import checks
from ocrvault.posture.components import document_readers
from ocrvault.posture.facts import (
    AuditFacts,
    ChainFacts,
    Connection,
    EndpointFacts,
    MasterKeyFacts,
    ReaperFacts,
    RetentionFacts,
    TenantKeyFacts,
    Transport,
    WebhookFacts,
    origin,
)
from ocrvault.posture.model import Report
from ocrvault.principal import Principal, Role
from ocrvault.retention.policy import TEST_MODE_CEILING, RetentionPolicy
from ocrvault.store.db import Database
from ocrvault.store.posture import PostureRepository
from ocrvault.store.records import RetentionPolicyRecord, WebhookEndpointRecord
from ocrvault.store.repository import RetentionRepository
from ocrvault.webhooks.ssrf import parse_cidrs

SCHEDULER_LOCK = "scheduler"  # compose/scheduler.py's lock name
TENANT = RetentionRepository.TENANT_SCOPE


class PostureService:
    def __init__(self, settings: Settings, db: Database, keyring: Keyring,
                 tenant_keys: TenantKeys | None, engines: EngineCatalog, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.keyring = keyring
        self.tenant_keys = tenant_keys
        self.engines = engines
        self.clock = clock
        # Set by `ocrvault serve` once it knows how it listens; None: not served by it.
        self.transport: Transport | None = None

    # -- the two views ---------------------------------------------------------------------

    def for_tenant(self, caller: Principal) -> Report:
        """The caller's tenant's answers (its retention in the environments the caller
        administers, its audit chain, its webhooks and keys) and the deployment's."""
        tenant_id = caller.tenant_id
        environments = [env.value for env in caller.administers]
        with self.db.transaction() as session:
            store = PostureRepository(session)
            tenant = store.tenant(tenant_id)
            policies = [p for p in store.retention_policies(tenant_id)
                        if p.environment in environments]
            endpoints = [e for e in store.webhook_endpoints(tenant_id)
                         if e.environment.value in environments]
            keys = {env: count for env, count in store.active_keys(tenant_id, self.clock()
                                                                    ).items()
                    if env in environments}
        stored = {p.environment: dict(p.seconds) for p in policies if p.scope == TENANT}
        # What applies to a new job of each environment (test data capped at one hour).
        by_environment = {env: _effective(env, stored.get(env, {})) for env in environments}
        overrides = [p for p in policies if p.scope != TENANT]
        retention = RetentionFacts(
            RetentionPolicy().as_dict(), TEST_MODE_CEILING, by_environment=by_environment,
            longer_than_default=_longer(overrides, lambda p: f"key {p.scope}/{p.environment}"),
            key_overrides=len(overrides))
        chain = verify_chain(self.db, ChainSigner(self.keyring), f"tenant:{tenant_id}")
        chains = (_renamed(chain, {tenant_id: tenant.name}) if tenant else chain,)
        return self._report(
            scope="tenant", tenant=tenant.name if tenant else None,
            environment=caller.environment.value, retention=retention, chains=chains,
            endpoints=endpoints, keys=keys, tenant_id=tenant_id)

    def for_deployment(self) -> Report:
        """The operator's view: every tenant's policies, chains, endpoints and keys."""
        with self.db.transaction() as session:
            store = PostureRepository(session)
            names = {t.id: t.name for t in store.tenants()}
            policies = store.retention_policies(None)
            endpoints = store.webhook_endpoints(None)
            keys = store.active_keys(None, self.clock())

        def label(policy: RetentionPolicyRecord) -> str:
            tenant = names.get(policy.tenant_id, policy.tenant_id)
            key = "" if policy.scope == TENANT else f"key {policy.scope}/"
            return f"{tenant}/{key}{policy.environment}"

        retention = RetentionFacts(
            RetentionPolicy().as_dict(), TEST_MODE_CEILING,
            longer_than_default=_longer(policies, label),
            key_overrides=sum(p.scope != TENANT for p in policies))
        chains = verify_log(self.db, ChainSigner(self.keyring)).chains
        named = tuple(_renamed(chain, names) for chain in chains)
        return self._report(scope="deployment", tenant=None, environment=None,
                            retention=retention, chains=named, endpoints=endpoints, keys=keys,
                            tenant_id=None)

    # -- the parts -------------------------------------------------------------------------

    def _report(self, *, scope: str, tenant: str | None, environment: str | None,
                retention: RetentionFacts, chains: tuple[ChainReport, ...],
                endpoints: list[WebhookEndpointRecord], keys: dict[str, int],
                tenant_id: str | None) -> Report:
        now = self.clock()
        settings = self.settings
        key_facts = self._tenant_key_facts(tenant_id)
        connections = self._connections(endpoints, tenant_id)
        entries = [
            checks.transport(self.transport),
            checks.encryption_at_rest(settings, _database(settings)),
            checks.master_key(self._master_key_facts()),
            checks.tenant_keys(key_facts),
            checks.access({role.value: [s.value for s in role.scopes] for role in Role}, keys),
            checks.retention(retention),
            checks.audit_log(AuditFacts(now, tuple(
                ChainFacts(c.chain, c.entries, c.first_pos, c.head_pos,
                           None if c.tamper is None else str(c.tamper)) for c in chains),
                settings.audit_retention_days)),
            checks.reaper(self._reaper_facts(tenant_id)),
            checks.webhooks(WebhookFacts(
                settings.webhook_allow_http,
                tuple(str(net) for net in parse_cidrs(settings.webhook_allow_cidrs)),
                tuple(EndpointFacts(e.id, e.environment.value, origin(e.url), e.status)
                      for e in endpoints))),
            checks.file_limits(settings),
            checks.sandbox(settings),
            checks.metadata(),
            checks.residency(settings, connections),
            checks.backups(key_facts, settings.reaper_interval_seconds),
            checks.environments(keys, TEST_MODE_CEILING),
            checks.telemetry(connections),
            checks.training(),
            checks.components(document_readers(self._engine_versions())),
        ]
        return Report.of(entries, generated_at=now, scope=scope, tenant=tenant,
                         environment=environment, ocrvault_version=__version__,
                         region=settings.region)

    def _engine_versions(self) -> dict[str, str]:
        """Each engine's version as the catalog describes it (none is created); an engine
        that cannot be described (its library or data missing) says why instead."""
        versions: dict[str, str] = {}
        for name in self.engines.names:
            if name == AUTO:
                continue
            try:
                versions[name] = self.engines.spec(name).info.version
            except (OcrVaultError, OSError, ImportError) as error:
                versions[name] = f"unavailable: {type(error).__name__}"
        return versions

    def _master_key_facts(self) -> MasterKeyFacts:
        settings = self.settings
        from_env = settings.master_key is not None
        source = "OCRVAULT_MASTER_KEY" if from_env else str(settings.keyring_path.resolve())
        mode = None
        if not from_env and settings.keyring_path.exists():
            mode = f"{stat.S_IMODE(settings.keyring_path.stat().st_mode):04o}"
        key_id = version = unavailable = None
        if self.tenant_keys is not None:
            try:
                described = self.tenant_keys.master.describe()
                key_id, version = described.key_id, described.version
            except (KeyServiceUnavailable, KeyAccessDenied) as error:
                unavailable = error.code.value
        return MasterKeyFacts(settings.key_provider, source, keyring_beside_data(settings),
                              mode, self.keyring.versions, self.keyring.primary, key_id,
                              version, unavailable)

    def _tenant_key_facts(self, tenant_id: str | None) -> TenantKeyFacts:
        settings = self.settings
        store_dir = settings.resolved_key_store_dir.resolve()
        inside = store_dir.is_relative_to(settings.data_dir.resolve())
        wrapped_by: dict[str, int] = {}
        epochs = tenants = offboarded = 0
        if self.tenant_keys is not None:
            ids = [tenant_id] if tenant_id is not None else self.tenant_keys.tenants()
            for tid in ids:
                info = self.tenant_keys.info(tid)
                if info is None:
                    offboarded += self.tenant_keys.is_offboarded(tid)
                    continue
                tenants += 1
                wrapped_by[info.wrapped_by] = wrapped_by.get(info.wrapped_by, 0) + 1
                epochs += len(info.epochs)
        return TenantKeyFacts(str(store_dir), inside, settings.epoch_seconds, tenants,
                              wrapped_by, epochs, offboarded)

    def _reaper_facts(self, tenant_id: str | None) -> ReaperFacts:
        now = self.clock()
        with self.db.transaction() as session:
            store = PostureRepository(session)
            overdue = store.overdue(now, tenant_id)
            holder = store.lock_holder(SCHEDULER_LOCK)
        lag = None if overdue.oldest is None else (now - overdue.oldest).total_seconds()
        return ReaperFacts(self.settings.reaper_interval_seconds, overdue.jobs, lag,
                           holder.owner if holder else None,
                           holder.expires_at if holder else None)

    def _connections(self, endpoints: list[WebhookEndpointRecord],
                     tenant_id: str | None) -> list[Connection]:
        """Every place the service connects to: its stores, key service, broker, the shared
        rate-limit store and trace collector where configured, and the webhook endpoints
        (of the tenant, or all). Nothing else: nothing is sent anywhere by default."""
        settings = self.settings
        found = [Connection("database", _database(settings))]
        if settings.blob_store == "s3":
            found.append(Connection("blob store", (
                origin(settings.s3_endpoint_url) if settings.s3_endpoint_url
                else f"AWS S3 ({settings.s3_region or 'default region'})")
                + f", bucket {settings.s3_bucket}"))
        else:
            found.append(Connection("blob store", f"local directory {settings.blob_dir.resolve()}"))
        if settings.key_provider == "aws-kms" or self._tenants_use_kms(tenant_id):
            found.append(Connection("key service", (
                origin(settings.kms_endpoint_url) if settings.kms_endpoint_url
                else f"AWS KMS ({settings.kms_region or 'default region'})")))
        if settings.key_provider == "pkcs11":
            found.append(Connection("key service", f"PKCS#11 module {settings.pkcs11_library}"))
        if settings.queue == "celery" and settings.broker_url:
            found.append(Connection("broker", origin(settings.broker_url)))
        if settings.rate_limit_backend == "redis" and settings.rate_limit_redis_url:
            found.append(Connection("rate limits", origin(settings.rate_limit_redis_url)))
        if settings.otlp_endpoint:  # traces: span names and timings, never content
            found.append(Connection("traces (OTLP)", origin(settings.otlp_endpoint)))
        found += [Connection("webhook", origin(e.url)) for e in endpoints]
        return found

    def _tenants_use_kms(self, tenant_id: str | None) -> bool:
        if self.tenant_keys is None:
            return False
        ids = [tenant_id] if tenant_id is not None else self.tenant_keys.tenants()
        return any((info := self.tenant_keys.info(tid)) is not None
                   and info.wrapped_by == "kms" for tid in ids)


def _effective(environment: str, seconds: Mapping[str, int]) -> dict[str, int]:
    """A stored policy (or the defaults) as it applies to ``environment``'s jobs."""
    return RetentionPolicy(**seconds).for_environment(Environment(environment)).as_dict()


def _longer(policies: Iterable[RetentionPolicyRecord],
            label: Callable[[RetentionPolicyRecord], str]) -> dict[str, tuple[str, ...]]:
    """The kinds of each policy that keep data longer than the defaults do, by label."""
    defaults = RetentionPolicy().as_dict()
    found = {label(p): tuple(kind for kind, value in _effective(p.environment, p.seconds).items()
                             if value > defaults[kind]) for p in policies}
    return {where: kinds for where, kinds in found.items() if kinds}


def _database(settings: Settings) -> str:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return f"SQLite file {url.split(':///', 1)[-1]}"
    return origin(url)


def _renamed(chain: ChainReport, names: dict[str, str]) -> ChainReport:
    """``tenant:<id>`` shown as ``tenant:<name>`` for the operator."""
    if chain.chain.startswith("tenant:") and chain.chain[7:] in names:
        return ChainReport(f"tenant:{names[chain.chain[7:]]}", chain.entries, chain.first_pos,
                           chain.head_pos, chain.tamper)
    return chain

