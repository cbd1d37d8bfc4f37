"""Where master keys live: a 0600 file in the data dir, or an environment variable.

Both sit behind :class:`KeyringProvider`: ``load()`` returns the current
:class:`KeyringState`, ``update(change)`` applies a change (rotate, retire) and stores
it. The file provider is the default and the only writable one. The environment
provider is read-only: to rotate, add a version to the variable and restart.

Residual risks: anyone who can read the keyring file or the process environment
(``/proc/<pid>/environ`` for the same user, a container inspector) holds every master
key; a backup of the file keeps retired versions alive, so back it up apart from the
blobs or not at all; and the file is only as safe as the account that runs ocrvault.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from ocrvault.crypto import _aead
from ocrvault.errors import ErrorCode, InputRejected, OcrVaultError

_FILE_FORMAT = "ocrvault-keyring/1"
_ENV_NAME = "OCRVAULT_MASTER_KEY"


class KeyringError(OcrVaultError):
    """The keyring cannot be loaded or changed; the message says what to fix.

    Never raised for a failed unwrap (that is IntegrityError) and never carries key
    material.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, detail)


@dataclass(frozen=True)
class KeyringState:
    """An immutable snapshot: master keys by version (1..n), the primary for new wraps, and
    what is kept of each retired version: only its MAC keys by purpose, derived one-way from
    the master key, so that old audit signatures still verify while no data key can be
    unwrapped."""

    keys: Mapping[int, bytes] = field(repr=False)
    primary: int
    retired: Mapping[int, Mapping[str, bytes]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        keys = dict(self.keys)
        if self.primary not in keys:
            raise KeyringError(f"the primary master key version {self.primary} has no key")
        for version, key in keys.items():
            _check_key(version, key, "master key")
        retired = {version: MappingProxyType(dict(macs)) for version, macs in self.retired.items()}
        for version, macs in retired.items():
            if version in keys:
                raise KeyringError(f"master key version {version} is both live and retired")
            for key in macs.values():
                _check_key(version, key, "the MAC key of retired version")
        object.__setattr__(self, "keys", MappingProxyType(keys))
        object.__setattr__(self, "retired", MappingProxyType(retired))

    @classmethod
    def fresh(cls) -> KeyringState:
        return cls({1: secrets.token_bytes(_aead.KEY_BYTES)}, primary=1)

    def rotated(self) -> KeyringState:
        """A new random version above every existing one (retired ones too), made primary."""
        version = max([*self.keys, *self.retired]) + 1
        return KeyringState({**self.keys, version: secrets.token_bytes(_aead.KEY_BYTES)},
                            version, self.retired)

    def check_retirable(self, version: int) -> None:
        """Refuse (``invalid_parameter``) to retire the primary, or a version not in the
        keyring: the caller named the wrong version, the keyring is fine."""
        if version == self.primary:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                f"master key v{version} is the primary and cannot be retired; rotate "
                "('ocrvault keys rotate-master'), rewrap every data key, then retire it",
            )
        if version in self.retired:
            raise InputRejected(ErrorCode.INVALID_PARAMETER,
                                f"master key v{version} is already retired")
        if version not in self.keys:
            known = ", ".join(f"v{v}" for v in sorted(self.keys))
            raise InputRejected(ErrorCode.INVALID_PARAMETER,
                                f"there is no master key v{version}; the keyring holds {known}")

    def retired_with(self, version: int, mac_keys: Mapping[str, bytes]) -> KeyringState:
        """Drop ``version``'s master key, keeping only ``mac_keys`` (derived from it by the
        caller); every DEK still wrapped under it becomes unreadable."""
        self.check_retirable(version)
        return KeyringState({v: k for v, k in self.keys.items() if v != version}, self.primary,
                            {**self.retired, version: mac_keys})


def _check_key(version: int, key: bytes, what: str) -> None:
    if not 1 <= version <= _aead.MAX_VERSION:
        raise KeyringError(f"master key version {version} is not in 1..2**32-1")
    if len(key) != _aead.KEY_BYTES:
        raise KeyringError(f"{what} {version} is not 32 bytes")


