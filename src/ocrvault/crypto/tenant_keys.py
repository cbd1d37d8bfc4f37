"""Per-tenant keys and epoch keys: the hierarchy between the master key and each job's DEK.

::

    master key (MasterKeyProvider: keyring, HSM or KMS) or the tenant's own KMS key
      └─ tenant key    one per tenant; wrapped under the above, context (tenant, purpose)
          └─ epoch key one per tenant and window of expiry time (``epoch_seconds``)
              └─ DEK   one per job; wrapped under the epoch key its data expires in
                  └─ sealed blobs (envelope.py)

Tenant and epoch keys live in the key store (keystore.py), never in the database. A job's
DEK goes under the epoch key of the window in which the job's last content expires, so
destroying that epoch key once the window has ended (and nothing under it lives longer)
makes the DEK in every copy of the database unreadable; destroying the tenant key does
the same for everything the tenant ever had (offboarding). The guarantee, exactly, is in
docs/security.md.

A wrapped DEK is::

    b"OCE" | 0x01 | epoch window (u32 BE) | nonce (12) | ciphertext (32) | tag (16)

with (tenant id, job id) in the AAD, so a wrapped DEK copied onto another job fails to
open. Older jobs keep the keyring's ``OCK`` format (keyring.py) and still open;
``ocrvault keys rewrap`` moves them under their tenant key.

Unwrapped tenant and epoch keys are cached in memory for ``cache_seconds``, but every use
first checks that the key is still in the store: offboarding and epoch destruction take
effect at once, in every process. A revoked KMS grant takes effect when the cached
tenant key expires (within ``cache_seconds``).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ocrvault.crypto import _aead
from ocrvault.crypto.keystore import DirectoryKeyStore
from ocrvault.crypto.master import MasterKeyProvider
from ocrvault.errors import ErrorCode, IntegrityError, ResourceError
from ocrvault.telemetry import metrics

_DEK_PREFIX = b"OCE\x01"
_EPOCH_PREFIX = b"OCW\x01"
_DEK_BYTES = len(_DEK_PREFIX) + 4 + _aead.NONCE_BYTES + _aead.KEY_BYTES + _aead.TAG_BYTES
_RECORD_FORMAT = "ocrvault-tenant-key/1"


class TenantOffboarded(ResourceError):
    """The tenant was offboarded: its keys are destroyed and no new one is made."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.TENANT_OFFBOARDED,
                         "This tenant was offboarded; its data is destroyed.")


@dataclass(frozen=True, slots=True)
class WrappedDek:
    wrapped: bytes
    epoch: int
    master_key_version: int | None  # None: under the tenant's own KMS key


@dataclass(frozen=True, slots=True)
class TenantKeyInfo:
    tenant_id: str
    wrapped_by: str  # "master" or "kms"
    kms_key_id: str | None
    master_key_version: int | None
    epochs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class KeyStoreCensus:
    """What the key store holds, in counts (``ocrvault keys status``)."""

    tenants: int
    own_kms: int  # of those, wrapped under the tenant's own KMS key
    epochs: int
    offboarded: int


def is_epoch_wrapped(wrapped: bytes) -> bool:
    """Whether a wrapped DEK is in this module's format (else the keyring's older one)."""
    return wrapped[:len(_DEK_PREFIX)] == _DEK_PREFIX


def epoch_of(wrapped: bytes) -> int:
    if len(wrapped) != _DEK_BYTES or not is_epoch_wrapped(wrapped):
        raise IntegrityError
    return _aead.read_u32(wrapped, len(_DEK_PREFIX))


