"""The MasterKeyProvider contract (crypto/master.py), run against every provider: the
keyring file, an HSM through PKCS#11 (SoftHSM2) and AWS KMS (moto's standalone server)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.crypto.master import (
    KeyServiceUnavailable,
    MasterKeyProvider,
)
from ocrvault.crypto.master_keyring import KeyringMasterKeys
from ocrvault.errors import ErrorCode, IntegrityError
from tests.s3server import REGION
from tests.servers import free_port
from tests.softhsm import delete_token, new_token

KEY = bytes(range(32))
CONTEXT = {"tenant": "tenant-a", "job": "job-1", "purpose": "tenant-key"}
PROVIDERS = ["keyring", "pkcs11", "aws-kms"]


def new_kms_key(endpoint: str) -> str:
    kms = boto3.session.Session().client("kms", endpoint_url=endpoint, region_name=REGION)
    return str(kms.create_key(Description="ocrvault test master key")["KeyMetadata"]["KeyId"])


def kms(key_id: str, endpoint: str) -> MasterKeyProvider:
    from ocrvault.crypto.master_kms import AwsKmsMasterKeys

    return AwsKmsMasterKeys(key_id, region=REGION, endpoint_url=endpoint, connect_timeout=1,
                            read_timeout=2, max_attempts=1)


def pkcs11(library: str, label: str, pin: str) -> MasterKeyProvider:
    from ocrvault.crypto.master_pkcs11 import Pkcs11MasterKeys

    return Pkcs11MasterKeys(library, label, pin)


@pytest.fixture
def make_provider(request: pytest.FixtureRequest, tmp_path: Path
                  ) -> Callable[[], MasterKeyProvider]:
    """Makes providers of the kind under test, each with a master key of its own."""
    kind: str = request.param
    if kind == "keyring":
        paths = iter(tmp_path / f"keyring-{n}.json" for n in range(100))
        return lambda: KeyringMasterKeys(Keyring(FileKeyringProvider(next(paths))), "file")
    if kind == "pkcs11":
        def make_pkcs11() -> MasterKeyProvider:
            token = new_token()
            return pkcs11(token.library, token.label, token.pin)
        return make_pkcs11
    endpoint = request.getfixturevalue("s3_endpoint")  # moto's server speaks KMS as well
    return lambda: kms(new_kms_key(endpoint), endpoint)


@pytest.fixture
def provider(make_provider: Callable[[], MasterKeyProvider]) -> MasterKeyProvider:
    return make_provider()


parametrized = pytest.mark.parametrize("make_provider", PROVIDERS, indirect=True)


@parametrized
def test_unwrap_returns_what_was_wrapped_and_the_wrap_hides_it(
        provider: MasterKeyProvider) -> None:
    wrapped = provider.wrap(KEY, CONTEXT)
    assert KEY not in wrapped
    assert provider.unwrap(wrapped, CONTEXT) == KEY
    assert provider.unwrap(wrapped, dict(reversed(CONTEXT.items()))) == KEY  # order is free
    assert provider.wrap(KEY, CONTEXT) != wrapped  # a fresh nonce each time


@parametrized
@pytest.mark.parametrize("other", [
    {**CONTEXT, "job": "job-2"},
    {**CONTEXT, "tenant": "tenant-b"},
    {"tenant": "tenant-a", "job": "job-1"},
    {**CONTEXT, "extra": "x"},
], ids=["other-job", "other-tenant", "missing-part", "extra-part"])
def test_another_context_fails_to_unwrap(provider: MasterKeyProvider,
                                         other: dict[str, str]) -> None:
    wrapped = provider.wrap(KEY, CONTEXT)
    with pytest.raises(IntegrityError):
        provider.unwrap(wrapped, other)


@parametrized
def test_altered_or_foreign_bytes_fail_as_integrity_errors(
        provider: MasterKeyProvider, make_provider: Callable[[], MasterKeyProvider]) -> None:
    wrapped = provider.wrap(KEY, CONTEXT)
    for at in (0, 5, len(wrapped) // 2, len(wrapped) - 1):
        altered = bytearray(wrapped)
        altered[at] ^= 0x01
        with pytest.raises(IntegrityError):
            provider.unwrap(bytes(altered), CONTEXT)
    with pytest.raises(IntegrityError):
        provider.unwrap(wrapped[:-1], CONTEXT)
    with pytest.raises(IntegrityError):
        provider.unwrap(b"", CONTEXT)
    # The same kind of provider with another master key (in use) cannot open it.
    other = make_provider()
    other.wrap(KEY, CONTEXT)
    with pytest.raises(IntegrityError):
        other.unwrap(wrapped, CONTEXT)


@parametrized
def test_rotation_makes_a_new_primary_and_old_wraps_still_open(
        provider: MasterKeyProvider) -> None:
    before = provider.wrap(KEY, CONTEXT)
    first = provider.describe().version
    assert provider.rotate() == provider.describe().version > first
    after = provider.wrap(KEY, CONTEXT)
    assert provider.unwrap(before, CONTEXT) == provider.unwrap(after, CONTEXT) == KEY
    assert provider.version_of(after) >= provider.version_of(before)


@parametrized
def test_describe_names_the_key_and_never_holds_key_material(
        provider: MasterKeyProvider) -> None:
    provider.wrap(KEY, CONTEXT)
    described = provider.describe()
    assert described.provider == provider.name and described.key_id
    assert KEY.hex() not in repr(described) and repr(KEY) not in repr(described)


@parametrized
@pytest.mark.parametrize(("key", "context"), [(b"short", CONTEXT), (KEY, {})],
                         ids=["short-key", "empty-context"])
def test_a_bad_call_is_a_value_error(provider: MasterKeyProvider, key: bytes,
                                     context: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        provider.wrap(key, context)


# -- losing the provider: remote providers only (the keyring lives in this process) -------

@pytest.fixture
def lost_provider(request: pytest.FixtureRequest) -> Iterator[tuple[MasterKeyProvider, bytes]]:
    """A provider that worked (the wrapped key) and then lost its HSM or KMS."""
    if request.param == "pkcs11":
        token = new_token()
        provider = pkcs11(token.library, token.label, token.pin)
        wrapped = provider.wrap(KEY, CONTEXT)
        delete_token(token)
        yield provider, wrapped
        return
    from tests.s3server import moto_server

    with moto_server() as endpoint:  # a server of its own, to stop
        provider = kms(new_kms_key(endpoint), endpoint)
        wrapped = provider.wrap(KEY, CONTEXT)
    yield provider, wrapped


@pytest.mark.usefixtures("aws_credentials")
@pytest.mark.parametrize("lost_provider", ["pkcs11", "aws-kms"], indirect=True)
def test_a_lost_provider_raises_key_service_unavailable_on_every_call(
        lost_provider: tuple[MasterKeyProvider, bytes]) -> None:
    provider, wrapped = lost_provider
    calls: list[Callable[[], object]] = [
        lambda: provider.wrap(KEY, CONTEXT), lambda: provider.unwrap(wrapped, CONTEXT),
        provider.describe, provider.rotate]
    for call in calls:
        with pytest.raises(KeyServiceUnavailable) as raised:
            call()
        assert raised.value.code == ErrorCode.KEY_SERVICE_UNAVAILABLE
        assert raised.value.retry_after > 0


@pytest.mark.usefixtures("aws_credentials")
def test_kms_on_a_closed_port_is_unavailable_not_a_crash() -> None:
    provider = kms("alias/ocrvault", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(KeyServiceUnavailable):
        provider.wrap(KEY, CONTEXT)


def test_an_hsm_key_is_generated_inside_and_cannot_be_extracted() -> None:
    token = new_token()
    pkcs11(token.library, token.label, token.pin).wrap(KEY, CONTEXT)
    # Looked at from another process, as any other user of the HSM would.
    probe = f"""
import pkcs11
from pkcs11 import Attribute, KeyType
from pkcs11.exceptions import AttributeSensitive
token = pkcs11.lib({token.library!r}).get_token(token_label={token.label!r})
with token.open(user_pin={token.pin!r}) as session:
    key = session.get_key(key_type=KeyType.AES, label="ocrvault-master-v1")
    try:
        key[Attribute.VALUE]
        print("extracted")
    except AttributeSensitive:
        print(key[Attribute.EXTRACTABLE], key[Attribute.SENSITIVE])
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, env=os.environ)
    assert done.stdout.split() == ["False", "True"]