class KeyringProvider(Protocol):
    """Loads and stores a :class:`KeyringState`.

    ``update`` must apply ``change`` to the latest stored state and store the result
    atomically with respect to other processes, or raise KeyringError if the provider
    is read-only. An external KMS never hands out its keys, so it is not a provider: it
    implements :class:`ocrvault.crypto.keyring.DekWrapper` instead.
    """

    def load(self) -> KeyringState: ...

    def update(self, change: Callable[[KeyringState], KeyringState]) -> KeyringState: ...


class FileKeyringProvider:
    """A JSON keyring file, mode 0600, created with a fresh version 1 on first load.

    Writes go to a 0600 temp file in the same directory, are fsynced and renamed over
    the old file, then the directory is fsynced: a crash leaves the old or the new
    keyring, never half of one. Creation and updates hold an exclusive ``flock`` on a
    ``.lock`` file beside it, so two processes starting at once cannot each create a
    different version 1, and two rotations cannot lose one another's version.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # (signature of the file when read, what it held): callers re-load before every
        # wrap and MAC to follow rotations by other processes; a stat is enough to tell.
        self._cache: tuple[tuple[int, ...], KeyringState] | None = None

    def load(self) -> KeyringState:
        with contextlib.suppress(FileNotFoundError):
            return self._read_if_changed()
        with self._locked():
            try:
                return self._read()
            except FileNotFoundError:
                state = KeyringState.fresh()
                self._write(state)
                return state

    def update(self, change: Callable[[KeyringState], KeyringState]) -> KeyringState:
        with self._locked():
            try:
                current = self._read()
            except FileNotFoundError:
                raise KeyringError(
                    f"the keyring file {self.path} has disappeared; restore it from its backup "
                    "before changing the keyring"
                ) from None
            state = change(current)
            self._write(state)
            return state

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read_if_changed(self) -> KeyringState:
        info = os.stat(self.path)
        signature = (info.st_ino, info.st_dev, info.st_mtime_ns, info.st_size, info.st_mode)
        if self._cache is not None and self._cache[0] == signature:
            return self._cache[1]
        state = self._read()
        self._cache = (signature, state)
        return state

    def _read(self) -> KeyringState:
        # O_NONBLOCK: a FIFO planted at the path is refused below instead of hanging open().
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode  # of what was opened, not of what the path is now
            if not stat.S_ISREG(mode):
                raise KeyringError(f"the keyring {self.path} is not a regular file")
            if mode & 0o077:
                raise KeyringError(
                    f"refusing to load the keyring {self.path}: its mode is "
                    f"{stat.S_IMODE(mode):04o}, so other users may read or replace the master "
                    f"keys; run `chmod 600 {self.path}` and consider the keys exposed"
                )
            with open(fd, "rb", closefd=False) as f:
                raw = f.read()
        finally:
            os.close(fd)
        try:
            return _state_from_json(json.loads(raw))
        except (ValueError, KeyringError) as exc:
            reason = exc.detail if isinstance(exc, KeyringError) else "malformed JSON"
            raise KeyringError(
                f"the keyring file {self.path} is not a valid ocrvault keyring ({reason})"
            ) from None

    def _write(self, state: KeyringState) -> None:
        data = json.dumps(_state_to_json(state), indent=2, sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)  # mkstemp's 0600 already; say so, whatever umask
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _state_to_json(state: KeyringState) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": _FILE_FORMAT,
        "primary": state.primary,
        "versions": {str(v): _b64(k) for v, k in sorted(state.keys.items())},
    }
    if state.retired:
        doc["retired"] = {str(v): {purpose: _b64(k) for purpose, k in sorted(macs.items())}
                          for v, macs in sorted(state.retired.items())}
    return doc


def _state_from_json(doc: Any) -> KeyringState:
    required = {"format", "primary", "versions"}
    if not isinstance(doc, dict) or not required <= doc.keys() <= required | {"retired"}:
        raise KeyringError("expected the keys 'format', 'primary', 'versions' (and 'retired')")
    if doc["format"] != _FILE_FORMAT:
        raise KeyringError(f"unknown format; expected {_FILE_FORMAT!r}")
    primary, versions = doc["primary"], doc["versions"]
    if type(primary) is not int or not isinstance(versions, dict) or not versions:
        raise KeyringError("'primary' must be a version number and 'versions' a non-empty map")
    keys = {version: _decode_key(encoded, version)
            for version, encoded in _versioned(versions, "versions")}
    retired = doc.get("retired", {})
    if not isinstance(retired, dict):
        raise KeyringError("'retired' must map version numbers to MAC keys by purpose")
    macs = {}
    for version, by_purpose in _versioned(retired, "retired"):
        if not isinstance(by_purpose, dict) or not all(
                isinstance(purpose, str) and isinstance(encoded, str)
                for purpose, encoded in by_purpose.items()):
            raise KeyringError("'retired' must map version numbers to MAC keys by purpose")
        macs[version] = {purpose: _decode_key(encoded, version)
                         for purpose, encoded in by_purpose.items()}
    return KeyringState(keys, primary, macs)


def _versioned(entries: dict[Any, Any], name: str) -> Iterator[tuple[int, Any]]:
    for text, value in entries.items():
        version = _parse_version(text)
        if version is None or (name == "versions" and not isinstance(value, str)):
            raise KeyringError(f"every entry in '{name}' must map a version number to base64")
        yield version, value


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


class EnvKeyringProvider:
    """Master keys from a setting such as ``OCRVAULT_MASTER_KEY="1:BASE64,2:BASE64"``.

    Each entry is ``VERSION:BASE64`` (a ``v`` before the version is accepted) with a
    32-byte key. The highest version is the primary unless ``primary`` says otherwise,
    e.g. to keep wrapping under an older version while a new one is rolled out.
    Read-only: a retired version is simply left out of the variable.
    """

    def __init__(self, value: str, *, primary: int | None = None) -> None:
        self._state = _parse_env(value, primary)

    def load(self) -> KeyringState:
        return self._state

    def update(self, change: Callable[[KeyringState], KeyringState]) -> KeyringState:
        raise KeyringError(
            f"the keyring comes from {_ENV_NAME} and is read-only; to rotate, add a new "
            "'VERSION:BASE64' entry to it and restart, and to retire, remove the entry"
        )


def _parse_env(value: str, primary: int | None) -> KeyringState:
    if not value.strip():
        raise KeyringError(f"{_ENV_NAME} is set but empty; unset it to use the keyring file")
    keys: dict[int, bytes] = {}
    for index, entry in enumerate(value.split(","), start=1):
        text, sep, encoded = entry.strip().partition(":")
        version = _parse_version(text.removeprefix("v"))
        if not sep or version is None:
            raise KeyringError(
                f"{_ENV_NAME} entry {index} is not 'VERSION:BASE64' with a version of 1 or more"
            )
        if version in keys:
            raise KeyringError(f"{_ENV_NAME} lists master key version {version} twice")
        keys[version] = _decode_key(encoded.strip(), version)
    chosen = max(keys) if primary is None else primary
    if chosen not in keys:
        raise KeyringError(f"the primary master key version {chosen} is not in {_ENV_NAME}")
    return KeyringState(keys, chosen)


def _parse_version(text: str) -> int | None:
    if not (text.isascii() and text.isdecimal()) or len(text) > 10:
        return None
    version = int(text)
    return version if 1 <= version <= _aead.MAX_VERSION else None


def _decode_key(encoded: str, version: int) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"master key version {version} is not valid base64") from None
    if len(key) != _aead.KEY_BYTES:
        raise KeyringError(
            f"master key version {version} is not 32 bytes; generate one with "
            "`python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'`"
        )
    return key
