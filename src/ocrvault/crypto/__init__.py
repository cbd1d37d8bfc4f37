"""Envelope encryption recipes; the only package that imports ``cryptography.hazmat``.

Every stored object is sealed (AES-256-GCM) under its job's data key (DEK), with an
AAD that binds it to (tenant, job, kind, DEK version). The DEK is stored only wrapped:
under its tenant's epoch key (``tenant_keys.py``; tenant keys under the master-key
provider of ``master.py``: keyring, PKCS#11 HSM or AWS KMS), by the versioned master
keyring (:class:`Keyring`) for jobs from before tenant keys, or by a customer-held key.
Every way opening can fail raises the same :class:`~ocrvault.errors.IntegrityError`.

Crypto-shredding is the store deleting a job's wrapped DEK: no key, no plaintext, in
the live store or in any backup of its blobs.

Typical use by the store::

    dek = new_dek()
    wrapped = keyring.wrap_dek(dek, tenant_id, job_id)      # kept on the job row
    ctx = ObjectContext(tenant_id, job_id, "input")
    blob = seal(dek, data, ctx)                             # kept in the blob store
    data = open_sealed(keyring.unwrap_dek(wrapped, tenant_id, job_id), blob, ctx)
"""

from ocrvault.crypto.customer_key import (
    CustomerKey,
    parse_customer_key,
    unwrap_dek_with_customer_key,
    wrap_dek_with_customer_key,
)
from ocrvault.crypto.envelope import ObjectContext, new_dek, open_sealed, seal, sealed_key_version
from ocrvault.crypto.keyring import DekWrapper, Keyring, MacPurpose, load_keyring
from ocrvault.crypto.providers import (
    EnvKeyringProvider,
    FileKeyringProvider,
    KeyringError,
    KeyringProvider,
    KeyringState,
)

__all__ = [
    "CustomerKey",
    "DekWrapper",
    "EnvKeyringProvider",
    "FileKeyringProvider",
    "Keyring",
    "KeyringError",
    "KeyringProvider",
    "KeyringState",
    "MacPurpose",
    "ObjectContext",
    "load_keyring",
    "new_dek",
    "open_sealed",
    "parse_customer_key",
    "seal",
    "sealed_key_version",
    "unwrap_dek_with_customer_key",
    "wrap_dek_with_customer_key",
]
