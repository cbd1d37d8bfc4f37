"""Where the master key lives: one interface, three providers, chosen by a setting.

A :class:`MasterKeyProvider` wraps small keys (tenant keys, see ``tenant_keys.py``)
under a master key it holds and never hands out, bound to a context (tenant, purpose,
job...) the way AWS KMS binds an encryption context: unwrapping under any other context
fails. ``OCRVAULT_KEY_PROVIDER`` picks one:

- ``keyring`` (default): the versioned keyring file or ``OCRVAULT_MASTER_KEY``
  (``master_keyring.py``); the embedded shape, keys in the same trust domain as the data.
- ``pkcs11``: an AES key generated inside an HSM, non-extractable, used through PKCS#11
  (``master_pkcs11.py``; SoftHSM2 in the tests).
- ``aws-kms``: an AWS KMS key through boto3 (``master_kms.py``; moto's server in the tests).

What each method raises is part of the contract (tests/contract/test_master_key_provider.py):

- :class:`KeyServiceUnavailable` (503 ``key_service_unavailable`` with Retry-After): the
  provider cannot be reached or did not answer (HSM unplugged, token absent, KMS
  unreachable or throttling). Nothing is wrapped under anything weaker instead: the
  caller fails the request, and ``/readyz`` reports the provider failing.
- :class:`KeyAccessDenied` (403 ``key_access_denied``): the provider answers but refuses
  this key (a disabled KMS key, a revoked grant or policy): retrying will not help until
  its owner gives access back.
- :class:`~ocrvault.errors.IntegrityError`: the wrapped bytes are not this provider's,
  were altered, or belong to another context. One error for every cause: no oracle.
- ``ValueError``: a programming error (a key that is not 32 bytes, an empty context).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ocrvault.config import Settings
from ocrvault.crypto import _aead
from ocrvault.crypto.keyring import Keyring
from ocrvault.errors import ErrorCode, OcrVaultError, Unavailable

if TYPE_CHECKING:
    from ocrvault.crypto.tenant_keys import TenantKeys

RETRY_AFTER_SECONDS = 5

KeyContext = Mapping[str, str]


class KeyServiceUnavailable(Unavailable):
    """The master-key provider cannot serve now; the same request may succeed later.

    ``cause`` is for the operator's log (no key material); the client sees only the code."""

    def __init__(self, provider: str, cause: str) -> None:
        super().__init__(ErrorCode.KEY_SERVICE_UNAVAILABLE,
                         "The key service is unavailable; try again later.", RETRY_AFTER_SECONDS)
        self.provider = provider
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.code}: {self.provider}: {self.cause}"


class KeyAccessDenied(OcrVaultError):
    """The provider refuses this key: disabled, revoked, or no longer granted to ocrvault."""

    def __init__(self, provider: str, cause: str) -> None:
        super().__init__(ErrorCode.KEY_ACCESS_DENIED,
                         "The key that protects this data refuses access; its owner has "
                         "disabled it or revoked ocrvault's access.")
        self.provider = provider
        self.cause = cause


@dataclass(frozen=True, slots=True)
class ProviderDescription:
    """What an operator (``ocrvault keys status``) and /readyz may see: never key material."""

    provider: str
    key_id: str
    version: int
    details: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class MasterKeyProvider(Protocol):
    """Wraps keys under a master key it keeps; see the module docstring for the errors."""

    name: str

    def wrap(self, key: bytes, context: KeyContext) -> bytes:
        """``key`` (32 bytes) wrapped under the primary master key version, bound to
        ``context``. Raises KeyServiceUnavailable, KeyAccessDenied, ValueError."""
        ...

    def unwrap(self, wrapped: bytes, context: KeyContext) -> bytes:
        """The key :meth:`wrap` wrapped under ``context``. Raises IntegrityError (wrong
        context, altered or foreign bytes, a retired version), KeyServiceUnavailable,
        KeyAccessDenied."""
        ...

    def version_of(self, wrapped: bytes) -> int:
        """The master key version ``wrapped`` needs (from its header; no call to the
        provider). IntegrityError for bytes that are not this provider's."""
        ...

    def rotate(self) -> int:
        """Make a new master key version the primary for new wraps and return it; what
        was wrapped before still unwraps. Raises KeyServiceUnavailable."""
        ...

    def describe(self) -> ProviderDescription:
        """Which key, which primary version, asked of the provider itself (so it doubles
        as the readiness probe). Raises KeyServiceUnavailable, KeyAccessDenied."""
        ...


def check_wrap_args(key: bytes, context: KeyContext) -> None:
    if len(key) != _aead.KEY_BYTES:
        raise ValueError("a wrapped key is 32 bytes")
    if not context:
        raise ValueError("a key is always wrapped under a context")


def context_aad(context: KeyContext) -> bytes:
    """The context as AAD, in a canonical order: the same mapping always frames alike."""
    return _aead.frame("ocrvault.master", *(part for name in sorted(context)
                                            for part in (name, context[name])))


def open_master_keys(settings: Settings, keyring: Keyring) -> MasterKeyProvider:
    """The provider ``settings.key_provider`` names. Opens no connection: a provider that
    is down at start-up shows on /readyz and fails requests with 503, not the start."""
    if settings.key_provider == "pkcs11":
        from ocrvault.crypto.master_pkcs11 import Pkcs11MasterKeys

        assert settings.pkcs11_library and settings.pkcs11_token_label and settings.pkcs11_pin
        return Pkcs11MasterKeys(settings.pkcs11_library, settings.pkcs11_token_label,
                                settings.pkcs11_pin, settings.pkcs11_key_label)
    if settings.key_provider == "aws-kms":
        return open_kms(settings, settings.kms_key_id or "")
    from ocrvault.crypto.master_keyring import KeyringMasterKeys

    source = "OCRVAULT_MASTER_KEY" if settings.master_key is not None else str(
        settings.keyring_path)
    return KeyringMasterKeys(keyring, source)


def open_kms(settings: Settings, key_id: str) -> MasterKeyProvider:
    """An AWS KMS key on the settings' endpoint: the deployment's, or a tenant's own."""
    from ocrvault.crypto.master_kms import AwsKmsMasterKeys

    return AwsKmsMasterKeys(key_id, region=settings.kms_region,
                            endpoint_url=settings.kms_endpoint_url,
                            connect_timeout=settings.kms_connect_timeout_seconds,
                            read_timeout=settings.kms_read_timeout_seconds,
                            max_attempts=settings.kms_max_attempts)


def open_tenant_keys(settings: Settings, keyring: Keyring) -> TenantKeys:
    """Tenant and epoch keys in the settings' key store, under the settings' provider;
    tenants' own KMS keys are reached on the settings' KMS endpoint."""
    from ocrvault.crypto.keystore import DirectoryKeyStore
    from ocrvault.crypto.tenant_keys import TenantKeys

    return TenantKeys(open_master_keys(settings, keyring),
                      DirectoryKeyStore(settings.resolved_key_store_dir),
                      epoch_seconds=settings.epoch_seconds,
                      cache_seconds=settings.tenant_key_cache_seconds,
                      tenant_kms=lambda key_id: open_kms(settings, key_id))
