"""Encryption at rest, tested as an attacker with access to the disk would try it."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from tests.conftest import assert_problem, auth, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import canary as make_canary
from tests.docgen import encode, text_page

SCANNED_DIRS = {Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")}


def canary_png(canary: str, pad_to: int = 0) -> bytes:
    """A page showing ``canary``, optionally padded with a random private PNG chunk."""
    png = encode(text_page([f"Canary {canary}"], size=(1400, 300)), "PNG")
    if pad_to <= len(png):
        return png
    filler = secrets.token_bytes(pad_to - len(png))
    chunk = b"ocVp" + filler  # ancillary, private: decoders skip it
    extra = struct.pack(">I", len(filler)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + extra + png[iend:]


def files_under(roots: set[Path]) -> Iterator[Path]:
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    yield path


def hits(needles: list[bytes], roots: set[Path]) -> list[str]:
    found = []
    for path in files_under(roots):
        try:
            if path.stat().st_size > 500_000_000:
                continue
            content = path.read_bytes()
        except OSError:
            continue
        found += [f"{path}: {needle[:12]!r}..." for needle in needles if needle in content]
    return found


# Every rendered output is sealed too: the searchable PDF carries the canary's words (as
# UTF-16 in its text layer) and the page image.
ALL_OUTPUTS = "text,hocr,alto,pdf"


def needles_of(canary: str, document: bytes) -> list[bytes]:
    """The canary as text, and three windows of the original file's bytes."""
    windows = [document[i:i + 48] for i in (len(document) // 4, len(document) // 2,
                                            len(document) - 200)]
    return [canary.encode(), canary.encode("utf-16-le"), *windows]


@pytest.mark.parametrize("upload", ["raw", "multipart-5MiB"])
def test_no_plaintext_of_a_document_reaches_disk_or_logs(
    client: TestClient, admin_key: str, settings: Settings, upload: str,
    caplog: pytest.LogCaptureFixture, databases: TestDatabases,
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = make_canary()
    if upload == "raw":
        document = canary_png(canary)
        response = client.post("/v1/read", content=document, params={"outputs": ALL_OUTPUTS},
                               headers=auth(admin_key))
    else:
        document = canary_png(canary, pad_to=5 * 1024 * 1024)
        response = client.post("/v1/read", params={"outputs": ALL_OUTPUTS},
                               headers=auth(admin_key),
                               files={"file": ("canary.png", document, "image/png")})
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"], admin_key)
    assert canary in job["result"]["text"], "the canary must be read, or this proves nothing"
    assert canary in client.get(f"/v1/jobs/{job['id']}/outputs/text", headers=auth(admin_key)).text

    needles = needles_of(canary, document)
    assert hits(needles, SCANNED_DIRS | {settings.data_dir}) == []
    stored = databases.contents(settings.data_dir)  # on PostgreSQL, not in the data dir
    assert stored and [needle for needle in needles if needle in stored] == []
    assert canary not in caplog.text


def test_a_tampered_blob_fails_closed_with_integrity_error(
    client: TestClient, admin_key: str, settings: Settings
) -> None:
    job_id = client.post("/v1/read", content=encode(text_page(["tamper me"]), "PNG"),
                         headers=auth(admin_key)).json()["id"]
    wait_for_job(client, job_id, admin_key)
    [result_blob] = [p for p in settings.blob_dir.rglob("result")]
    blob = bytearray(result_blob.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    result_blob.write_bytes(bytes(blob))

    response = client.get(f"/v1/jobs/{job_id}", headers=auth(admin_key))

    body = assert_problem(response, 500, "integrity_error")
    assert "tamper" not in response.text and body["detail"]


def test_a_blob_swapped_between_two_jobs_does_not_open(
    client: TestClient, admin_key: str, settings: Settings
) -> None:
    ids = [client.post("/v1/read", content=encode(text_page([text]), "PNG"),
                       headers=auth(admin_key)).json()["id"]
           for text in ("first job", "second job")]
    for job_id in ids:
        wait_for_job(client, job_id, admin_key)
    first, second = (next(settings.blob_dir.rglob(f"{job_id}/result")) for job_id in ids)
    first.write_bytes(second.read_bytes())

    assert_problem(client.get(f"/v1/jobs/{ids[0]}", headers=auth(admin_key)), 500,
                   "integrity_error")
    assert client.get(f"/v1/jobs/{ids[1]}", headers=auth(admin_key)).status_code == 200


def test_a_backup_taken_before_deletion_cannot_be_read_after_it(
    client: TestClient, admin_key: str, settings: Settings, tmp_path: Path
) -> None:
    """Crypto-shredding: deleting a job destroys its key, so old copies of its blobs are noise."""
    job_id = client.post("/v1/read", content=encode(text_page(["backed up secret"]), "PNG"),
                         headers=auth(admin_key)).json()["id"]
    wait_for_job(client, job_id, admin_key)
    backup = tmp_path / "backup"
    shutil.copytree(settings.blob_dir, backup)

    assert client.delete(f"/v1/jobs/{job_id}", headers=auth(admin_key)).status_code == 200
    shutil.rmtree(settings.blob_dir)
    shutil.copytree(backup, settings.blob_dir)  # the attacker restores the old blobs

    from ocrvault.errors import IntegrityError
    from ocrvault.store.documents import JobKey, ObjectKind
    from tests.conftest import runtime_of

    runtime = runtime_of(client)
    with runtime.db.transaction() as session:
        from ocrvault.store.repository import JobRepository

        row = JobRepository(session).by_id(job_id)
        assert row is not None and row.wrapped_dek is None
    with pytest.raises(IntegrityError):
        runtime.documents.get(JobKey(row.tenant_id, job_id, row.wrapped_dek), ObjectKind.RESULT)
    assert_problem(client.get(f"/v1/jobs/{job_id}", headers=auth(admin_key)), 410, "job_deleted")
    assert b"backed up secret" not in b"".join(p.read_bytes() for p in backup.rglob("*")
                                               if p.is_file())
