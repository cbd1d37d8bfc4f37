"""Sealing stored objects: AES-256-GCM under the job's data key, bound to where they belong.

A sealed blob is::

    b"OCV" | format 0x01 | DEK version (u32, big-endian) | nonce (12) | ciphertext | tag (16)

The AAD is the header followed by (tenant id, job id, object kind), so a blob copied
onto another job, tenant or kind, or opened as another DEK version, fails with
:class:`~ocrvault.errors.IntegrityError` instead of yielding another job's bytes.

Residual risks: the ciphertext length equals the plaintext length plus 36 bytes, so
sizes leak; Python cannot wipe ``bytes``, so a DEK and the plaintext stay in process
memory until the garbage collector reuses it. Random nonces are safe for far more than
the handful of objects one job's DEK ever seals (NIST's bound is 2**32 per key).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ocrvault.crypto import _aead
from ocrvault.errors import IntegrityError

DEK_BYTES = _aead.KEY_BYTES
_MAGIC = b"OCV"
_FORMAT = 1
_HEADER_BYTES = len(_MAGIC) + 1 + 4 + _aead.NONCE_BYTES


@dataclass(frozen=True, slots=True)
class ObjectContext:
    """Where a sealed object belongs; all of it is authenticated, none of it is secret.

    ``key_version`` is the version of the job's data key (DEK), starting at 1, and not
    the master key version: rotating the master key only rewraps the DEK, and binding
    blobs to the master version would force every blob to be re-encrypted on rotation.
    """

    tenant_id: str
    job_id: str
    kind: str
    key_version: int = 1

    def __post_init__(self) -> None:
        for name in ("tenant_id", "job_id", "kind"):
            value = getattr(self, name)
            if not value:
                raise ValueError(f"ObjectContext.{name} must not be empty")
            value.encode("utf-8")  # fail here, not half-way through sealing
        if not 1 <= self.key_version <= _aead.MAX_VERSION:
            raise ValueError("ObjectContext.key_version must be in 1..2**32-1")

    def _prefix(self) -> bytes:
        return _MAGIC + bytes([_FORMAT]) + _aead.u32(self.key_version)

    def _aad(self) -> bytes:
        return _aead.frame("ocrvault.object", self.tenant_id, self.job_id, self.kind)


def new_dek() -> bytes:
    """A fresh 256-bit data key from the OS CSPRNG, one per job."""
    return secrets.token_bytes(DEK_BYTES)


def seal(dek: bytes, plaintext: bytes, ctx: ObjectContext) -> bytes:
    """Encrypt ``plaintext`` under ``dek`` for the object ``ctx`` names."""
    if len(dek) != DEK_BYTES:
        raise ValueError("a data key is 32 bytes")
    return _aead.seal(dek, ctx._prefix(), plaintext, ctx._aad())


def open_sealed(dek: bytes, blob: bytes, ctx: ObjectContext) -> bytes:
    """Return the plaintext, or raise IntegrityError for any wrong key, context or byte."""
    return _aead.open_sealed(dek, ctx._prefix(), blob, ctx._aad())


def sealed_key_version(blob: bytes) -> int:
    """The DEK version a blob claims, so the store can fetch that key before opening.

    The claim is checked when the blob is opened; a malformed header is IntegrityError.
    """
    if len(blob) < _HEADER_BYTES + _aead.TAG_BYTES or blob[:4] != _MAGIC + bytes([_FORMAT]):
        raise IntegrityError
    return _aead.read_u32(blob, 4)
