"""What the checks judge: plain records of the running configuration and state, read by
``service.py`` (settings, database, key store, audit chains, installed libraries) and by
``ocrvault serve`` (the transport it listens with). Nothing here holds a secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from ocrvault.addresses import is_loopback

TransportMode = Literal["tls", "proxy", "plain"]


@dataclass(frozen=True, slots=True)
class Transport:
    """How the HTTP server listens, as ``ocrvault serve`` started it."""

    mode: TransportMode
    host: str
    port: int
    tls_minimum_version: str | None = None  # with mode tls: what the TLS context enforces
    trusted_proxies: str = ""  # with mode proxy: whose X-Forwarded-* are believed

    @classmethod
    def of(cls, host: str, port: int, *, tls_minimum_version: str | None,
           behind_proxy: bool, trusted_proxies: str) -> Transport:
        """``tls_minimum_version`` set: TLS is on; else a proxy fronts it or it is plain."""
        mode: TransportMode = ("tls" if tls_minimum_version else
                               "proxy" if behind_proxy else "plain")
        return cls(mode, host, port, tls_minimum_version, trusted_proxies)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


@dataclass(frozen=True, slots=True)
class MasterKeyFacts:
    provider: str  # OCRVAULT_KEY_PROVIDER
    keyring_source: str  # the keyring file's path, or "OCRVAULT_MASTER_KEY"
    keyring_beside_data: bool
    keyring_file_mode: str | None  # "0600"; None when the keys come from the environment
    keyring_versions: tuple[int, ...]
    keyring_primary: int
    key_id: str | None = None  # as the provider describes its key
    provider_version: int | None = None
    unavailable: str | None = None  # why describe() failed (no key material)


@dataclass(frozen=True, slots=True)
class TenantKeyFacts:
    key_store: str
    key_store_in_data_dir: bool
    epoch_seconds: int
    tenants: int  # tenants with a tenant key
    wrapped_by: Mapping[str, int]  # "master" / "kms" -> tenants
    epoch_keys: int
    offboarded: int = 0


@dataclass(frozen=True, slots=True)
class ChainFacts:
    chain: str
    entries: int
    first_pos: int
    head_pos: int
    tamper: str | None  # the first break, as audit verify words it


@dataclass(frozen=True, slots=True)
class AuditFacts:
    verified_at: datetime
    chains: tuple[ChainFacts, ...]
    retention_days: int


@dataclass(frozen=True, slots=True)
class RetentionFacts:
    """Policies in seconds by kind: ``by_environment`` for one tenant (scope tenant);
    ``longer_than_default`` names tenant/environment pairs (scope deployment)."""

    defaults: Mapping[str, int]
    test_ceiling_seconds: int
    by_environment: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    longer_than_default: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    key_overrides: int = 0


@dataclass(frozen=True, slots=True)
class ReaperFacts:
    interval_seconds: float
    overdue_jobs: int
    oldest_overdue_seconds: float | None
    scheduler_owner: str | None
    scheduler_lease_expires: datetime | None


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    id: str
    environment: str
    origin: str  # scheme://host[:port], no path or query (they may carry tokens)
    status: str

    @property
    def plain_http(self) -> bool:
        return self.origin.startswith("http://")


@dataclass(frozen=True, slots=True)
class WebhookFacts:
    allow_http: bool
    allow_cidrs: tuple[str, ...]
    endpoints: tuple[EndpointFacts, ...]


@dataclass(frozen=True, slots=True)
class Connection:
    """A place the service opens connections to, without credentials or paths."""

    kind: str  # database, blob store, key service, broker, webhook
    target: str


def origin(url: str) -> str:
    """``url`` as scheme://host[:port]: no credentials, path, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
