"""The key hierarchy below the master provider: tenant keys, epoch keys, wrapped DEKs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.crypto.keystore import DirectoryKeyStore
from ocrvault.crypto.master_keyring import KeyringMasterKeys
from ocrvault.crypto.tenant_keys import (
    TenantKeys,
    TenantOffboarded,
    epoch_of,
    is_epoch_wrapped,
)
from ocrvault.errors import IntegrityError

DEK = bytes(range(32))
WHEN = datetime(2030, 1, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def tenant_keys(tmp_path: Path) -> TenantKeys:
    keyring = Keyring(FileKeyringProvider(tmp_path / "keyring.json"))
    # A long cache: destruction must win over it anyway.
    return TenantKeys(KeyringMasterKeys(keyring, "file"), DirectoryKeyStore(tmp_path / "keys"),
                      epoch_seconds=3600, cache_seconds=3600)


def test_a_dek_unwraps_for_its_job_only(tenant_keys: TenantKeys) -> None:
    under = tenant_keys.wrap_dek(DEK, "t1", "j1", WHEN)
    assert is_epoch_wrapped(under.wrapped) and DEK not in under.wrapped
    assert epoch_of(under.wrapped) == under.epoch == tenant_keys.epoch_for(WHEN)
    assert under.master_key_version == 1
    assert tenant_keys.unwrap_dek(under.wrapped, "t1", "j1") == DEK
    for tenant, job in (("t1", "j2"), ("t2", "j1")):
        with pytest.raises(IntegrityError):
            tenant_keys.unwrap_dek(under.wrapped, tenant, job)


def test_data_expiring_in_one_window_shares_its_epoch_key_and_the_next_does_not(
        tenant_keys: TenantKeys) -> None:
    same = tenant_keys.wrap_dek(DEK, "t1", "j2", WHEN + timedelta(minutes=20))
    later = tenant_keys.wrap_dek(DEK, "t1", "j3", WHEN + timedelta(hours=1))
    assert same.epoch == tenant_keys.epoch_for(WHEN) != later.epoch
    assert tenant_keys.epochs("t1") == [same.epoch, later.epoch]
    assert tenant_keys.epoch_end(same.epoch) == datetime(2030, 1, 1, 13, tzinfo=UTC)


def test_destroying_an_epoch_key_shreds_its_deks_at_once_despite_the_cache(
        tenant_keys: TenantKeys) -> None:
    doomed = tenant_keys.wrap_dek(DEK, "t1", "j1", WHEN)
    kept = tenant_keys.wrap_dek(DEK, "t1", "j2", WHEN + timedelta(days=1))
    assert tenant_keys.unwrap_dek(doomed.wrapped, "t1", "j1") == DEK  # now cached
    assert tenant_keys.destroy_epoch("t1", doomed.epoch)
    with pytest.raises(IntegrityError):
        tenant_keys.unwrap_dek(doomed.wrapped, "t1", "j1")
    assert tenant_keys.unwrap_dek(kept.wrapped, "t1", "j2") == DEK


def test_offboarding_destroys_every_key_of_the_tenant_and_refuses_new_ones(
        tenant_keys: TenantKeys) -> None:
    mine = tenant_keys.wrap_dek(DEK, "t1", "j1", WHEN)
    theirs = tenant_keys.wrap_dek(DEK, "t2", "j1", WHEN)
    assert tenant_keys.offboard("t1") == 2  # the tenant key and one epoch key
    with pytest.raises(TenantOffboarded):
        tenant_keys.unwrap_dek(mine.wrapped, "t1", "j1")
    with pytest.raises(TenantOffboarded):
        tenant_keys.wrap_dek(DEK, "t1", "j9", WHEN)
    assert tenant_keys.unwrap_dek(theirs.wrapped, "t2", "j1") == DEK
    assert tenant_keys.tenants() == ["t2"]


def test_the_key_store_holds_keys_only_wrapped(tenant_keys: TenantKeys, tmp_path: Path) -> None:
    tenant_keys.wrap_dek(DEK, "t1", "j1", WHEN)
    tenant_key, _ = tenant_keys._tenant_key("t1", create=False)
    epoch_key = tenant_keys._epoch_key("t1", tenant_keys.epoch_for(WHEN), tenant_key,
                                       create=False)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "keys").rglob("*") if p.is_file())
    for secret in (tenant_key, epoch_key):
        assert secret not in stored and secret.hex().encode() not in stored


def test_master_rotation_then_rewrap_moves_tenant_keys_and_keeps_deks(
        tenant_keys: TenantKeys) -> None:
    under = tenant_keys.wrap_dek(DEK, "t1", "j1", WHEN)
    assert tenant_keys.master.rotate() == 2
    assert tenant_keys.master_versions_in_use() == {1}
    assert tenant_keys.rewrap_tenant_keys() == {"t1": 2}
    assert tenant_keys.master_versions_in_use() == {2}
    assert tenant_keys.unwrap_dek(under.wrapped, "t1", "j1") == DEK


def test_racing_first_uses_of_a_tenant_agree_on_one_tenant_key_and_one_epoch_key(
        tmp_path: Path) -> None:
    """Processes starting at once each find no tenant key and make one: the key store keeps
    the first, and every DEK wrapped by any of them opens."""
    store = DirectoryKeyStore(tmp_path / "keys")
    keyring = Keyring(FileKeyringProvider(tmp_path / "keyring.json"))
    nodes = [TenantKeys(KeyringMasterKeys(keyring, "file"), store, epoch_seconds=3600,
                        cache_seconds=3600) for _ in range(8)]
    barrier = threading.Barrier(len(nodes))
    wrapped: dict[int, bytes] = {}

    def first_use(n: int) -> None:
        barrier.wait()
        wrapped[n] = nodes[n].wrap_dek(DEK, "t1", f"j{n}", WHEN).wrapped

    threads = [threading.Thread(target=first_use, args=(n,)) for n in range(len(nodes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = TenantKeys(KeyringMasterKeys(keyring, "file"), store, epoch_seconds=3600)
    assert all(reader.unwrap_dek(wrapped[n], "t1", f"j{n}") == DEK for n in range(len(nodes)))
    assert len(store.names("tenants/t1/epochs")) == 1


class CountingStore(DirectoryKeyStore):
    """The real store, counting the entries it is asked to make."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.made: list[str] = []

    def create(self, name: str, data: bytes) -> bytes:
        self.made.append(name)
        return super().create(name, data)


def test_the_first_jobs_of_a_tenant_at_once_in_one_process_make_each_key_once(
        tmp_path: Path) -> None:
    """A burst of a new tenant's first jobs: one thread makes (and fsyncs) its keys, the
    others wait for them, rather than each writing a copy that loses the race."""
    store = CountingStore(tmp_path / "keys")
    keyring = Keyring(FileKeyringProvider(tmp_path / "keyring.json"))
    keys = TenantKeys(KeyringMasterKeys(keyring, "file"), store, epoch_seconds=3600)
    barrier = threading.Barrier(16)
    wrapped: dict[int, bytes] = {}

    def first_use(n: int) -> None:
        barrier.wait()
        wrapped[n] = keys.wrap_dek(DEK, "t1", f"j{n}", WHEN).wrapped

    threads = [threading.Thread(target=first_use, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(store.made) == ["tenants/t1/epochs/" + str(keys.epoch_for(WHEN)),
                                  "tenants/t1/tenant-key"]
    assert all(keys.unwrap_dek(wrapped[n], "t1", f"j{n}") == DEK for n in range(16))
