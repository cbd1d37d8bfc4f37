"""Signing secrets, held only sealed under the keyring, like a job's data key.

A webhook secret must be available in clear to sign, so it cannot be stored as a hash (as
API keys are). It is wrapped by the keyring's primary master key exactly as a data key is
(AES-256-GCM under a key derived from the master key), its AAD bound to the tenant and to
``webhook-endpoint:<endpoint id>``, a name no job id can take: a sealed secret copied onto
another endpoint, or onto a job row, fails to open. It is unsealed for one attempt at a
time and never logged, returned (except once, when made) or stored in clear.

A master-key rotation re-seals them with the data keys (``ocrvault keys rewrap``), and a
master version is not retired while a secret still needs it.
"""

from __future__ import annotations

from ocrvault.crypto import DekWrapper
from ocrvault.store.db import Database
from ocrvault.store.webhooks import WebhookRepository

_CONTEXT = "webhook-endpoint:"


def seal_secret(keyring: DekWrapper, secret: bytes, tenant_id: str, endpoint_id: str) -> bytes:
    return keyring.wrap_dek(secret, tenant_id, _CONTEXT + endpoint_id)


def open_secret(keyring: DekWrapper, sealed: bytes, tenant_id: str, endpoint_id: str) -> bytes:
    """The secret, or IntegrityError for a secret sealed for another endpoint or tenant."""
    return keyring.unwrap_dek(sealed, tenant_id, _CONTEXT + endpoint_id)


def _sealed(database: Database) -> list[tuple[str, str, bytes, bytes | None]]:
    with database.transaction() as session:
        return [(e.id, e.tenant_id, e.sealed_secret, e.previous_sealed_secret)
                for e in WebhookRepository(session).all_endpoints()]


def count_sealed_under(database: Database, keyring: DekWrapper, version: int) -> int:
    """How many stored signing secrets still need master ``version`` to open."""
    return sum(keyring.version_of(sealed) == version
               for _, _, current, previous in _sealed(database)
               for sealed in (current, previous) if sealed is not None)


def reseal_all(database: Database, keyring: DekWrapper, primary: int) -> int:
    """Re-seal every signing secret not under ``primary``; how many."""
    done = 0
    for endpoint_id, tenant_id, current, previous in _sealed(database):
        old = [s for s in (current, previous) if s is not None
               and keyring.version_of(s) != primary]
        if not old:
            continue
        context = _CONTEXT + endpoint_id
        resealed = [None if s is None else keyring.rewrap(s, tenant_id, context)
                    for s in (current, previous)]
        with database.transaction() as session:
            current_now = resealed[0]
            assert current_now is not None
            WebhookRepository(session).reseal(endpoint_id, current_now, resealed[1])
        done += len(old)
    return done