class TenantKeys:
    def __init__(self, master: MasterKeyProvider, store: DirectoryKeyStore, *,
                 epoch_seconds: int = 86400, cache_seconds: float = 60.0,
                 tenant_kms: Callable[[str], MasterKeyProvider] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if epoch_seconds <= 0:
            raise ValueError("epoch_seconds must be positive")
        self.master = master
        self.store = store
        self.epoch_seconds = epoch_seconds
        self._cache_seconds = cache_seconds
        self._tenant_kms = tenant_kms
        self._kms: dict[str, MasterKeyProvider] = {}
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # One lock per entry being made: the first jobs of a tenant, submitted at once, make
        # its keys once between them (without it each would write and fsync a copy that
        # loses the race in the store), while another tenant's keys, wrapped perhaps by a
        # slow KMS call, are made beside them.
        self._making: dict[str, threading.Lock] = {}
        self._cache: dict[tuple[str, bytes], tuple[float, bytes]] = {}

    # -- DEKs ------------------------------------------------------------------------------

    def epoch_for(self, expires_at: datetime) -> int:
        """The window in which ``expires_at`` falls."""
        return int(expires_at.astimezone(UTC).timestamp()) // self.epoch_seconds

    def epoch_end(self, epoch: int) -> datetime:
        return datetime.fromtimestamp((epoch + 1) * self.epoch_seconds, UTC)

    def wrap_dek(self, dek: bytes, tenant_id: str, job_id: str,
                 expires_at: datetime) -> WrappedDek:
        """Wrap a job's DEK under the epoch key of ``expires_at`` (the latest moment any of
        the job's content may live), making the tenant and epoch keys if need be. Raises
        TenantOffboarded, and the master provider's errors."""
        if len(dek) != _aead.KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        epoch = self.epoch_for(expires_at)
        tenant_key, version = self._tenant_key(tenant_id, create=True)
        epoch_key = self._epoch_key(tenant_id, epoch, tenant_key, create=True)
        wrapped = _aead.seal(epoch_key, _DEK_PREFIX + _aead.u32(epoch), dek,
                             _dek_aad(tenant_id, job_id))
        return WrappedDek(wrapped, epoch, version)

    def unwrap_dek(self, wrapped: bytes, tenant_id: str, job_id: str) -> bytes:
        """The DEK; IntegrityError once its epoch key or tenant key is destroyed, or for any
        bad byte or other job; TenantOffboarded; the provider's errors."""
        epoch = epoch_of(wrapped)
        tenant_key, _ = self._tenant_key(tenant_id, create=False)
        epoch_key = self._epoch_key(tenant_id, epoch, tenant_key, create=False)
        return _aead.open_sealed(epoch_key, wrapped[:len(_DEK_PREFIX) + 4], wrapped,
                                 _dek_aad(tenant_id, job_id))

    # -- tenants ---------------------------------------------------------------------------

    def info(self, tenant_id: str) -> TenantKeyInfo | None:
        raw = self.store.get(_tenant_name(tenant_id))
        if raw is None:
            return None
        record = _record(raw)
        return TenantKeyInfo(tenant_id, record.wrapped_by, record.kms_key_id,
                             record.master_key_version, tuple(self.epochs(tenant_id)))

    def tenants(self) -> list[str]:
        return [name.split("/")[1] for name in self._tenant_folders()]

    def census(self) -> KeyStoreCensus:
        """Counts read from the store alone: no call to the master provider."""
        infos = [info for info in map(self.info, self.tenants()) if info is not None]
        root = self.store.root / "tenants"
        return KeyStoreCensus(len(infos), sum(info.wrapped_by == "kms" for info in infos),
                              sum(len(info.epochs) for info in infos),
                              sum(1 for _ in root.glob("*/offboarded")) if root.is_dir() else 0)

    def use_kms_key(self, tenant_id: str, kms_key_id: str | None) -> int | None:
        """Wrap the tenant key under the tenant's own KMS key (None: back under the master
        key); returns the master key version it is now under (None for a KMS key)."""
        tenant_key, _ = self._tenant_key(tenant_id, create=True)
        record = self._seal_tenant_key(tenant_id, tenant_key, kms_key_id)
        self.store.replace(_tenant_name(tenant_id), record)
        version: int | None = json.loads(record)["master_key_version"]
        return version

    def offboard(self, tenant_id: str) -> int:
        """Destroy the tenant key and every epoch key of ``tenant_id``, for good, and refuse
        to make new ones; returns how many keys were destroyed."""
        self.store.create(f"tenants/{tenant_id}/offboarded", b"offboarded\n")
        destroyed = sum(self.store.delete(name)
                        for name in self.store.names(f"tenants/{tenant_id}/epochs"))
        destroyed += self.store.delete(_tenant_name(tenant_id))
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != tenant_id}
        return destroyed

    def is_offboarded(self, tenant_id: str) -> bool:
        return self.store.get(f"tenants/{tenant_id}/offboarded") is not None

    def rewrap_tenant_keys(self) -> dict[str, int]:
        """Rewrap every tenant key under the master's primary version (those under a
        tenant's own KMS key stay there); returns {tenant id: master version} for each."""
        primary = self.master.describe().version
        done: dict[str, int] = {}
        for tenant_id in self.tenants():
            raw = self.store.get(_tenant_name(tenant_id))
            if raw is None or _record(raw).wrapped_by != "master":
                continue
            if _record(raw).master_key_version != primary:
                tenant_key, _ = self._tenant_key(tenant_id, create=False)
                self.store.replace(_tenant_name(tenant_id),
                                   self._seal_tenant_key(tenant_id, tenant_key, None))
            done[tenant_id] = primary
        return done

    def master_versions_in_use(self) -> set[int]:
        versions = set()
        for tenant_id in self.tenants():
            raw = self.store.get(_tenant_name(tenant_id))
            version = None if raw is None else _record(raw).master_key_version
            if version is not None:
                versions.add(version)
        return versions

    # -- epochs ----------------------------------------------------------------------------

    def epochs(self, tenant_id: str) -> list[int]:
        return sorted(int(name.rsplit("/", 1)[1])
                      for name in self.store.names(f"tenants/{tenant_id}/epochs"))

    def destroy_epoch(self, tenant_id: str, epoch: int) -> bool:
        """Destroy one epoch key: every DEK under it, in any copy, is unreadable."""
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items()
                           if k[0] != f"{tenant_id}/{epoch}"}
        return self.store.delete(_epoch_name(tenant_id, epoch))

    # -- inside ----------------------------------------------------------------------------

    def _tenant_folders(self) -> list[str]:
        root = self.store.root / "tenants"
        if not root.is_dir():
            return []
        return sorted(f"tenants/{entry.name}" for entry in root.iterdir() if entry.is_dir()
                      and (entry / "tenant-key").exists())

    def _tenant_key(self, tenant_id: str, *, create: bool) -> tuple[bytes, int | None]:
        name = _tenant_name(tenant_id)
        raw = self.store.get(name)
        if raw is None:
            if self.is_offboarded(tenant_id):
                raise TenantOffboarded
            if not create:
                raise IntegrityError("the tenant's key has been destroyed")
            raw = self._made(name, lambda: self._seal_tenant_key(
                tenant_id, secrets.token_bytes(_aead.KEY_BYTES), None))
        record = _record(raw)
        key = self._cached((tenant_id, raw))
        if key is None:
            wrapper = self._wrapper(record.kms_key_id)
            with metrics.key_provider_call(wrapper.name, "unwrap"):
                key = wrapper.unwrap(record.wrapped, _tenant_context(tenant_id))
            self._remember((tenant_id, raw), key)
        return key, record.master_key_version

    def _epoch_key(self, tenant_id: str, epoch: int, tenant_key: bytes, *,
                   create: bool) -> bytes:
        name = _epoch_name(tenant_id, epoch)
        raw = self.store.get(name)
        if raw is None:
            if not create:
                raise IntegrityError("the data's epoch key has been destroyed")
            raw = self._made(name, lambda: _aead.seal(
                tenant_key, _EPOCH_PREFIX + _aead.u32(epoch),
                secrets.token_bytes(_aead.KEY_BYTES), _epoch_aad(tenant_id)))
        cache_key = (f"{tenant_id}/{epoch}", raw)
        key = self._cached(cache_key)
        if key is None:
            key = _aead.open_sealed(tenant_key, _EPOCH_PREFIX + _aead.u32(epoch), raw,
                                    _epoch_aad(tenant_id))
            self._remember(cache_key, key)
        return key

    def _wrapper(self, kms_key_id: str | None) -> MasterKeyProvider:
        """The master provider, or the tenant's own KMS key ``kms_key_id``."""
        if kms_key_id is None:
            return self.master
        key_id = kms_key_id
        if self._tenant_kms is None:
            raise IntegrityError("this tenant's key is under its own KMS key, which this "
                                 "deployment is not configured to reach")
        if key_id not in self._kms:
            self._kms[key_id] = self._tenant_kms(key_id)
        return self._kms[key_id]

    def _seal_tenant_key(self, tenant_id: str, tenant_key: bytes,
                         kms_key_id: str | None) -> bytes:
        record: dict[str, object] = {"format": _RECORD_FORMAT}
        if kms_key_id is None:
            record.update(wrapped_by="master")
        else:
            record.update(wrapped_by="kms", kms_key_id=kms_key_id)
        wrapper = self._wrapper(kms_key_id)
        with metrics.key_provider_call(wrapper.name, "wrap"):
            wrapped = wrapper.wrap(tenant_key, _tenant_context(tenant_id))
        record.update(wrapped=base64.b64encode(wrapped).decode(),
                      master_key_version=wrapper.version_of(wrapped)
                      if kms_key_id is None else None)
        return json.dumps(record, sort_keys=True).encode()

    def _made(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The entry ``name``, made with ``make`` unless a thread here or another process
        made it first."""
        with self._lock:
            making = self._making.setdefault(name, threading.Lock())
        try:
            with making:
                raw = self.store.get(name)
                return raw if raw is not None else self.store.create(name, make())
        finally:
            with self._lock:  # whoever comes later finds the entry in the store
                self._making.pop(name, None)

    def _cached(self, key: tuple[str, bytes]) -> bytes | None:
        with self._lock:
            hit = self._cache.get(key)
        if hit is None or self._monotonic() - hit[0] > self._cache_seconds:
            return None
        return hit[1]

    def _remember(self, key: tuple[str, bytes], value: bytes) -> None:
        if self._cache_seconds > 0:
            with self._lock:
                self._cache[key] = (self._monotonic(), value)


@dataclass(frozen=True, slots=True)
class _Record:
    wrapped_by: str
    kms_key_id: str | None
    master_key_version: int | None
    wrapped: bytes


def _record(raw: bytes) -> _Record:
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != _RECORD_FORMAT:
            raise ValueError
        version = doc.get("master_key_version")
        return _Record(str(doc["wrapped_by"]), doc.get("kms_key_id"),
                       None if version is None else int(version),
                       base64.b64decode(doc["wrapped"], validate=True))
    except (ValueError, KeyError, TypeError):
        raise IntegrityError("a tenant key record is damaged") from None


def _tenant_name(tenant_id: str) -> str:
    return f"tenants/{tenant_id}/tenant-key"


def _epoch_name(tenant_id: str, epoch: int) -> str:
    return f"tenants/{tenant_id}/epochs/{epoch}"


def _tenant_context(tenant_id: str) -> dict[str, str]:
    return {"ocrvault:tenant": tenant_id, "ocrvault:purpose": "tenant-key"}


def _epoch_aad(tenant_id: str) -> bytes:
    return _aead.frame("ocrvault.epoch", tenant_id)


def _dek_aad(tenant_id: str, job_id: str) -> bytes:
    return _aead.frame("ocrvault.dek.epoch", tenant_id, job_id)
