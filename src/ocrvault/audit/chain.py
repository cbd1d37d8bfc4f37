"""The chain's canonical form, hashes and signatures.

Canonical form of an entry: the JSON object of :data:`FIELDS` with keys sorted, no
insignificant whitespace, UTF-8 with non-ASCII characters as they are. Every value is
a string, an integer or null (times are UTC ISO 8601 with microseconds and ``Z``), so
this is also the RFC 8785 (JCS) form and any JCS library reproduces the bytes.

An entry's hash is the hex SHA-256 of its canonical form. Each entry stores the hash
of the entry before it in ``prev_hash`` (:data:`GENESIS` for the first, or the
retention checkpoint's hash after a cut), so changing, removing or inserting one
breaks a link. Anyone can check the links from an export; the signatures below need
the keyring. Each entry, the chain head (the last entry's seq and hash) and the
checkpoint are HMAC-signed with ``keyring.mac(MacPurpose.AUDIT_CHAIN, ...)`` over
labelled messages, so a rewrite that recomputes every hash is still caught, at the first
entry it touched, and a cut-off tail is caught by the signed head. Each tag names the
master version it was made under; retiring that version keeps its audit MAC key (and
nothing that decrypts), so the log verifies across rotations and retirements.

Residual risks: someone who can write the database *and* restores an older,
genuinely signed head together with the rows up to it (a rollback to a backup) is
not detected here; export the log regularly to where the host cannot write, and
compare heads. Wiping the log back to the fresh, unsigned empty chain looks like a
fresh install.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from ocrvault.crypto import Keyring, MacPurpose
from ocrvault.store.tables import AuditEntryRow

GENESIS = "0" * 64
MAC_PURPOSE = MacPurpose.AUDIT_CHAIN
FIELDS = ("seq", "id", "at", "tenant_id", "environment", "actor_key_id", "actor_name",
          "action", "target_id", "client_ip", "request_id", "outcome", "reason", "detail",
          "prev_hash")

Canonical = dict[str, str | int | None]


def fields_of(entry: AuditEntryRow | Mapping[str, Any]) -> Canonical:
    """The canonical fields of a stored row, or of the column values about to be stored."""
    values = entry if isinstance(entry, Mapping) else {name: getattr(entry, name)
                                                       for name in FIELDS}
    fields: Canonical = {name: values[name] for name in FIELDS if name != "at"}
    fields["at"] = values["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return fields


def canonical(values: Canonical) -> bytes:
    return json.dumps(values, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def entry_hash(entry: AuditEntryRow | Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(fields_of(entry))).hexdigest()


def entry_message(digest: str) -> bytes:
    return b"entry:" + digest.encode("ascii")


def point_message(kind: str, seq: int, digest: str) -> bytes:
    """What signs a position in the chain: ``head`` or ``anchor`` (the retention cut)."""
    return f"{kind}:{seq}:{digest}".encode("ascii")


class ChainSigner:
    """HMACs for the chain under the keyring's audit-chain key; tags kept as hex."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def sign(self, message: bytes) -> tuple[int, str]:
        version, tag = self.keyring.mac(MAC_PURPOSE, message)
        return version, tag.hex()

    def verify(self, message: bytes, version: int | None, tag: str | None) -> bool:
        if version is None or tag is None:
            return False
        try:
            raw = bytes.fromhex(tag)
        except ValueError:
            return False
        return self.keyring.verify_mac(MAC_PURPOSE, message, version, raw)
