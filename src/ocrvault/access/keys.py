"""The API key format: recognisable, self-checking, and stored only as a digest.

``ocv_<env>_<secret><check>``, or ``ocv_<env>_<region>_<secret><check>`` on a deployment
with a region (``OCRVAULT_REGION``): ``env`` is ``live`` or ``test``; ``region`` names the
tenant's home region, so that a node of another region can send the caller there (421)
without a lookup and before reading the body; ``secret`` is 30
base62 characters (178 random bits); ``check`` is the CRC32 of everything before
it as 6 base62 characters. The prefix lets secret scanners find leaked keys and
the checksum lets them (and us) reject a mistyped key offline, without a lookup,
in the manner of GitHub's token format.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib
from dataclasses import dataclass

from ocrvault.environments import Environment

BASE62 = string.digits + string.ascii_letters
SECRET_CHARS = 30
CHECK_CHARS = 6
PREFIX = "ocv"
# Anything that looks like a key, well-formed or not: what log redaction removes.
KEY_PATTERN = re.compile(r"ocv_(?:live|test)_(?:[a-z0-9-]+_)?[0-9A-Za-z]+")
REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECK_CHARS)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    environment: Environment
    digest: str
    region: str | None = None


def generate_key(environment: Environment, region: str | None = None) -> str:
    secret = "".join(secrets.choice(BASE62) for _ in range(SECRET_CHARS))
    where = f"{region}_" if region else ""
    body = f"{PREFIX}_{environment.value}_{where}{secret}"
    return body + _checksum(body)


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key(key: str) -> ParsedKey | None:
    """The key's environment and digest, or None when it is not a well-formed key."""
    parts = key.split("_")
    if len(parts) not in (3, 4) or parts[0] != PREFIX or \
            parts[1] not in Environment.__members__.values():
        return None
    region = parts[2] if len(parts) == 4 else None
    if region is not None and not REGION.fullmatch(region):
        return None
    tail = parts[-1]
    if len(tail) != SECRET_CHARS + CHECK_CHARS or any(c not in BASE62 for c in tail):
        return None
    body, check = key[:-CHECK_CHARS], key[-CHECK_CHARS:]
    if not secrets.compare_digest(_checksum(body), check):
        return None
    return ParsedKey(environment=Environment(parts[1]), digest=digest_of(key), region=region)


def hint_of(key: str) -> str:
    """What may be shown later to tell keys apart: the prefix and the last four."""
    return f"{key[: len(PREFIX) + 6]}...{key[-4:]}"
