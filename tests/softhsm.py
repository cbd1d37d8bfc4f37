"""SoftHSM2 tokens for tests: one token directory per test process, a fresh token per test.

SoftHSM reads ``SOFTHSM2_CONF`` once, when the process first loads the library, so the
configuration is made once per process and tokens are added to its directory with
``softhsm2-util`` (a token made later is found by the provider's re-scan)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

LIBRARY_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so",
                      "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                      "/usr/local/lib/softhsm/libsofthsm2.so")
USER_PIN = "ocrvault-test-pin"  # a test token's PIN, nothing else
SO_PIN = "ocrvault-test-so-pin"


@dataclass(frozen=True)
class Token:
    library: str
    label: str
    pin: str


def library_or_skip() -> str:
    """SoftHSM2's PKCS#11 module; skips (fails with CI=true) where it is not installed."""
    found = next((path for path in LIBRARY_CANDIDATES if Path(path).exists()), None)
    if found is None or shutil.which("softhsm2-util") is None:
        reason = "SoftHSM2 is not installed (Debian package softhsm2; `make system-deps`)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@cache
def _token_dir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ocrvault-softhsm-"))
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return root


def new_token() -> Token:
    """A freshly initialised token with a label of its own."""
    library = library_or_skip()
    _token_dir()
    label = f"ocrvault-{uuid.uuid4().hex[:12]}"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                    "--so-pin", SO_PIN, "--pin", USER_PIN],
                   check=True, capture_output=True, env=os.environ)
    return Token(library, label, USER_PIN)


def delete_token(token: Token) -> None:
    """Unplug: the token is gone from the HSM."""
    subprocess.run(["softhsm2-util", "--delete-token", "--token", token.label],
                   check=True, capture_output=True, env=os.environ)
