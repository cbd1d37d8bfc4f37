"""Standard Webhooks signatures (https://www.standardwebhooks.com), standard library only.

A secret is ``whsec_`` + base64 of 32 random bytes; the signature of a delivery is
``v1,`` + base64(HMAC-SHA256(secret, f"{webhook-id}.{webhook-timestamp}.{body}")), and
``webhook-signature`` holds one per secret in use, separated by spaces (two while a
rotated secret is in its grace period). Any Standard Webhooks verifier checks them;
receivers in Python may use ``ocrvault.client.verify_webhook``, which also refuses replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> bytes:
    """32 random bytes from the OS CSPRNG."""
    return secrets.token_bytes(SECRET_BYTES)


def encode_secret(secret: bytes) -> str:
    """The secret as shown (once) to its owner: ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(secret).decode("ascii")


def signature(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def headers(secrets_in_use: Iterable[bytes], message_id: str, timestamp: int,
            body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in use."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(secret, message_id, timestamp, body)
                                      for secret in secrets_in_use),
    }
