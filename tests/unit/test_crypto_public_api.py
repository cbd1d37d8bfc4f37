"""The curated surface of ocrvault.crypto, pinned so that a change to it is deliberate."""

from __future__ import annotations

import ast
from pathlib import Path

import ocrvault.crypto

CRYPTO_DIR = Path(ocrvault.crypto.__file__).parent


def test_public_surface_is_pinned() -> None:
    assert sorted(ocrvault.crypto.__all__) == [
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
    for name in ocrvault.crypto.__all__:
        assert getattr(ocrvault.crypto, name).__doc__, f"{name} has no docstring"


def test_no_random_source_but_the_os_csprng() -> None:
    for path in CRYPTO_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert "random" not in names, f"{path.name} imports random"
