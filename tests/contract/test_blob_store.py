"""The BlobStore contract (store/blobs.py), one suite for every implementation.

The S3 store runs against a real S3-protocol server (moto's, started by the tests), so
what is proven is the HTTP conversation with a bucket, not a mock of boto3.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocrvault.config import Settings
from ocrvault.store.blobs import BlobStore, BlobStoreUnavailable, LocalBlobStore, open_blob_store
from ocrvault.store.blobs_s3 import S3BlobStore
from tests.s3server import REGION, bucket_objects, new_bucket
from tests.servers import free_port

IMPLEMENTATIONS = ["local", "s3"]

# Credentials where boto3 looks, also for the tests without a server: a store that fails
# for want of them would pass the unreachable-store tests for the wrong reason.
pytestmark = pytest.mark.usefixtures("aws_credentials")


def s3_settings(tmp_path: Path, endpoint: str, bucket: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data", "blob_store": "s3", "s3_bucket": bucket,
        "s3_prefix": "ocrvault", "s3_endpoint_url": endpoint, "s3_region": REGION}
    return Settings(**{**values, **overrides})


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A fresh, empty store of each kind, made by the factory from settings."""
    if request.param == "local":
        made = open_blob_store(Settings(data_dir=tmp_path / "data"))
        assert isinstance(made, LocalBlobStore)
        return made
    endpoint: str = request.getfixturevalue("s3_endpoint")
    made = open_blob_store(s3_settings(tmp_path, endpoint, new_bucket(endpoint)))
    assert isinstance(made, S3BlobStore)
    return made


def test_put_then_get_returns_the_same_bytes(store: BlobStore) -> None:
    data = secrets.token_bytes(3 * 1024 * 1024 + 7)  # past one read buffer or chunk
    store.put("tenant/job/input", data)
    store.put("tenant/job/engine", b"")
    assert store.get("tenant/job/input") == data
    assert store.get("tenant/job/engine") == b""


def test_put_over_an_existing_key_replaces_it(store: BlobStore) -> None:
    store.put("tenant/job/result", b"first version, longer than the second")
    store.put("tenant/job/result", b"second")
    assert store.get("tenant/job/result") == b"second"


def test_get_of_a_missing_key_or_of_a_prefix_is_none(store: BlobStore) -> None:
    assert store.get("tenant/job/result") is None
    store.put("tenant/job/input", b"sealed")
    assert store.get("tenant/job") is None
    assert store.get("tenant/job/result") is None


def test_delete_removes_the_object_and_deleting_again_is_no_error(store: BlobStore) -> None:
    store.put("tenant/job/input", b"sealed")
    store.put("tenant/job/result", b"kept")
    store.delete("tenant/job/input")
    assert store.get("tenant/job/input") is None
    store.delete("tenant/job/input")
    store.delete("tenant/never/stored")
    assert store.get("tenant/job/result") == b"kept"


def test_delete_prefix_removes_everything_under_it_and_nothing_else(store: BlobStore) -> None:
    doomed = ["t/job/input", "t/job/result", "t/job/output-text"]
    # Neighbours whose keys share the prefix's characters but not its folder.
    kept = ["t/job2/input", "t/jo/input", "t2/job/input", "u/t/job"]
    for key in doomed + kept:
        store.put(key, key.encode())
    store.delete_prefix("t/job")
    assert [key for key in doomed if store.get(key) is not None] == []
    assert {key: store.get(key) for key in kept} == {key: key.encode() for key in kept}
    store.delete_prefix("t/job")  # again, with nothing under it
    store.delete_prefix("t/never")


def test_delete_prefix_removes_more_objects_than_one_listing_page_or_delete_call(
        store: BlobStore) -> None:
    # S3 lists and deletes at most 1000 keys per call: 1001 needs two of each.
    keys = [f"t/many/part-{index:04d}" for index in range(1001)]
    for key in keys:
        store.put(key, b"x")
    store.put("t/other/input", b"kept")
    calls = watch_s3_calls(store, "ListObjectsV2", "DeleteObjects")
    store.delete_prefix("t/many")
    assert [key for key in (keys[0], keys[999], keys[1000]) if store.get(key) is not None] == []
    assert store.get("t/other/input") == b"kept"
    if isinstance(store, S3BlobStore):
        left = bucket_objects(str(store.client.meta.endpoint_url), store.bucket)
        assert set(left) == {"ocrvault/t/other/input"}
        # moto takes any number of keys in one DeleteObjects; S3 refuses over 1000.
        assert len(calls["ListObjectsV2"]) == 2
        assert [len(call["Delete"]["Objects"]) for call in calls["DeleteObjects"]] == [1000, 1]


def watch_s3_calls(store: BlobStore, *operations: str) -> dict[str, list[dict[str, Any]]]:
    """The parameters of each call the S3 store makes of ``operations`` from now on."""
    calls: dict[str, list[dict[str, Any]]] = {name: [] for name in operations}
    if isinstance(store, S3BlobStore):
        for name in operations:
            store.client.meta.events.register(
                f"provide-client-params.s3.{name}",
                lambda params, _name=name, **_: calls[_name].append(dict(params)))
    return calls


