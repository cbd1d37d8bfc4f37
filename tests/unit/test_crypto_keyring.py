"""Wrapped data keys, rotation and MACs, tried the way an attacker or a careless operator would."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocrvault.config import Settings
from ocrvault.crypto import (
    DekWrapper,
    EnvKeyringProvider,
    FileKeyringProvider,
    Keyring,
    KeyringError,
    MacPurpose,
    ObjectContext,
    load_keyring,
    new_dek,
    open_sealed,
    seal,
)
from ocrvault.errors import ErrorCode, InputRejected, IntegrityError

KEY1, KEY2 = bytes([1]) * 32, bytes([2]) * 32
ENV_VALUE = f"1:{base64.b64encode(KEY1).decode()},2:{base64.b64encode(KEY2).decode()}"
ENV_KEYRING = Keyring(EnvKeyringProvider(ENV_VALUE))
DEK = bytes(range(32))
WRAPPED = ENV_KEYRING.wrap_dek(DEK, "tenant-a", "job-1")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keyring.json"


@pytest.fixture
def keyring(path: Path) -> Keyring:
    return Keyring(FileKeyringProvider(path))


def test_wrap_unwrap_round_trip() -> None:
    assert ENV_KEYRING.unwrap_dek(WRAPPED, "tenant-a", "job-1") == DEK
    assert DEK not in WRAPPED
    assert ENV_KEYRING.version_of(WRAPPED) == 2


@pytest.mark.parametrize(
    ("tenant_id", "job_id"),
    [("tenant-a", "job-2"), ("tenant-b", "job-1"), ("tenant-aj", "ob-1")],
    ids=["other-job", "other-tenant", "shifted-boundary"],
)
def test_wrapped_dek_moved_to_another_job_row_fails(tenant_id: str, job_id: str) -> None:
    with pytest.raises(IntegrityError):
        ENV_KEYRING.unwrap_dek(WRAPPED, tenant_id, job_id)


@given(st.data())
def test_any_flipped_bit_in_a_wrapped_dek_is_integrity_error(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(WRAPPED) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    tampered = bytearray(WRAPPED)
    tampered[position] ^= 1 << bit
    with pytest.raises(IntegrityError):
        ENV_KEYRING.unwrap_dek(bytes(tampered), "tenant-a", "job-1")


@pytest.mark.parametrize(
    "wrapped",
    [
        b"",
        WRAPPED[:-1],
        WRAPPED + b"\x00",
        b"OCV" + WRAPPED[3:],
        WRAPPED[:3] + b"\x02" + WRAPPED[4:],
    ],
    ids=["empty", "truncated", "extended", "blob-magic", "future-format"],
)
def test_malformed_wrapped_dek_is_integrity_error(wrapped: bytes) -> None:
    with pytest.raises(IntegrityError):
        ENV_KEYRING.unwrap_dek(wrapped, "tenant-a", "job-1")
    with pytest.raises(IntegrityError):
        ENV_KEYRING.version_of(wrapped)


def test_wrapped_dek_claiming_an_unknown_master_version_is_integrity_error() -> None:
    claims_v9 = WRAPPED[:4] + (9).to_bytes(4, "big") + WRAPPED[8:]
    with pytest.raises(IntegrityError):
        ENV_KEYRING.unwrap_dek(claims_v9, "tenant-a", "job-1")


def test_wrapped_dek_relabelled_with_another_master_version_fails() -> None:
    claims_v1 = WRAPPED[:4] + (1).to_bytes(4, "big") + WRAPPED[8:]
    with pytest.raises(IntegrityError):
        ENV_KEYRING.unwrap_dek(claims_v1, "tenant-a", "job-1")


def test_same_dek_wraps_differently_each_time() -> None:
    assert ENV_KEYRING.wrap_dek(DEK, "tenant-a", "job-1") != WRAPPED


def test_wrapping_a_wrong_size_dek_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ENV_KEYRING.wrap_dek(DEK[:16], "tenant-a", "job-1")


def test_rotate_then_rewrap_then_retire_old_keeps_blobs_readable(keyring: Keyring) -> None:
    dek = new_dek()
    ctx = ObjectContext("tenant-a", "job-1", "input")
    blob = seal(dek, b"page text", ctx)
    wrapped_v1 = keyring.wrap_dek(dek, "tenant-a", "job-1")

    assert keyring.rotate() == 2
    rewrapped = keyring.rewrap(wrapped_v1, "tenant-a", "job-1")
    assert (keyring.version_of(wrapped_v1), keyring.version_of(rewrapped)) == (1, 2)
    keyring.retire(1)

    assert keyring.versions == (2,)
    assert (
        open_sealed(keyring.unwrap_dek(rewrapped, "tenant-a", "job-1"), blob, ctx) == b"page text"
    )


def test_unwrap_after_its_master_version_was_retired_fails(keyring: Keyring, path: Path) -> None:
    wrapped_v1 = keyring.wrap_dek(DEK, "tenant-a", "job-1")
    keyring.rotate()
    keyring.retire(1)
    with pytest.raises(IntegrityError):
        keyring.unwrap_dek(wrapped_v1, "tenant-a", "job-1")
    with pytest.raises(IntegrityError):
        Keyring(FileKeyringProvider(path)).unwrap_dek(wrapped_v1, "tenant-a", "job-1")


def test_rewrap_refuses_a_dek_moved_from_another_job(keyring: Keyring) -> None:
    wrapped = keyring.wrap_dek(DEK, "tenant-a", "job-1")
    keyring.rotate()
    with pytest.raises(IntegrityError):
        keyring.rewrap(wrapped, "tenant-a", "job-2")


def test_retiring_the_primary_is_refused_and_changes_nothing(keyring: Keyring, path: Path) -> None:
    keyring.rotate()
    before = path.read_bytes()
    with pytest.raises(InputRejected, match="primary") as refused:
        keyring.retire(2)
    assert refused.value.code is ErrorCode.INVALID_PARAMETER
    assert keyring.versions == (1, 2)
    assert path.read_bytes() == before


def test_retiring_an_unknown_or_retired_version_is_refused(keyring: Keyring) -> None:
    with pytest.raises(InputRejected, match="no master key v5; the keyring holds v1"):
        keyring.retire(5)
    keyring.rotate()
    keyring.retire(1)
    with pytest.raises(InputRejected, match="already retired"):
        keyring.retire(1)


def test_rotation_is_stored_and_seen_by_a_fresh_load(keyring: Keyring, path: Path) -> None:
    keyring.rotate()
    keyring.rotate()
    again = Keyring(FileKeyringProvider(path))
    assert (again.versions, again.primary) == ((1, 2, 3), 3)


def test_rotation_by_another_process_is_used_for_the_next_wrap(
    keyring: Keyring, path: Path
) -> None:
    cli = Keyring(FileKeyringProvider(path))
    cli.rotate()
    wrapped = keyring.wrap_dek(DEK, "tenant-a", "job-1")
    assert keyring.version_of(wrapped) == 2


def test_dek_rewrapped_by_another_process_unwraps_without_a_restart(
    keyring: Keyring, path: Path
) -> None:
    wrapped_v1 = keyring.wrap_dek(DEK, "tenant-a", "job-1")
    cli = Keyring(FileKeyringProvider(path))
    cli.rotate()
    rewrapped = cli.rewrap(wrapped_v1, "tenant-a", "job-1")
    assert keyring.unwrap_dek(rewrapped, "tenant-a", "job-1") == DEK


def test_concurrent_rotations_lose_no_version(path: Path) -> None:
    keyrings = [Keyring(FileKeyringProvider(path)) for _ in range(8)]
    threads = [threading.Thread(target=k.rotate) for k in keyrings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Keyring(FileKeyringProvider(path)).versions == tuple(range(1, 10))


def test_env_keyring_refuses_rotate_and_retire_with_a_clear_message() -> None:
    with pytest.raises(KeyringError, match="OCRVAULT_MASTER_KEY and is read-only") as caught:
        ENV_KEYRING.rotate()
    with pytest.raises(KeyringError, match="read-only"):
        ENV_KEYRING.retire(1)
    assert base64.b64encode(KEY2).decode() not in str(caught.value)


AUDIT = MacPurpose.AUDIT_CHAIN


def test_mac_verifies_and_rejects_tampering() -> None:
    version, tag = ENV_KEYRING.mac(AUDIT, b"chain head 42")
    assert version == 2
    assert ENV_KEYRING.verify_mac(AUDIT, b"chain head 42", version, tag)
    assert not ENV_KEYRING.verify_mac(AUDIT, b"chain head 43", version, tag)
    assert not ENV_KEYRING.verify_mac(AUDIT, b"chain head 42", version, tag[:-1])
    assert not ENV_KEYRING.verify_mac(AUDIT, b"chain head 42", version, bytes(32))
    assert not ENV_KEYRING.verify_mac(AUDIT, b"chain head 42", 1, tag)
    assert not ENV_KEYRING.verify_mac(AUDIT, b"chain head 42", 9, tag)


def test_mac_verifies_after_rotation_and_after_its_version_is_retired(
        keyring: Keyring, path: Path) -> None:
    version, tag = keyring.mac(AUDIT, b"head")
    keyring.rotate()
    assert keyring.verify_mac(AUDIT, b"head", version, tag)
    assert keyring.mac(AUDIT, b"head")[0] == 2
    keyring.retire(1)
    assert keyring.verify_mac(AUDIT, b"head", version, tag)
    assert not keyring.verify_mac(AUDIT, b"head2", version, tag)
    assert Keyring(FileKeyringProvider(path)).verify_mac(AUDIT, b"head", version, tag)


def test_a_retired_version_keeps_only_its_mac_keys_never_its_master_key(
        keyring: Keyring, path: Path) -> None:
    master_v1 = json.loads(path.read_text())["versions"]["1"]
    wrapped_v1 = keyring.wrap_dek(DEK, "tenant-a", "job-1")
    keyring.rotate()
    keyring.retire(1)
    stored = json.loads(path.read_text())
    assert master_v1 not in path.read_text()
    assert set(stored["retired"]) == {"1"}
    kept = stored["retired"]["1"]
    assert set(kept) == {p.value for p in MacPurpose}
    for key in kept.values():  # taken as a master key, a kept MAC key unwraps nothing
        with pytest.raises(IntegrityError):
            Keyring(EnvKeyringProvider(f"1:{key}")).unwrap_dek(wrapped_v1, "tenant-a", "job-1")
    assert keyring.versions == (2,)
    assert keyring.rotate() == 3  # a retired version number is never reused


def test_mac_refuses_an_unknown_purpose() -> None:
    with pytest.raises(ValueError, match="MacPurpose"):
        ENV_KEYRING.mac("", b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="MacPurpose"):
        ENV_KEYRING.verify_mac("webhook", b"x", 2, bytes(32))  # type: ignore[arg-type]


def test_load_keyring_uses_the_master_key_setting_when_set(tmp_path: Path) -> None:
    keyring = load_keyring(Settings(data_dir=tmp_path, master_key=ENV_VALUE))
    assert keyring.unwrap_dek(WRAPPED, "tenant-a", "job-1") == DEK
    assert not (tmp_path / "keyring.json").exists()


def test_load_keyring_creates_the_data_dir_file_otherwise(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", master_key=None)
    keyring = load_keyring(settings)
    assert (keyring.versions, keyring.primary) == ((1,), 1)
    assert settings.keyring_path.stat().st_mode & 0o777 == 0o600


def test_load_keyring_refuses_an_empty_master_key_rather_than_making_a_new_key(
    tmp_path: Path,
) -> None:
    with pytest.raises(KeyringError, match="empty"):
        load_keyring(Settings(data_dir=tmp_path, master_key=""))
    assert not (tmp_path / "keyring.json").exists()


def test_reprs_hold_no_key_material(keyring: Keyring) -> None:
    text = repr(ENV_KEYRING) + repr(EnvKeyringProvider(ENV_VALUE).load()) + repr(keyring)
    for key in (KEY1, KEY2):
        assert base64.b64encode(key).decode() not in text
        assert repr(key) not in text
    assert repr(ENV_KEYRING) == "Keyring(versions=(1, 2), primary=2)"


def test_keyring_is_a_dek_wrapper_for_the_store() -> None:
    wrapper: DekWrapper = ENV_KEYRING
    assert isinstance(wrapper, DekWrapper)
