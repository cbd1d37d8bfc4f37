"""The ``pkcs11`` master-key provider: AES-256 keys generated inside an HSM, never extractable.

Each master version is a token object labelled ``<key_label>-v<N>`` (CKA_SENSITIVE,
not CKA_EXTRACTABLE), so its bytes never leave the HSM; wrapping is AES-GCM computed by
the HSM with the context as AAD. A wrapped key is::

    b"OCP" | 0x01 | master version (u32 BE) | nonce (12) | ciphertext (32) | tag (16)

One logged-in session is kept and shared under a lock (PKCS#11 sessions are not
thread-safe); when the token stops answering the session is dropped, the call raises
KeyServiceUnavailable and the next call opens a new one, so an HSM plugged back in is
used again without a restart.

Residual risks: whoever holds the PIN and reaches the HSM can unwrap (but not copy) the
keys; the PIN comes from a setting, so keep it out of the data dir.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from ocrvault.crypto import _aead
from ocrvault.crypto.master import (
    KeyContext,
    KeyServiceUnavailable,
    ProviderDescription,
    check_wrap_args,
    context_aad,
)
from ocrvault.errors import IntegrityError

_PREFIX = b"OCP\x01"
_WRAPPED_BYTES = len(_PREFIX) + 4 + _aead.NONCE_BYTES + _aead.KEY_BYTES + _aead.TAG_BYTES

T = TypeVar("T")

# The token or the device went away, or the session with it: retrying later may work.
_GONE: tuple[type[BaseException], ...] = (
    p11.DeviceRemoved, p11.DeviceError, p11.DeviceMemory, p11.TokenNotPresent,
    p11.TokenNotRecognised, p11.NoSuchToken, p11.SessionClosed, p11.SessionHandleInvalid,
    p11.SessionCount, p11.UserNotLoggedIn, p11.PinLocked, p11.PinIncorrect,
    p11.HostMemory,
)


class Pkcs11MasterKeys:
    name = "pkcs11"

    def __init__(self, library: str, token_label: str, pin: str,
                 key_label: str = "ocrvault-master") -> None:
        self._library = library
        self._token_label = token_label
        self._pin = pin
        self._key_label = key_label
        self._lock = threading.Lock()
        self._session: Any = None

    def __repr__(self) -> str:
        return f"Pkcs11MasterKeys(token={self._token_label!r}, key={self._key_label!r})"

    # -- the contract -------------------------------------------------------------------

    def wrap(self, key: bytes, context: KeyContext) -> bytes:
        check_wrap_args(key, context)

        def run(session: Any) -> bytes:
            version, secret = self._primary(session, create=True)
            nonce = os.urandom(_aead.NONCE_BYTES)
            prefix = _PREFIX + _aead.u32(version)
            ct = secret.encrypt(key, mechanism=Mechanism.AES_GCM,
                                mechanism_param=pkcs11.GCMParams(nonce, prefix + context_aad(
                                    context), 128))
            return prefix + nonce + bytes(ct)

        return self._call(run)

    def unwrap(self, wrapped: bytes, context: KeyContext) -> bytes:
        version = self.version_of(wrapped)
        header_end = len(_PREFIX) + 4

        def run(session: Any) -> bytes:
            secret = self._key(session, version)
            if secret is None:
                if not self._versions(session):  # none of ours: not our token, or it is gone
                    raise p11.TokenNotPresent
                raise IntegrityError  # a version that never was, or was destroyed
            nonce = wrapped[header_end:header_end + _aead.NONCE_BYTES]
            try:
                key = secret.decrypt(
                    wrapped[header_end + _aead.NONCE_BYTES:], mechanism=Mechanism.AES_GCM,
                    mechanism_param=pkcs11.GCMParams(nonce, wrapped[:header_end] + context_aad(
                        context), 128))
            except _GONE:
                raise
            except p11.PKCS11Error:  # a failed tag: SoftHSM says GeneralError, others vary
                raise IntegrityError from None
            return bytes(key)

        return self._call(run)

    def version_of(self, wrapped: bytes) -> int:
        if len(wrapped) != _WRAPPED_BYTES or wrapped[:len(_PREFIX)] != _PREFIX:
            raise IntegrityError
        return _aead.read_u32(wrapped, len(_PREFIX))

    def rotate(self) -> int:
        def run(session: Any) -> int:
            versions = self._versions(session)
            version = max(versions, default=0) + 1
            self._generate(session, version)
            return version

        return self._call(run)

    def describe(self) -> ProviderDescription:
        def run(session: Any) -> ProviderDescription:
            version, _ = self._primary(session, create=False)
            token = session.token
            return ProviderDescription(self.name, f"{self._token_label}/{self._key_label}",
                                       version, {"manufacturer": str(token.manufacturer_id),
                                                 "model": str(token.model),
                                                 "extractable": "false"})

        return self._call(run)

    # -- the HSM --------------------------------------------------------------------------

    def _call(self, run: Callable[[Any], T]) -> T:
        with self._lock:
            try:
                with self._open() as session:
                    return run(session)
            except _GONE as error:
                self._drop()
                raise KeyServiceUnavailable(self.name, type(error).__name__) from None
            except IntegrityError:
                raise
            except p11.PKCS11Error as error:
                self._drop()
                raise KeyServiceUnavailable(self.name, type(error).__name__) from None
            except (OSError, RuntimeError) as error:  # the library itself would not load
                self._drop()
                raise KeyServiceUnavailable(self.name, f"{type(error).__name__}: {error}"
                                            ) from None

    @contextmanager
    def _open(self) -> Iterator[Any]:
        if self._session is None:
            lib = pkcs11.lib(self._library)
            try:
                token = lib.get_token(token_label=self._token_label)
            except (p11.NoSuchToken, p11.TokenNotPresent, p11.GeneralError):
                # Look again for a token plugged in (or pulled out: SoftHSM then says
                # GeneralError) since the library was loaded. Only then: reinitialising
                # closes every other session of this process.
                lib.reinitialize()
                token = lib.get_token(token_label=self._token_label)
            self._session = token.open(user_pin=self._pin, rw=True)
        yield self._session

    def _drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):  # already unusable: only forget it
                session.close()

    def _label(self, version: int) -> str:
        return f"{self._key_label}-v{version}"

    def _versions(self, session: Any) -> list[int]:
        prefix = f"{self._key_label}-v"
        found = []
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
            label = obj.label or ""
            if label.startswith(prefix) and label[len(prefix):].isdecimal():
                found.append(int(label[len(prefix):]))
        return found

    def _key(self, session: Any, version: int) -> Any:
        try:
            return session.get_key(key_type=KeyType.AES, label=self._label(version))
        except p11.NoSuchKey:
            return None

    def _primary(self, session: Any, *, create: bool) -> tuple[int, Any]:
        versions = self._versions(session)
        if not versions:
            if not create:
                return 0, None
            return 1, self._generate(session, 1)
        version = max(versions)
        return version, self._key(session, version)

    def _generate(self, session: Any, version: int) -> Any:
        return session.generate_key(
            KeyType.AES, 256, label=self._label(version), store=True,
            template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                      Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                      Attribute.WRAP: False, Attribute.UNWRAP: False})
