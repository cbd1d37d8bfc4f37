"""The ``keyring`` master-key provider: the versioned keyring (file or environment).

The embedded default. It never becomes unavailable once loaded (the keys are in this
process), so it raises neither KeyServiceUnavailable nor KeyAccessDenied; a keyring file
that cannot be read fails at start-up with KeyringError instead. Its weakness is where
the keys are: see ``providers.py``.
"""

from __future__ import annotations

from ocrvault.crypto.keyring import Keyring
from ocrvault.crypto.master import (
    KeyContext,
    ProviderDescription,
    check_wrap_args,
    context_aad,
)


class KeyringMasterKeys:
    name = "keyring"

    def __init__(self, keyring: Keyring, source: str) -> None:
        self.keyring = keyring
        self._source = source

    def wrap(self, key: bytes, context: KeyContext) -> bytes:
        check_wrap_args(key, context)
        return self.keyring.wrap_key(key, context_aad(context))

    def unwrap(self, wrapped: bytes, context: KeyContext) -> bytes:
        return self.keyring.unwrap_key(wrapped, context_aad(context))

    def version_of(self, wrapped: bytes) -> int:
        return self.keyring.key_version_of(wrapped)

    def rotate(self) -> int:
        return self.keyring.rotate()

    def describe(self) -> ProviderDescription:
        self.keyring.reload()
        return ProviderDescription(self.name, self._source, self.keyring.primary,
                                   {"versions": ",".join(f"v{v}" for v in self.keyring.versions)})
