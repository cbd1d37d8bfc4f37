"""The one AEAD construction behind every ocrvault format: AES-256-GCM, framed strictly.

Every format is ``prefix || nonce || ciphertext || tag``. The prefix (magic, format
version, key version) and the nonce are authenticated as the first part of the AAD, and
the caller's context (tenant, job, kind) as the rest, so a header edit or a move to
another context fails the tag. Opening compares the blob's prefix with the one the
caller expects before decrypting, and turns every failure into the same
:class:`~ocrvault.errors.IntegrityError`: no oracle.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ocrvault.errors import IntegrityError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_VERSION = 2**32 - 1

_U32 = struct.Struct(">I")


def u32(value: int) -> bytes:
    """Big-endian unsigned 32-bit, the width of every version number in a header."""
    return _U32.pack(value)


def read_u32(data: bytes, offset: int) -> int:
    value: int = _U32.unpack_from(data, offset)[0]
    return value


def frame(*fields: str) -> bytes:
    """Length-prefix each field so that ("ab", "c") and ("a", "bc") never encode alike."""
    out = bytearray()
    for field in fields:
        raw = field.encode("utf-8")
        out += u32(len(raw)) + raw
    return bytes(out)


def seal(key: bytes, prefix: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt under a fresh random 96-bit nonce; return ``prefix || nonce || ct || tag``."""
    nonce = os.urandom(NONCE_BYTES)
    header = prefix + nonce
    return header + AESGCM(key).encrypt(nonce, plaintext, header + context)


def open_sealed(key: bytes, prefix: bytes, blob: bytes, context: bytes) -> bytes:
    """Authenticate and decrypt what :func:`seal` made; any failure is IntegrityError."""
    header_end = len(prefix) + NONCE_BYTES
    if len(blob) < header_end + TAG_BYTES or blob[: len(prefix)] != prefix:
        raise IntegrityError
    try:
        return AESGCM(key).decrypt(
            blob[len(prefix) : header_end], blob[header_end:], blob[:header_end] + context
        )
    except (InvalidTag, ValueError, TypeError, OverflowError):
        raise IntegrityError from None
