"""The chains' names, canonical form, hashes and signatures.

The log is a set of hash chains: one per tenant (``tenant:<id>``), one for events of
no tenant (``deployment``: master-key changes, refusals of unknown callers, retention
cuts), and, in a log written before per-tenant chains, the closed chain ``legacy``
holding every older entry (migration 0007). Each entry names its chain and its
position ``pos`` in it.

Canonical form of an entry: the JSON object of :data:`FIELDS` with keys sorted, no
insignificant whitespace, UTF-8 with non-ASCII characters as they are. Every value is
a string, an integer or null (times are UTC ISO 8601 with microseconds and ``Z``), so
this is also the RFC 8785 (JCS) form and any JCS library reproduces the bytes. A
``legacy`` entry keeps the form it was signed in: :data:`LEGACY_FIELDS`, where ``seq``
is its position and no chain is named.

An entry's hash is the hex SHA-256 of its canonical form. Each entry stores the hash
of the entry before it in its chain in ``prev_hash`` (:data:`GENESIS` for the first,
or the retention checkpoint's hash after a cut), so changing, removing or inserting one
breaks a link; the hash covers the chain's name and the position, so an entry moved to
another chain or place breaks too. Anyone can check the links from an export; the
signatures below need the keyring. Each entry, each chain's head (its last entry's
position and hash) and checkpoint are HMAC-signed with
``keyring.mac(MacPurpose.AUDIT_CHAIN, ...)`` over labelled messages that name the
chain, so a rewrite that recomputes every hash is still caught, at the first entry it
touched, and a cut-off tail is caught by the signed head. Each tag names the master
version it was made under; retiring that version keeps its audit MAC key (and nothing
that decrypts), so the log verifies across rotations and retirements.

Every chain but ``deployment`` is opened by an ``audit:chain:opened`` entry in the
``deployment`` chain, written in the same transaction as the chain's first entry, so a
tenant's chain deleted whole (head row and entries) is missed by verification only once
retention has cut that opening entry away.

Residual risks: someone who can write the database *and* restores an older,
genuinely signed head together with the rows up to it (a rollback to a backup) is
not detected here; export the log regularly to where the host cannot write, and
compare heads. Wiping every chain at once looks like a fresh install.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from ocrvault.crypto import Keyring, MacPurpose
from ocrvault.store.audit import StoredEntry

GENESIS = "0" * 64
MAC_PURPOSE = MacPurpose.AUDIT_CHAIN
DEPLOYMENT = "deployment"
LEGACY = "legacy"
_BODY = ("id", "at", "tenant_id", "environment", "actor_key_id", "actor_name", "action",
         "target_id", "client_ip", "request_id", "outcome", "reason", "detail", "prev_hash")
FIELDS = ("chain", "pos", *_BODY)
LEGACY_FIELDS = ("seq", *_BODY)

Canonical = dict[str, str | int | None]


def chain_of(tenant_id: str | None) -> str:
    """The chain an event of this tenant (or of none) is appended to."""
    return DEPLOYMENT if tenant_id is None else f"tenant:{tenant_id}"


def fields_of(entry: StoredEntry | Mapping[str, Any]) -> Canonical:
    """The canonical fields of a stored entry, or of the column values about to be stored."""
    values = entry if isinstance(entry, Mapping) else {name: getattr(entry, name)
                                                       for name in FIELDS}
    fields: Canonical = {name: values[name] for name in FIELDS if name != "at"}
    fields["at"] = values["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if values["chain"] == LEGACY:
        del fields["chain"]
        fields["seq"] = fields.pop("pos")
    return fields


def canonical(values: Canonical) -> bytes:
    return json.dumps(values, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def entry_hash(entry: StoredEntry | Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(fields_of(entry))).hexdigest()


def entry_message(digest: str) -> bytes:
    return b"entry:" + digest.encode("ascii")


def point_message(kind: str, chain: str, pos: int, digest: str) -> bytes:
    """What signs a position in a chain: ``head`` or ``anchor`` (the retention cut).
    A ``legacy`` chain's points keep the form they were signed in, which names no chain."""
    if chain == LEGACY:
        return f"{kind}:{pos}:{digest}".encode("ascii")
    return f"{kind}:{chain}:{pos}:{digest}".encode()


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
