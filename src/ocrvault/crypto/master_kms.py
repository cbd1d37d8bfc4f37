"""The ``aws-kms`` master-key provider: AWS KMS Encrypt and Decrypt through boto3.

The context becomes KMS's encryption context (tenant, purpose, and whatever else the
caller binds): KMS refuses to decrypt under any other, and CloudTrail logs it beside
each call, so the tenant's own audit shows every use of its key. A wrapped key is::

    b"OCA" | 0x01 | KMS ciphertext blob (names the KMS key and its backing key version)

Rotation is KMS's own (RotateKeyOnDemand): old ciphertexts keep decrypting, so nothing
needs rewrapping and :meth:`version_of` is always 1; :meth:`describe` counts rotations.

The same class serves a tenant's own key (bring your own key): a disabled key or a
revoked grant or policy answers :class:`KeyAccessDenied`, so the operator cannot read
that tenant's data any more. Credentials come from the usual AWS chain, never settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ocrvault.crypto.master import (
    KeyAccessDenied,
    KeyContext,
    KeyServiceUnavailable,
    ProviderDescription,
    check_wrap_args,
)
from ocrvault.errors import IntegrityError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

_PREFIX = b"OCA\x01"

# What KMS answers when the key exists but refuses this caller or this state.
_DENIED = {"AccessDeniedException", "AccessDenied", "DisabledException", "KMSInvalidStateException",
           "NotFoundException", "KeyUnavailableException", "UnrecognizedClientException",
           "InvalidGrantTokenException", "InvalidKeyUsageException"}
# What a wrong ciphertext, context or key earns: the bytes are not for this call.
_WRONG = {"InvalidCiphertextException", "IncorrectKeyException", "ValidationException"}


class AwsKmsMasterKeys:
    name = "aws-kms"

    def __init__(self, key_id: str, *, region: str | None = None,
                 endpoint_url: str | None = None, connect_timeout: float = 3.0,
                 read_timeout: float = 5.0, max_attempts: int = 2,
                 client: KMSClient | None = None) -> None:
        self.key_id = key_id
        self._client: Any = client or boto3.session.Session().client(
            "kms", region_name=region, endpoint_url=endpoint_url,
            config=Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                          retries={"max_attempts": max_attempts, "mode": "standard"}))

    def __repr__(self) -> str:
        return f"AwsKmsMasterKeys(key_id={self.key_id!r})"

    def for_key(self, key_id: str) -> AwsKmsMasterKeys:
        """The same endpoint and client, another key (a tenant's own)."""
        return AwsKmsMasterKeys(key_id, client=self._client)

    def wrap(self, key: bytes, context: KeyContext) -> bytes:
        check_wrap_args(key, context)
        answer = self._call("Encrypt", lambda: self._client.encrypt(
            KeyId=self.key_id, Plaintext=key, EncryptionContext=dict(context)))
        return _PREFIX + bytes(answer["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, context: KeyContext) -> bytes:
        self.version_of(wrapped)
        try:
            answer = self._call("Decrypt", lambda: self._client.decrypt(
                KeyId=self.key_id, CiphertextBlob=wrapped[len(_PREFIX):],
                EncryptionContext=dict(context)))
        except KeyAccessDenied:
            # KMS answers a ciphertext of another key (or an altered key id in it) as it
            # answers a revoked grant. If our key still encrypts for us, it was the bytes.
            self._call("Encrypt", lambda: self._client.encrypt(
                KeyId=self.key_id, Plaintext=b"\0" * 32, EncryptionContext=dict(context)))
            raise IntegrityError from None
        return bytes(answer["Plaintext"])

    def version_of(self, wrapped: bytes) -> int:
        if len(wrapped) <= len(_PREFIX) or wrapped[:len(_PREFIX)] != _PREFIX:
            raise IntegrityError
        return 1

    def rotate(self) -> int:
        self._call("RotateKeyOnDemand",
                   lambda: self._client.rotate_key_on_demand(KeyId=self.key_id))
        return self.describe().version

    def describe(self) -> ProviderDescription:
        meta = self._call("DescribeKey",
                          lambda: self._client.describe_key(KeyId=self.key_id))["KeyMetadata"]
        if meta.get("KeyState") != "Enabled":
            raise KeyAccessDenied(self.name, f"the key is {meta.get('KeyState')}")
        rotations = self._call("ListKeyRotations",
                               lambda: self._client.list_key_rotations(KeyId=self.key_id))
        return ProviderDescription(self.name, str(meta["Arn"]),
                                   1 + len(rotations.get("Rotations", [])),
                                   {"key_state": str(meta["KeyState"])})

    def _call(self, operation: str, call: Any) -> Any:
        try:
            return call()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _WRONG:
                raise IntegrityError from None
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _DENIED or status == 403:  # IAM's refusal, whatever code it carries
                raise KeyAccessDenied(self.name, f"{operation}: {code}") from None
            raise KeyServiceUnavailable(self.name, f"{operation}: {code}") from None
        except BotoCoreError as error:  # unreachable, timed out, no credentials
            raise KeyServiceUnavailable(self.name, f"{operation}: {type(error).__name__}"
                                        ) from None
