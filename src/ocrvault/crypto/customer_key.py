"""Customer-held keys (SSE-C style): the caller sends a 256-bit key with each request.

The key arrives as base64 with the base64 SHA-256 of the key beside it, as in S3
SSE-C, so a key mangled in transit is refused before it wraps anything. It wraps the
job's DEK in place of the keyring; ocrvault never stores it, so without the caller's
key the job's data cannot be read, by ocrvault or by anyone holding its disks. The
store may keep :attr:`CustomerKey.sha256_b64` to tell a wrong key from a corrupt row.

A customer-wrapped DEK is::

    b"OCC" | format 0x01 | nonce (12) | ciphertext (32) | tag (16)

with (tenant id, job id) in the AAD; its magic differs from a keyring-wrapped DEK, so
neither can be passed off as the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ocrvault.crypto import _aead
from ocrvault.errors import ErrorCode, InputRejected, IntegrityError

_PREFIX = b"OCC\x01"
_WRAPPED_BYTES = len(_PREFIX) + _aead.NONCE_BYTES + _aead.KEY_BYTES + _aead.TAG_BYTES


class CustomerKey:
    """A validated 256-bit customer key. Its repr shows the fingerprint, never the key."""

    __slots__ = ("_key", "sha256_b64")

    def __init__(self, key: bytes) -> None:
        if len(key) != _aead.KEY_BYTES:
            raise ValueError("a customer key is 32 bytes")
        self._key = key
        self.sha256_b64 = base64.b64encode(hashlib.sha256(key).digest()).decode()

    def __repr__(self) -> str:
        return f"CustomerKey(sha256_b64={self.sha256_b64!r})"

    def matches(self, sha256_b64: str) -> bool:
        """Whether ``sha256_b64`` is this key's base64 SHA-256, compared in constant time."""
        digest = _b64decode(sha256_b64)
        return digest is not None and hmac.compare_digest(
            hashlib.sha256(self._key).digest(), digest
        )


def parse_customer_key(key_b64: str, key_sha256_b64: str) -> CustomerKey:
    """Decode and check a customer key; InputRejected (400) says what is wrong, not the key."""
    key = _b64decode(key_b64)
    if key is None:
        raise _rejected("the customer key is not valid base64")
    if len(key) != _aead.KEY_BYTES:
        raise _rejected("the customer key must be 256 bits (32 bytes) before base64")
    customer_key = CustomerKey(key)
    if not customer_key.matches(key_sha256_b64):
        raise _rejected("the customer key's SHA-256 does not match; send base64(SHA-256(key))")
    return customer_key


def wrap_dek_with_customer_key(dek: bytes, key: CustomerKey, tenant_id: str, job_id: str) -> bytes:
    """Wrap a job's DEK under the customer's key, bound to this tenant and job."""
    if len(dek) != _aead.KEY_BYTES:
        raise ValueError("a data key is 32 bytes")
    return _aead.seal(key._key, _PREFIX, dek, _aad(tenant_id, job_id))


def unwrap_dek_with_customer_key(
    wrapped: bytes, key: CustomerKey, tenant_id: str, job_id: str
) -> bytes:
    """The DEK, or IntegrityError for a wrong key, a wrong job or any bad byte."""
    if len(wrapped) != _WRAPPED_BYTES:
        raise IntegrityError
    return _aead.open_sealed(key._key, _PREFIX, wrapped, _aad(tenant_id, job_id))


def _aad(tenant_id: str, job_id: str) -> bytes:
    return _aead.frame("ocrvault.dek.customer", tenant_id, job_id)


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _rejected(detail: str) -> InputRejected:
    return InputRejected(ErrorCode.INVALID_PARAMETER, detail)
