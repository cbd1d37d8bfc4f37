"""Customer-held keys (SSE-C style): wrong, mangled or swapped keys never open a DEK."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ocrvault.crypto import (
    CustomerKey,
    EnvKeyringProvider,
    Keyring,
    parse_customer_key,
    unwrap_dek_with_customer_key,
    wrap_dek_with_customer_key,
)
from ocrvault.errors import ErrorCode, InputRejected, IntegrityError

RAW = bytes(range(100, 132))
RAW_B64 = base64.b64encode(RAW).decode()
SHA_B64 = base64.b64encode(hashlib.sha256(RAW).digest()).decode()
DEK = bytes(range(32))
KEY = parse_customer_key(RAW_B64, SHA_B64)
WRAPPED = wrap_dek_with_customer_key(DEK, KEY, "tenant-a", "job-1")


def test_round_trip() -> None:
    assert unwrap_dek_with_customer_key(WRAPPED, KEY, "tenant-a", "job-1") == DEK
    assert DEK not in WRAPPED


def test_sha256_fingerprint_is_base64_of_the_digest() -> None:
    assert KEY.sha256_b64 == SHA_B64
    assert KEY.matches(SHA_B64)


@pytest.mark.parametrize(
    ("key_b64", "sha_b64", "reason"),
    [
        (RAW_B64, base64.b64encode(hashlib.sha256(b"other").digest()).decode(), "does not match"),
        (RAW_B64, "", "does not match"),
        (RAW_B64, "not base64!", "does not match"),
        (RAW_B64, SHA_B64[:-4], "does not match"),
        (RAW_B64, "ÿÿ", "does not match"),
        (RAW_B64[:-1], SHA_B64, "not valid base64"),
        ("é" + RAW_B64, SHA_B64, "not valid base64"),
        (base64.b64encode(RAW[:16]).decode(), SHA_B64, "256 bits"),
        (base64.b64encode(RAW + b"x").decode(), SHA_B64, "256 bits"),
    ],
    ids=[
        "digest-mismatch",
        "digest-empty",
        "digest-not-base64",
        "digest-truncated",
        "digest-non-ascii",
        "key-not-base64",
        "key-non-ascii",
        "key-128-bit",
        "key-33-bytes",
    ],
)
def test_bad_customer_key_is_a_400_that_names_no_key(
    key_b64: str, sha_b64: str, reason: str
) -> None:
    with pytest.raises(InputRejected, match=reason) as caught:
        parse_customer_key(key_b64, sha_b64)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert caught.value.status == 400
    assert RAW_B64[:12] not in str(caught.value)


def test_another_customer_key_cannot_unwrap() -> None:
    other = CustomerKey(bytes(32))
    with pytest.raises(IntegrityError):
        unwrap_dek_with_customer_key(WRAPPED, other, "tenant-a", "job-1")
    assert not other.matches(SHA_B64)


@pytest.mark.parametrize(
    ("tenant_id", "job_id"), [("tenant-a", "job-2"), ("tenant-b", "job-1")], ids=["job", "tenant"]
)
def test_customer_wrapped_dek_moved_to_another_job_fails(tenant_id: str, job_id: str) -> None:
    with pytest.raises(IntegrityError):
        unwrap_dek_with_customer_key(WRAPPED, KEY, tenant_id, job_id)


@pytest.mark.parametrize("position", range(0, 64, 7))
def test_flipped_bit_or_wrong_length_is_integrity_error(position: int) -> None:
    tampered = bytearray(WRAPPED)
    tampered[position] ^= 0x01
    for wrapped in (bytes(tampered), WRAPPED[:-1], WRAPPED + b"\x00"):
        with pytest.raises(IntegrityError):
            unwrap_dek_with_customer_key(wrapped, KEY, "tenant-a", "job-1")


def test_customer_and_keyring_wraps_cannot_stand_in_for_each_other() -> None:
    master = base64.b64encode(RAW).decode()
    keyring = Keyring(EnvKeyringProvider(f"1:{master}"))  # same 32 bytes on both sides
    by_keyring = keyring.wrap_dek(DEK, "tenant-a", "job-1")
    with pytest.raises(IntegrityError):
        keyring.unwrap_dek(WRAPPED, "tenant-a", "job-1")
    with pytest.raises(IntegrityError):
        unwrap_dek_with_customer_key(by_keyring, KEY, "tenant-a", "job-1")


def test_repr_shows_the_fingerprint_never_the_key() -> None:
    assert repr(KEY) == f"CustomerKey(sha256_b64={SHA_B64!r})"
    assert RAW_B64 not in repr(KEY)
    assert not hasattr(KEY, "__dict__")


def test_wrong_size_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CustomerKey(RAW[:16])
    with pytest.raises(ValueError, match="32 bytes"):
        wrap_dek_with_customer_key(DEK[:16], KEY, "tenant-a", "job-1")
