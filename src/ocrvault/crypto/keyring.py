"""Versioned master keys that wrap each job's data key, as in Vault transit or AWS KMS.

A wrapped DEK is::

    b"OCK" | format 0x01 | master version (u32 BE) | nonce (12) | ciphertext (32) | tag (16)

and its AAD binds it to (tenant id, job id) and, through the header, to the master
version: a wrapped DEK copied onto another job row fails to unwrap. Each master key is
used only as HKDF input: one derived key wraps DEKs, and one per purpose keys
:meth:`Keyring.mac`, so no key ever serves two algorithms.

Rotation, as in MultiFernet: :meth:`Keyring.rotate` adds a primary for new wraps, the
store calls :meth:`Keyring.rewrap` on every wrapped DEK whose :meth:`Keyring.version_of`
is old, then :meth:`Keyring.retire` drops the old version once none needs it. Blobs are
never touched: they are bound to the DEK version, not the master version.

Crypto-shredding: deleting a job's wrapped DEK makes every copy of its blobs, backups
included, unreadable; there is no separate ``shred`` call. Retiring a master version
shreds every DEK still wrapped under it, which is why the store must count first.

Residual risks: random wrap nonces stay safe for 2**32 wraps per master version (one
per job, plus rewraps), so rotate long before that; a process that loaded the keyring
before a retirement keeps the retired key in memory until it restarts.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ocrvault.config import Settings
from ocrvault.crypto import _aead
from ocrvault.crypto.providers import (
    EnvKeyringProvider,
    FileKeyringProvider,
    KeyringProvider,
    KeyringState,
)
from ocrvault.errors import IntegrityError

_MAGIC = b"OCK"
_FORMAT = 1
_WRAPPED_BYTES = len(_MAGIC) + 1 + 4 + _aead.NONCE_BYTES + _aead.KEY_BYTES + _aead.TAG_BYTES
_WRAP_INFO = b"ocrvault/v1/wrap"
_MAC_INFO = b"ocrvault/v1/mac/"


@runtime_checkable
class DekWrapper(Protocol):
    """What the store needs from whatever holds the master keys.

    :class:`Keyring` implements it with local keys. An external KMS (Vault transit,
    AWS KMS, GCP KMS) plugs in here rather than as a :class:`KeyringProvider`, because it
    never hands out key material: ``wrap_dek`` calls the KMS's Encrypt with
    (tenant id, job id) as the encryption context / AAD and returns the KMS ciphertext
    with the key version it reports; ``unwrap_dek`` calls Decrypt with the same context
    and raises IntegrityError on any failure; ``rewrap`` maps to the KMS's rewrap.
    Rotation and retirement then happen in the KMS itself.
    """

    def wrap_dek(self, dek: bytes, tenant_id: str, job_id: str) -> bytes: ...

    def unwrap_dek(self, wrapped: bytes, tenant_id: str, job_id: str) -> bytes: ...

    def rewrap(self, wrapped: bytes, tenant_id: str, job_id: str) -> bytes: ...

    def version_of(self, wrapped: bytes) -> int: ...


class Keyring:
    """Master keys from a :class:`KeyringProvider`; wraps DEKs and keys MACs.

    The provider is the source of truth. Wrapping and MACs re-load it first, so a
    rotation or retirement made by another process (the CLI) takes effect at once and
    nothing new is wrapped under a retired version; unwrapping re-loads only when it
    meets a version it does not know. Safe to share between threads.
    """

    def __init__(self, provider: KeyringProvider) -> None:
        self._provider = provider
        self._state = provider.load()

    def __repr__(self) -> str:
        return f"Keyring(versions={self.versions}, primary={self.primary})"

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._state.keys))

    @property
    def primary(self) -> int:
        return self._state.primary

    def reload(self) -> None:
        self._state = self._provider.load()

    def wrap_dek(self, dek: bytes, tenant_id: str, job_id: str) -> bytes:
        """Wrap a job's DEK under the primary master key, bound to this tenant and job."""
        if len(dek) != _aead.KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self.reload()
        state = self._state
        return _aead.seal(
            _derive(state.keys[state.primary], _WRAP_INFO),
            _wrap_prefix(state.primary),
            dek,
            _wrap_aad(tenant_id, job_id),
        )

    def unwrap_dek(self, wrapped: bytes, tenant_id: str, job_id: str) -> bytes:
        """The DEK, or IntegrityError for a wrong job, a retired version or any bad byte."""
        version = self.version_of(wrapped)
        master = self._master_key(version)
        if master is None:
            raise IntegrityError
        return _aead.open_sealed(
            _derive(master, _WRAP_INFO),
            _wrap_prefix(version),
            wrapped,
            _wrap_aad(tenant_id, job_id),
        )

    def rewrap(self, wrapped: bytes, tenant_id: str, job_id: str) -> bytes:
        """The same DEK wrapped under the current primary; the blobs stay as they are."""
        return self.wrap_dek(self.unwrap_dek(wrapped, tenant_id, job_id), tenant_id, job_id)

    def version_of(self, wrapped: bytes) -> int:
        """The master version a wrapped DEK needs, so the store can count before retiring.

        Reads the header only; a malformed one is IntegrityError.
        """
        if len(wrapped) != _WRAPPED_BYTES or wrapped[:4] != _MAGIC + bytes([_FORMAT]):
            raise IntegrityError
        return _aead.read_u32(wrapped, 4)

    def rotate(self) -> int:
        """Add a new random master version, make it the primary, store it, return it."""
        self._state = self._provider.update(KeyringState.rotated)
        return self._state.primary

    def retire(self, version: int) -> None:
        """Remove ``version`` for good. Refuses the primary; the caller checks that no
        wrapped DEK still needs it (see :meth:`version_of`)."""
        self._state = self._provider.update(lambda state: state.retired(version))

    def mac(self, purpose: str, data: bytes) -> tuple[int, bytes]:
        """HMAC-SHA256 of ``data`` under a key derived for ``purpose`` from the primary.

        Returns (master version, tag); store both so the tag still verifies after a
        rotation, until that version is retired.
        """
        self.reload()
        state = self._state
        return state.primary, _mac(state.keys[state.primary], purpose, data)

    def verify_mac(self, purpose: str, data: bytes, version: int, tag: bytes) -> bool:
        """Whether ``tag`` is :meth:`mac`'s tag for ``data``; compared in constant time."""
        master = self._master_key(version)
        return master is not None and hmac.compare_digest(_mac(master, purpose, data), tag)

    def _master_key(self, version: int) -> bytes | None:
        key = self._state.keys.get(version)
        if key is None:  # maybe another process rotated since we loaded
            self.reload()
            key = self._state.keys.get(version)
        return key


def load_keyring(settings: Settings) -> Keyring:
    """The keyring the settings name: ``master_key`` if set, else the ``keyring_path`` file."""
    if settings.master_key is not None:
        return Keyring(EnvKeyringProvider(settings.master_key))
    return Keyring(FileKeyringProvider(settings.keyring_path))


def _wrap_prefix(version: int) -> bytes:
    return _MAGIC + bytes([_FORMAT]) + _aead.u32(version)


def _wrap_aad(tenant_id: str, job_id: str) -> bytes:
    return _aead.frame("ocrvault.dek", tenant_id, job_id)


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=_aead.KEY_BYTES, salt=None, info=info).derive(
        master
    )


def _mac(master: bytes, purpose: str, data: bytes) -> bytes:
    if not purpose:
        raise ValueError("a MAC purpose label must not be empty")
    key = _derive(master, _MAC_INFO + purpose.encode("utf-8"))
    return hmac.new(key, data, hashlib.sha256).digest()
