"""Keyring providers: the 0600 file and the environment variable, with hostile inputs."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocrvault.crypto import EnvKeyringProvider, FileKeyringProvider, Keyring, KeyringError

KEY1, KEY2, KEY3 = (bytes([n]) * 32 for n in (1, 2, 3))
B64 = {n: base64.b64encode(k).decode() for n, k in ((1, KEY1), (2, KEY2), (3, KEY3))}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "keyring.json"


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_keyring(path: Path, doc: object, file_mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    path.chmod(file_mode)


def test_file_is_created_0600_with_a_fresh_v1_key_even_under_umask_0(
    path: Path, open_umask: None
) -> None:
    state = FileKeyringProvider(path).load()
    assert (sorted(state.keys), state.primary) == ([1], 1)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    doc = json.loads(path.read_text())
    assert doc["format"] == "ocrvault-keyring/1"
    assert base64.b64decode(doc["versions"]["1"]) == state.keys[1]


def test_first_start_keys_are_random(tmp_path: Path) -> None:
    one = FileKeyringProvider(tmp_path / "a.json").load()
    two = FileKeyringProvider(tmp_path / "b.json").load()
    assert one.keys[1] != two.keys[1]


def test_loading_again_keeps_the_same_key(path: Path) -> None:
    assert FileKeyringProvider(path).load().keys == FileKeyringProvider(path).load().keys


def test_writes_go_through_a_0600_temp_file_in_the_same_dir(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Path, int]] = []
    real_replace = os.replace

    def spy(src: str, dst: Path) -> None:
        seen.append((Path(src).parent, mode(Path(src))))
        real_replace(src, dst)

    Keyring(FileKeyringProvider(path))
    monkeypatch.setattr(os, "replace", spy)
    Keyring(FileKeyringProvider(path)).rotate()
    assert seen == [(path.parent, 0o600)]
    assert sorted(p.name for p in path.parent.iterdir()) == ["keyring.json", "keyring.json.lock"]


def test_a_failed_write_keeps_the_old_keyring_and_leaves_no_temp_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = Keyring(FileKeyringProvider(path))
    before = path.read_bytes()

    def fail(src: str, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        keyring.rotate()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["keyring.json", "keyring.json.lock"]


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_file_open_to_group_or_others_is_refused(path: Path, file_mode: int) -> None:
    FileKeyringProvider(path).load()
    secret = json.loads(path.read_text())["versions"]["1"]
    path.chmod(file_mode)
    with pytest.raises(KeyringError) as caught:
        FileKeyringProvider(path).load()
    message = str(caught.value)
    assert f"{file_mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert secret not in message


@pytest.mark.parametrize("make", [Path.mkdir, os.mkfifo], ids=["directory", "fifo"])
def test_keyring_path_that_is_not_a_regular_file_is_refused(
    path: Path, make: Callable[[Path], object]
) -> None:
    path.parent.mkdir(parents=True)
    make(path)
    with pytest.raises(KeyringError, match="not a regular file"):
        FileKeyringProvider(path).load()


VALID = {"format": "ocrvault-keyring/1", "primary": 1, "versions": {"1": B64[1]}}


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ("not json {", "malformed JSON"),
        ([B64[1]], "expected the keys"),
        ({**VALID, "extra": B64[2]}, "expected the keys"),
        ({**VALID, "format": "ocrvault-keyring/9"}, "unknown format"),
        ({**VALID, "primary": "1"}, "'primary' must be"),
        ({**VALID, "primary": True}, "'primary' must be"),
        ({**VALID, "versions": {}}, "non-empty map"),
        ({**VALID, "primary": 2}, "version 2 has no key"),
        ({**VALID, "versions": {"0": B64[1]}}, "must map a version number"),
        ({**VALID, "versions": {"one": B64[1]}}, "must map a version number"),
        ({**VALID, "versions": {"1": 5}}, "must map a version number"),
        ({**VALID, "versions": {"1": B64[1] + "!"}}, "not valid base64"),
        ({**VALID, "versions": {"1": B64[1][:24]}}, "not 32 bytes"),
    ],
)
def test_malformed_file_is_refused_without_echoing_key_material(
    path: Path, doc: object, reason: str
) -> None:
    if isinstance(doc, str):
        path.parent.mkdir(parents=True)
        path.write_text(doc)
        path.chmod(0o600)
    else:
        write_keyring(path, doc)
    with pytest.raises(KeyringError, match="not a valid ocrvault keyring") as caught:
        FileKeyringProvider(path).load()
    assert reason in caught.value.detail
    assert B64[1][:16] not in str(caught.value)
    assert B64[2][:16] not in str(caught.value)


def test_update_after_the_file_vanished_refuses_rather_than_making_new_keys(path: Path) -> None:
    keyring = Keyring(FileKeyringProvider(path))
    path.unlink()
    with pytest.raises(KeyringError, match="disappeared"):
        keyring.rotate()
    assert not path.exists()


def test_env_value_highest_version_is_primary_in_any_order() -> None:
    state = EnvKeyringProvider(f"2:{B64[2]},1:{B64[1]}").load()
    assert (dict(state.keys), state.primary) == ({1: KEY1, 2: KEY2}, 2)


def test_env_value_accepts_v_prefix_and_spaces() -> None:
    state = EnvKeyringProvider(f" v1:{B64[1]} , v3: {B64[3]} ").load()
    assert (dict(state.keys), state.primary) == ({1: KEY1, 3: KEY3}, 3)


def test_env_primary_can_be_configured_below_the_highest() -> None:
    keyring = Keyring(EnvKeyringProvider(f"1:{B64[1]},2:{B64[2]}", primary=1))
    assert keyring.version_of(keyring.wrap_dek(bytes(32), "t", "j")) == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "set but empty"),
        ("   ", "set but empty"),
        (B64[1], "entry 1 is not 'VERSION:BASE64'"),
        (f"one:{B64[1]}", "entry 1 is not"),
        (f"0:{B64[1]}", "entry 1 is not"),
        (f"-1:{B64[1]}", "entry 1 is not"),
        (f"1:{B64[1]},", "entry 2 is not"),
        (f"1:{B64[1]};2:{B64[2]}", "not valid base64"),
        (f"1:{B64[1]},1:{B64[2]}", "version 1 twice"),
        (f"1:{B64[1]},2:{B64[2]}!", "version 2 is not valid base64"),
        (f"1:{B64[1]},2:{B64[2][:24]}", "version 2 is not 32 bytes"),
        (f"1:{B64[1]},2:", "version 2 is not 32 bytes"),
        (f"1:{base64.b64encode(bytes(64)).decode()}", "version 1 is not 32 bytes"),
        (f"99999999999:{B64[1]}", "entry 1 is not"),
        (f"\uff11:{B64[1]}", "entry 1 is not"),  # fullwidth digit one
    ],
)
def test_malformed_env_value_is_refused_clearly_without_key_material(
    value: str, reason: str
) -> None:
    with pytest.raises(KeyringError) as caught:
        EnvKeyringProvider(value)
    message = str(caught.value)
    assert reason in message
    assert "OCRVAULT_MASTER_KEY" in message or "master key version" in message
    for encoded in B64.values():
        assert encoded[:16] not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_env_primary_that_is_not_listed_is_refused() -> None:
    with pytest.raises(KeyringError, match="primary master key version 3 is not in"):
        EnvKeyringProvider(f"1:{B64[1]}", primary=3)
