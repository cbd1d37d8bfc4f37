"""What is kept of an upload besides its text: no metadata, no password in clear, no lie.

* Metadata (EXIF GPS and camera, XMP, comments, ICC profiles, PDF document info) reaches
  neither the result, nor an output, nor storage, nor a log; the result names what went.
* A declared Content-Type never decides the format; when it contradicts the bytes the
  result says so, with the bare media types only.
* A PDF password is stored only sealed beside the input, deleted with it, never logged.
* A body over the limit is cut off while it streams in, not read whole first.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from ocrvault.jobs.params import ReadParams
from ocrvault.logs import install_key_redaction
from tests import hostilegen
from tests.conftest import CORPUS, assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, pdf_of, text_page
from tests.leaks import blob_files, found_under

HOSTILE = CORPUS / "hostile"


def submit(client: TestClient, key: str, route: str, data: bytes, *, name: str = "upload",
           content_type: str | None = None, raw: bool = False, **params: str) -> Any:
    """POST ``data`` raw (with ``content_type`` as the request's) or as the multipart file."""
    if raw:
        headers = {**auth(key), **({"Content-Type": content_type} if content_type else {})}
        return client.post(route, content=data, headers=headers, params=params)
    return client.post(route, params=params, headers=auth(key),
                       files={"file": (name, data, content_type or "application/octet-stream")})


def read_both(client: TestClient, key: str, data: bytes, **kwargs: Any
              ) -> list[tuple[dict[str, Any], bytes]]:
    """(result, text output) from an asynchronous job and from a synchronous read."""
    response = submit(client, key, "/v1/read", data, outputs="text", **kwargs)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"], key)
    assert job["status"] == "succeeded", job
    output = client.get(f"/v1/jobs/{job['id']}/outputs/text", headers=auth(key))
    assert output.status_code == 200
    synced = submit(client, key, "/v1/read:sync", data, **kwargs)
    assert synced.status_code == 200, synced.text
    return [(job["result"], output.content), (synced.json(), synced.json()["text"].encode())]


# ---- metadata ------------------------------------------------------------------------------


def corpus_gps_jpeg() -> tuple[bytes, list[bytes]]:
    data = (HOSTILE / "gen_jpeg_exif_gps.jpg").read_bytes()
    strings = ["48.8583", "2.2945", "48,51.498N", "2,17.67E", "HostileCam", "serial 123456",
               "Jane Example", "secret comment"]
    return data, [s.encode() for s in strings] + hostilegen.gps_rational_bytes(data)


def generated_gps_jpeg() -> tuple[bytes, list[bytes]]:
    data = hostilegen.gps_jpeg()
    strings = [*hostilegen.GPS_DECIMALS, "48,51.498N", "2,17.67E", hostilegen.CAMERA_MAKE,
               hostilegen.CAMERA_MODEL, hostilegen.JPEG_COMMENT]
    return data, [s.encode() for s in strings] + hostilegen.gps_rational_bytes(data)


def icc_jpeg() -> tuple[bytes, list[bytes]]:
    canary = b"ICC profile note: scanned in room 4711 by Jane Canary"
    profile = b"\x00" * 128 + canary
    page = text_page(["Colour managed page"], size=(900, 200))
    return encode(page, "JPEG", quality=90, icc_profile=profile), [canary]


def info_pdf() -> tuple[bytes, list[bytes]]:
    strings = [b"Jane Canary-Author", b"Merger plan canary title", b"CanaryWriter 9.1"]
    info = b"<< /Author (%s) /Title (%s) /Producer (%s) >>" % tuple(strings)
    return hostilegen.text_pdf(info=info), strings


@pytest.mark.parametrize(
    ("build", "removed"),
    [
        (generated_gps_jpeg, {"exif", "gps", "xmp", "comment"}),
        (corpus_gps_jpeg, {"exif", "gps", "xmp", "comment"}),
        (icc_jpeg, {"icc_profile"}),
        (info_pdf, {"pdf_info"}),
    ],
    ids=["generated-gps-jpeg", "corpus-gps-jpeg", "icc-profile-jpeg", "pdf-document-info"],
)
def test_metadata_reaches_no_result_output_storage_or_log_and_the_result_says_it_went(
    client: TestClient, admin_key: str, settings: Settings, caplog: pytest.LogCaptureFixture,
    build: Callable[[], tuple[bytes, list[bytes]]], removed: set[str],
) -> None:
    data, secrets = build()  # before capturing: building parses the file in this process
    assert all(secret in data for secret in secrets), "each secret must be in the file"
    caplog.set_level(logging.DEBUG)

    for result, output in read_both(client, admin_key, data):
        assert set(result["metadata_removed"]) >= removed
        shown = json.dumps(result).encode() + output
        assert [secret for secret in secrets if secret in shown] == []
    assert found_under(settings.data_dir, secrets) == []
    assert [s for s in secrets if s.decode("latin-1") in caplog.text] == []


# ---- the declared type ----------------------------------------------------------------------


def png_page() -> bytes:
    return encode(text_page(["Declared type check"], size=(900, 200)), "PNG")


def pdf_page() -> bytes:
    return pdf_of([text_page(["Declared type check"], size=(900, 200))])


@pytest.mark.parametrize(
    ("data", "raw", "content_type", "mismatch"),
    [
        (pdf_page, False, "image/png", {"declared": "image/png", "detected": "application/pdf"}),
        (png_page, True, 'image/JPG; name="payroll-2024.jpg"',
         {"declared": "image/jpeg", "detected": "image/png"}),
        (png_page, False, "image/png", None),
        (pdf_page, True, "application/pdf", None),
        (png_page, True, "application/octet-stream", None),
        (png_page, True, "application/x-www-form-urlencoded", None),
        (png_page, True, None, None),
        (png_page, True, "not a media type <script>", None),
    ],
    ids=["pdf-sent-as-png", "png-sent-as-jpeg-with-a-name", "png-as-png", "pdf-as-pdf",
         "octet-stream",
         "curl-default-form-urlencoded", "no-content-type", "garbage-content-type"],
)
def test_a_declared_type_that_contradicts_the_bytes_is_noted_never_trusted(
    client: TestClient, admin_key: str, settings: Settings, data: Callable[[], bytes], raw: bool,
    content_type: str | None, mismatch: dict[str, str] | None,
) -> None:
    results = read_both(client, admin_key, data(), name="payroll-2024.png",
                        content_type=content_type, raw=raw)

    for result, _ in results:
        assert result["declared_type_mismatch"] == mismatch
        assert "Declared type" in result["text"]
        assert "payroll" not in json.dumps(result)
    assert found_under(settings.data_dir, [b"payroll", b"<script>"]) == []


# ---- the PDF password -----------------------------------------------------------------------

PASSWORD = "Pw-canary-7f3c9e1d"


def test_an_encrypted_pdf_is_refused_without_its_password_or_with_a_wrong_one(
    client: TestClient, admin_key: str
) -> None:
    for data, wrong in [((HOSTILE / "gen_pdf_encrypted_rc4.pdf").read_bytes(), "Secret"),
                        (hostilegen.encrypted_pdf(PASSWORD), PASSWORD.upper())]:
        for route in ("/v1/read", "/v1/read:sync"):
            assert_problem(submit(client, admin_key, route, data), 422, "encrypted_pdf")
            body = assert_problem(submit(client, admin_key, route, data, pdf_password=wrong),
                                  422, "encrypted_pdf")
            assert wrong not in body["detail"]


def test_with_its_password_an_encrypted_pdf_is_read_on_both_routes(
    client: TestClient, admin_key: str
) -> None:
    for data, password in [((HOSTILE / "gen_pdf_encrypted_rc4.pdf").read_bytes(), "secret"),
                           (hostilegen.encrypted_pdf(PASSWORD), PASSWORD)]:
        for result, _ in read_both(client, admin_key, data, pdf_password=password):
            assert "hostile world" in result["text"].lower()


def test_the_pdf_password_is_stored_only_sealed_and_deleted_with_the_input(
    databases: TestDatabases,
    make_client: Callable[..., TestClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = databases.settings(tmp_path / "data", workers=0, reaper_interval_seconds=3600)
    client = make_client(settings)  # no workers: the job waits until we run it
    key = issue(client, "acme")
    secret = PASSWORD.encode()

    response = submit(client, key, "/v1/read", hostilegen.encrypted_pdf(PASSWORD),
                      pdf_password=PASSWORD)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert {Path(blob).name for blob in blob_files(settings.blob_dir)} == {
        "input", "pdf-password"}
    assert found_under(settings.data_dir, [secret, secret.hex().encode()]) == []

    runtime_of(client).worker.process(job_id)

    job = wait_for_job(client, job_id, key)
    assert "hostile world" in job["result"]["text"].lower()
    assert {Path(blob).name for blob in blob_files(settings.blob_dir)} == {"result"}
    assert PASSWORD not in json.dumps(job)
    assert found_under(settings.data_dir, [secret]) == []
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("name", ["pdf_password", "pdf%5Fpassword", "pdf%5fpass%77ord"])
def test_the_pdf_password_in_an_access_log_line_is_redacted(name: str) -> None:
    install_key_redaction()
    access_log = logging.getLogger("uvicorn.access")  # uvicorn's: its own handler, no propagation
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    access_log.addHandler(handler)
    level, access_log.level = access_log.level, logging.INFO
    try:
        access_log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "POST",  # uvicorn's format
                        f"/v1/read?pages=1&{name}={PASSWORD}&outputs=text", "1.1", 202)
    finally:
        access_log.removeHandler(handler)
        access_log.level = level
    assert PASSWORD not in written.getvalue()
    assert "/v1/read?pages=1&" in written.getvalue() and "&outputs=text" in written.getvalue()


def test_the_pdf_password_is_not_in_the_read_parameters_repr() -> None:
    params = ReadParams.parse(None, None, None, frozenset({"eng"}), pdf_password=PASSWORD)
    assert params.pdf_password == PASSWORD
    assert PASSWORD not in repr(params)


# ---- the body cap while streaming -------------------------------------------------------------

CAP = 1_000_000
CHUNK = 64 * 1024


class Body:
    """An endless-looking request body: ``2 x CAP`` bytes in chunks, counting what was read."""

    def __init__(self, prefix: bytes = b"", suffix: bytes = b"") -> None:
        self.prefix, self.suffix = prefix, suffix
        self.chunks_read = 0
        self.total_chunks = 2 * CAP // CHUNK

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.prefix
        for _ in range(self.total_chunks):
            self.chunks_read += 1
            yield b"\x89PNG\r\n\x1a\n" + b"\x00" * (CHUNK - 8)
        yield self.suffix


async def post_streaming(client: TestClient, key: str, body: Body,
                         headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.post("/v1/read", content=body.__aiter__(),
                               headers={**auth(key), **headers})


@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
def test_a_body_over_the_cap_without_content_length_is_cut_off_while_streaming(
    databases: TestDatabases,
    make_client: Callable[..., TestClient], tmp_path: Path, multipart: bool
) -> None:
    client = make_client(databases.settings(tmp_path / "data", workers=1, max_file_bytes=CAP))
    key = issue(client, "acme")
    boundary = "hostileboundary"
    body = Body(
        prefix=(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"'
                '\r\nContent-Type: image/png\r\n\r\n').encode() if multipart else b"",
        suffix=f"\r\n--{boundary}--\r\n".encode() if multipart else b"",
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"} if multipart else {}

    response = asyncio.run(post_streaming(client, key, body, headers))

    assert "content-length" not in {name.lower() for name in response.request.headers}
    assert_problem(response, 413, "file_too_large")
    assert body.chunks_read <= CAP // CHUNK + 2 < body.total_chunks
    assert blob_files(tmp_path / "data" / "blobs") == set()
    entries = client.get("/v1/audit", headers=auth(key),
                         params={"action": "job:document:rejected"}).json()["entries"]
    assert [(e["reason"], e["target_id"]) for e in entries] == [
        ("file_too_large", "upload:unknown:unknown")]


def test_a_declared_content_length_over_the_cap_is_refused_before_any_byte_is_read(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(databases.settings(tmp_path / "data", workers=1, max_file_bytes=CAP))
    body = Body()

    response = asyncio.run(post_streaming(client, issue(client, "acme"), body,
                                          {"Content-Length": str(2 * CAP)}))

    assert_problem(response, 413, "file_too_large")
    assert body.chunks_read == 0