BAD_KEYS = ["", "/", "../etc/passwd", "tenant/../job", "tenant//job", "/tenant/job",
            "tenant/job/", "tenant/job/in put", "tenant/job/x.y", "tenant/j\u00f6b",
            "tenant\\job", "tenant/" + "x" * 65]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_keys_are_refused_by_every_method(store: BlobStore, key: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.delete(key),
        lambda: store.delete_prefix(key)]
    for call in calls:
        with pytest.raises(ValueError, match="blob key"):
            call()
    if isinstance(store, S3BlobStore):
        assert bucket_objects(str(store.client.meta.endpoint_url), store.bucket) == {}


def test_a_tenant_is_a_valid_prefix(store: BlobStore) -> None:
    store.put("tenant/job/input", b"sealed")
    store.put("tenant/other/input", b"sealed")
    store.delete_prefix("tenant")
    assert store.get("tenant/job/input") is None
    assert store.get("tenant/other/input") is None


def test_ping_of_a_store_that_can_serve_returns(store: BlobStore) -> None:
    store.ping()


# Short timeouts and two tries. The bound is what s3_client_config promises for them:
# two tries of connect + read + 1 s (a write's wait for 100 Continue), up to 1 s of
# backoff between them, and 2 s of slack for a loaded machine; botocore's defaults
# (60 s reads, retried) would hold a call for minutes.
FAST_FAILING = {"s3_connect_timeout_seconds": 0.5, "s3_read_timeout_seconds": 0.5,
                "s3_max_attempts": 2}
BOUND_SECONDS = 2 * (0.5 + 0.5 + 1.0) + 1.0 + 2.0


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture(params=["local-folder-gone", "s3-refused", "s3-hung"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[BlobStore, str]:
    """A store that cannot serve, and the cause it must name."""
    if request.param == "local-folder-gone":  # an unmounted volume, a deleted folder
        local = LocalBlobStore(tmp_path / "blobs")
        shutil.rmtree(local.root)
        return local, "is not writable"
    if request.param == "s3-refused":
        endpoint, cause = f"http://127.0.0.1:{free_port()}", "EndpointConnectionError"
    else:
        endpoint, cause = request.getfixturevalue("silent_endpoint"), "ReadTimeoutError"
    store = open_blob_store(s3_settings(tmp_path, endpoint, "ocrvault-blobs", **FAST_FAILING))
    return store, f"S3 ping failed: {cause}"


def test_ping_of_an_unreachable_store_raises_unavailable_in_bounded_time(
        unreachable: tuple[BlobStore, str]) -> None:
    store, cause = unreachable
    started = time.monotonic()
    with pytest.raises(BlobStoreUnavailable, match=cause) as raised:
        store.ping()
    assert time.monotonic() - started < BOUND_SECONDS
    assert raised.value.status == 503 and raised.value.retry_after > 0


@pytest.mark.parametrize("operation", ["put", "get", "delete", "delete_prefix"])
def test_every_call_to_a_hung_s3_store_fails_in_bounded_time(
        tmp_path: Path, silent_endpoint: str, operation: str) -> None:
    store = open_blob_store(s3_settings(tmp_path, silent_endpoint, "b", **FAST_FAILING))
    call: Callable[[], object] = {
        "put": lambda: store.put("t/j/input", b"sealed"), "get": lambda: store.get("t/j/input"),
        "delete": lambda: store.delete("t/j/input"),
        "delete_prefix": lambda: store.delete_prefix("t/j")}[operation]
    started = time.monotonic()
    with pytest.raises(BlobStoreUnavailable, match=f"S3 {operation} failed: ReadTimeoutError"):
        call()
    assert time.monotonic() - started < BOUND_SECONDS


def test_a_missing_bucket_is_unavailable_not_an_empty_store(
        tmp_path: Path, s3_endpoint: str) -> None:
    store = open_blob_store(s3_settings(tmp_path, s3_endpoint, "ocrvault-no-such-bucket"))
    with pytest.raises(BlobStoreUnavailable, match="NoSuchBucket"):
        store.get("t/j/input")
    with pytest.raises(BlobStoreUnavailable, match="NoSuchBucket"):
        store.ping()


def test_the_s3_prefix_holds_every_object_and_is_checked_like_a_key(
        tmp_path: Path, s3_endpoint: str) -> None:
    bucket = new_bucket(s3_endpoint)
    store = open_blob_store(s3_settings(tmp_path, s3_endpoint, bucket, s3_prefix="prod/eu"))
    store.put("t/j/input", b"sealed")
    assert set(bucket_objects(s3_endpoint, bucket)) == {"prod/eu/t/j/input"}
    for bad in ("..", "prod/../x", "a b"):
        with pytest.raises(ValueError, match="blob key"):
            open_blob_store(s3_settings(tmp_path, s3_endpoint, bucket, s3_prefix=bad))


def test_blob_store_s3_without_a_bucket_is_refused_at_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OCRVAULT_S3_BUCKET"):
        Settings(data_dir=tmp_path, blob_store="s3")
