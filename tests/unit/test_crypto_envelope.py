"""Sealed blobs: an attacker who can edit, cut, move or re-label one gets IntegrityError."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocrvault.crypto import ObjectContext, new_dek, open_sealed, seal, sealed_key_version
from ocrvault.errors import ErrorCode, IntegrityError

DEK = bytes(range(32))
CTX = ObjectContext("tenant-a", "job-1", "input")
PLAINTEXT = b"CANARY-4f2a invoice total 1,234.56"
BLOB = seal(DEK, PLAINTEXT, CTX)
HEADER_BYTES = 20  # magic 3 + format 1 + DEK version 4 + nonce 12


def test_round_trip_returns_the_plaintext() -> None:
    assert open_sealed(DEK, BLOB, CTX) == PLAINTEXT


@given(st.binary(max_size=4096))
def test_round_trip_any_plaintext_including_empty(plaintext: bytes) -> None:
    assert open_sealed(DEK, seal(DEK, plaintext, CTX), CTX) == plaintext


def test_blob_holds_no_plaintext_and_is_plaintext_plus_36_bytes() -> None:
    assert PLAINTEXT not in BLOB
    assert len(BLOB) == len(PLAINTEXT) + HEADER_BYTES + 16


@given(st.data())
def test_any_flipped_bit_anywhere_is_integrity_error(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(BLOB) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    tampered = bytearray(BLOB)
    tampered[position] ^= 1 << bit
    with pytest.raises(IntegrityError):
        open_sealed(DEK, bytes(tampered), CTX)


@given(st.data())
def test_truncated_blob_is_integrity_error(data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(BLOB) - 1))
    with pytest.raises(IntegrityError):
        open_sealed(DEK, BLOB[:cut], CTX)


def test_appended_bytes_are_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        open_sealed(DEK, BLOB + b"\x00", CTX)


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(CTX, job_id="job-2"),
        dataclasses.replace(CTX, kind="output:json"),
        dataclasses.replace(CTX, tenant_id="tenant-b"),
        dataclasses.replace(CTX, key_version=2),
        # Field boundaries are length-prefixed, so shifting a character between fields fails.
        ObjectContext("tenant-aj", "ob-1", "input"),
    ],
    ids=["other-job", "other-kind", "other-tenant", "other-dek-version", "shifted-boundary"],
)
def test_blob_opened_in_another_context_is_integrity_error(other: ObjectContext) -> None:
    with pytest.raises(IntegrityError):
        open_sealed(DEK, BLOB, other)


def test_wrong_dek_is_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        open_sealed(new_dek(), BLOB, CTX)


@pytest.mark.parametrize("dek", [b"", DEK[:16], DEK + b"\x00"], ids=["empty", "16", "33"])
def test_wrong_size_dek_when_opening_is_integrity_error(dek: bytes) -> None:
    with pytest.raises(IntegrityError):
        open_sealed(dek, BLOB, CTX)


@pytest.mark.parametrize(
    "blob",
    [b"", b"OCV", b"XYZ" + BLOB[3:], BLOB[:3] + b"\x02" + BLOB[4:], BLOB[:3] + b"\x00" + BLOB[4:]],
    ids=["empty", "magic-only", "bad-magic", "future-format", "format-zero"],
)
def test_unknown_header_is_integrity_error(blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        open_sealed(DEK, blob, CTX)


def test_every_failure_reads_the_same_so_errors_are_no_oracle() -> None:
    failures = []
    for dek, blob, ctx in [
        (new_dek(), BLOB, CTX),
        (DEK, BLOB[:-1], CTX),
        (DEK, b"junk", CTX),
        (DEK, BLOB, dataclasses.replace(CTX, job_id="job-2")),
    ]:
        with pytest.raises(IntegrityError) as caught:
            open_sealed(dek, blob, ctx)
        failures.append((caught.value.code, caught.value.detail, caught.value.__cause__))
    assert failures == [(ErrorCode.INTEGRITY_ERROR, IntegrityError().detail, None)] * 4


def test_nonces_are_unique_across_many_seals() -> None:
    nonces = {seal(DEK, b"same", CTX)[8:HEADER_BYTES] for _ in range(20_000)}
    assert len(nonces) == 20_000


def test_new_dek_is_32_random_bytes() -> None:
    deks = {new_dek() for _ in range(1000)}
    assert len(deks) == 1000
    assert {len(d) for d in deks} == {32}


def test_sealed_key_version_reads_the_dek_version_from_the_header() -> None:
    ctx = dataclasses.replace(CTX, key_version=7)
    blob = seal(DEK, b"x", ctx)
    assert sealed_key_version(blob) == 7
    assert open_sealed(DEK, blob, ctx) == b"x"


@pytest.mark.parametrize("blob", [b"", BLOB[:HEADER_BYTES], b"OCK\x01" + BLOB[4:]])
def test_sealed_key_version_of_a_malformed_blob_is_integrity_error(blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        sealed_key_version(blob)


def test_sealing_with_a_wrong_size_dek_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(DEK[:16], b"x", CTX)


@pytest.mark.parametrize(
    "fields",
    [
        {"tenant_id": ""},
        {"job_id": ""},
        {"kind": ""},
        {"key_version": 0},
        {"key_version": 2**32},
        {"kind": "\udc80"},
    ],
)
def test_object_context_refuses_empty_or_unencodable_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(CTX, **fields)
