"""Signing secrets, held only sealed under the keyring, like a job's data key.

A webhook secret must be available in clear to sign, so it cannot be stored as a hash (as
API keys are). It is wrapped by the keyring's primary master key exactly as a data key is
(AES-256-GCM under a key derived from the master key), its AAD bound to the tenant and to
``webhook-endpoint:<endpoint id>``, a name no job id can take: a sealed secret copied onto
another endpoint, or onto a job row, fails to open. It is unsealed for one attempt at a
time and never logged, returned (except once, when made) or stored in clear.

Residual risk: retiring a master version makes the secrets sealed under it unreadable
as it does data keys; rotate the endpoint's secret before retiring (docs/security.md).
"""

from __future__ import annotations

from ocrvault.crypto import DekWrapper

_CONTEXT = "webhook-endpoint:"


def seal_secret(keyring: DekWrapper, secret: bytes, tenant_id: str, endpoint_id: str) -> bytes:
    return keyring.wrap_dek(secret, tenant_id, _CONTEXT + endpoint_id)


def open_secret(keyring: DekWrapper, sealed: bytes, tenant_id: str, endpoint_id: str) -> bytes:
    """The secret, or IntegrityError for a secret sealed for another endpoint or tenant."""
    return keyring.unwrap_dek(sealed, tenant_id, _CONTEXT + endpoint_id)
