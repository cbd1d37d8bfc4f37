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

Retirement keeps verification, not decryption. MACs (the audit chain's signatures) are
made under a key derived per purpose from the master key, and tags name their master
version, so a log signed over years holds tags of many versions. Retiring a version
therefore keeps its derived MAC keys, one per :class:`MacPurpose`, and drops the master
key: HKDF is one-way, so the kept keys yield neither the master key nor the wrapping key
derived beside them, and every DEK still wrapped under the version becomes unreadable
while every tag made under it still verifies. New tags are only ever made under the
primary. (Re-signing the chain under the new version with a signed hand-over would
also work, but would rewrite history-bearing rows and trust the re-signer at that point.)

Crypto-shredding: deleting a job's wrapped DEK makes every copy of its blobs, backups
included, unreadable; there is no separate ``shred`` call. Retiring a master version
shreds every DEK still wrapped under it, which is why the store must count first.

Residual risks: random wrap nonces stay safe for 2**32 wraps per master version (one
per job, plus rewraps), so rotate long before that; a process that loaded the keyring
before a retirement keeps the retired key in memory until it restarts; a retired
version's kept MAC keys could forge tags under that version, which the live key could
do for its own anyway; and a keyring from ``OCRVAULT_MASTER_KEY`` keeps nothing of a
version removed from the variable, so tags made under it no longer verify.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
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
# Keys wrapped for the master-key provider (tenant keys): their own derived key and magic,
# so a wrapped tenant key can never pass for a wrapped DEK, nor the reverse.
_KEY_MAGIC = b"OCM"
_KEY_WRAP_INFO = b"ocrvault/v1/wrap-key"
_MAC_INFO = b"ocrvault/v1/mac/"


class MacPurpose(StrEnum):
    """What a MAC signs; each has its own derived key. Closed, so that retiring a master
    version can keep the verification key of every purpose (:meth:`Keyring.retire`)."""

    AUDIT_CHAIN = "audit-chain"
    RESULT_LINK = "result-link"  # short-lived result URLs (ABBYY's resultUrl)


@runtime_checkable
class DekWrapper(Protocol):
    """What the store needs from whatever holds the master keys.

    :class:`Keyring` implements it with local keys, for DEKs wrapped before tenant keys.
    An HSM or a KMS, which never hands out key material, is a
    :class:`ocrvault.crypto.master.MasterKeyProvider` instead: it wraps tenant keys, and
    DEKs go under those (``tenant_keys.py``).
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

    def wrap_key(self, key: bytes, context_aad: bytes) -> bytes:
        """Wrap a 32-byte key (a tenant key) under the primary, bound to ``context_aad``:
        ``b"OCM" | 0x01 | version (u32) | nonce | ciphertext | tag``."""
        self.reload()
        state = self._state
        return _aead.seal(_derive(state.keys[state.primary], _KEY_WRAP_INFO),
                          _key_prefix(state.primary), key, context_aad)

    def unwrap_key(self, wrapped: bytes, context_aad: bytes) -> bytes:
        """What :meth:`wrap_key` wrapped; IntegrityError for any other context, a retired
        version or any bad byte."""
        master = self._master_key(self.key_version_of(wrapped))
        if master is None:
            raise IntegrityError
        return _aead.open_sealed(_derive(master, _KEY_WRAP_INFO),
                                 wrapped[:len(_key_prefix(0))], wrapped, context_aad)

    def key_version_of(self, wrapped: bytes) -> int:
        """The master version a key wrapped by :meth:`wrap_key` needs (header only)."""
        if len(wrapped) != _WRAPPED_BYTES or wrapped[:4] != _KEY_MAGIC + bytes([_FORMAT]):
            raise IntegrityError
        return _aead.read_u32(wrapped, 4)

    def rotate(self) -> int:
        """Add a new random master version, make it the primary, store it, return it."""
        self._state = self._provider.update(KeyringState.rotated)
        return self._state.primary

    def check_retirable(self, version: int) -> None:
        """Raise ``InputRejected`` if ``version`` is the primary or not a live version."""
        self.reload()
        self._state.check_retirable(version)

    def retire(self, version: int) -> None:
        """Remove ``version``'s master key for good, keeping only its MAC keys so that its
        tags still verify. Refuses the primary and unknown versions (``InputRejected``); the
        caller checks that no wrapped DEK still needs it (see :meth:`version_of`)."""

        def change(state: KeyringState) -> KeyringState:
            state.check_retirable(version)
            master = state.keys[version]
            return state.retired_with(version, {p.value: _mac_key(master, p) for p in MacPurpose})

        self._state = self._provider.update(change)

    def mac(self, purpose: MacPurpose, data: bytes) -> tuple[int, bytes]:
        """HMAC-SHA256 of ``data`` under a key derived for ``purpose`` from the primary.

        Returns (master version, tag); store both: the tag verifies after a rotation, and
        after that version's retirement too.
        """
        self.reload()
        state = self._state
        return state.primary, _hmac(_mac_key(state.keys[state.primary], purpose), data)

    def verify_mac(self, purpose: MacPurpose, data: bytes, version: int, tag: bytes) -> bool:
        """Whether ``tag`` is :meth:`mac`'s tag for ``data``; compared in constant time."""
        key = self._verification_key(MacPurpose(purpose), version)
        return key is not None and hmac.compare_digest(_hmac(key, data), tag)

    def _verification_key(self, purpose: MacPurpose, version: int) -> bytes | None:
        for attempt in range(2):
            if attempt:  # maybe another process rotated or retired since we loaded
                self.reload()
            master = self._state.keys.get(version)
            if master is not None:
                return _mac_key(master, purpose)
            kept = self._state.retired.get(version, {}).get(purpose.value)
            if kept is not None:
                return kept
        return None

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


def _key_prefix(version: int) -> bytes:
    return _KEY_MAGIC + bytes([_FORMAT]) + _aead.u32(version)


def _wrap_aad(tenant_id: str, job_id: str) -> bytes:
    return _aead.frame("ocrvault.dek", tenant_id, job_id)


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=_aead.KEY_BYTES, salt=None, info=info).derive(
        master
    )


def _mac_key(master: bytes, purpose: MacPurpose) -> bytes:
    return _derive(master, _MAC_INFO + MacPurpose(purpose).value.encode("utf-8"))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()
