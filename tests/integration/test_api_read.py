"""The native v1 API end to end, through HTTP, with real OCR."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from ocrvault.config import Settings
from ocrvault.principal import Role
from ocrvault.sample import SAMPLE_LINES
from tests.conftest import assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, pdf_of, text_page

LINES = ["Invoice number 4711", "Total amount due 99 EUR"]


def png_page(lines: list[str] = LINES) -> bytes:
    return encode(text_page(lines), "PNG")


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in settings.blob_dir.rglob("*") if p.is_file()]


def test_submit_raw_body_answers_202_with_location_and_job_succeeds(
    client: TestClient, admin_key: str
) -> None:
    response = client.post("/v1/read", content=png_page(), headers=auth(admin_key))

    assert response.status_code == 202, response.text
    created = response.json()
    assert set(created) == {"id", "status", "created_at", "expires_at"}
    assert created["status"] == "queued"
    assert response.headers["location"] == f"/v1/jobs/{created['id']}"

    job = wait_for_job(client, created["id"], admin_key)
    assert job["status"] == "succeeded", job
    assert job["error"] is None and job["completed_at"] and job["expires_at"]
    result = job["result"]
    assert result["engine"]["name"] == "tesseract"
    assert result["languages"] == ["eng"]
    [page] = result["pages"]
    assert (page["number"], page["unit"], page["width"], page["height"]) == (1, "pixel", 1700, 1000)
    assert [line["text"] for line in page["lines"]] == LINES
    for line in page["lines"]:
        assert len(line["polygon"]) == 8 and 0 <= line["confidence"] <= 1
        assert " ".join(w["text"] for w in line["words"]) == line["text"]
    assert result["text"] == "\n".join(LINES)


def test_multipart_upload_of_a_multi_page_pdf_reads_selected_pages(
    client: TestClient, admin_key: str
) -> None:
    pdf = pdf_of([text_page([f"This is page {n}"]) for n in (1, 2, 3)])
    response = client.post(
        "/v1/read", params={"pages": "1,3"}, headers=auth(admin_key),
        files={"file": ("scan.pdf", pdf, "application/pdf")},
    )
    assert response.status_code == 202, response.text

    job = wait_for_job(client, response.json()["id"], admin_key)
    pages = job["result"]["pages"]
    assert [p["number"] for p in pages] == [1, 3]
    assert job["page_count"] == 2
    assert job["result"]["text"] == "This is page 1\fThis is page 3"


def test_text_output_is_plain_utf8(client: TestClient, admin_key: str) -> None:
    job_id = client.post("/v1/read", content=png_page(), params={"outputs": "text"},
                         headers=auth(admin_key)).json()["id"]
    wait_for_job(client, job_id, admin_key)

    response = client.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(admin_key))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "\n".join(LINES)


def test_output_of_unfinished_job_is_a_conflict(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    idle = make_client(databases.settings(tmp_path / "d", workers=0))
    key = issue(idle, "acme")
    job_id = idle.post("/v1/read", content=png_page(), headers=auth(key)).json()["id"]

    response = idle.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(key))

    assert_problem(response, 409, "job_not_finished")


def test_delete_removes_every_object_and_then_answers_410(
    client: TestClient, admin_key: str, settings: Settings
) -> None:
    job_id = client.post("/v1/read", content=png_page(), params={"outputs": "text"},
                         headers=auth(admin_key)).json()["id"]
    wait_for_job(client, job_id, admin_key)
    assert stored_files(settings)

    response = client.delete(f"/v1/jobs/{job_id}", headers=auth(admin_key))

    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["id"] == job_id and receipt["deleted_at"]
    assert set(receipt["deleted"]) == {"result", "output-text", "data_key"}
    assert stored_files(settings) == []
    assert_problem(client.get(f"/v1/jobs/{job_id}", headers=auth(admin_key)), 410, "job_deleted")
    assert_problem(client.get(f"/v1/jobs/{job_id}/outputs/text", headers=auth(admin_key)),
                   410, "job_deleted")
    assert_problem(client.delete(f"/v1/jobs/{job_id}", headers=auth(admin_key)), 410, "job_deleted")


def test_sync_read_returns_the_result_and_stores_nothing(
    client: TestClient, admin_key: str, settings: Settings
) -> None:
    response = client.post("/v1/read:sync", content=png_page(), headers=auth(admin_key))

    assert response.status_code == 200, response.text
    assert [line["text"] for line in response.json()["pages"][0]["lines"]] == LINES
    assert stored_files(settings) == []
    with runtime_of(client).db.transaction() as session:
        from sqlalchemy import text

        assert session.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0


def test_sync_read_refuses_more_than_one_page(client: TestClient, admin_key: str) -> None:
    pdf = pdf_of([text_page(["one"]), text_page(["two"])])
    response = client.post("/v1/read:sync", content=pdf, headers=auth(admin_key))
    assert_problem(response, 413, "file_too_large")


def test_sync_read_accepts_one_selected_page_of_a_pdf(client: TestClient, admin_key: str) -> None:
    pdf = pdf_of([text_page(["first page"]), text_page(["second page"])])
    response = client.post("/v1/read:sync", content=pdf, params={"pages": "2"},
                           headers=auth(admin_key))
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "second page"


def test_sync_read_refuses_a_body_over_its_cap(
    databases: TestDatabases, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    small = make_client(databases.settings(tmp_path / "d", workers=1, max_sync_file_bytes=1000))
    key = issue(small, "acme")
    response = small.post("/v1/read:sync", content=png_page(), headers=auth(key))
    assert_problem(response, 413, "file_too_large")


def test_another_tenants_job_is_not_found_for_every_verb(client: TestClient) -> None:
    owner, stranger = issue(client, "acme"), issue(client, "evil")
    job_id = client.post("/v1/read", content=png_page(), headers=auth(owner)).json()["id"]

    for method, path in (("GET", ""), ("GET", "/outputs/text"), ("DELETE", "")):
        response = client.request(method, f"/v1/jobs/{job_id}{path}", headers=auth(stranger))
        assert_problem(response, 404, "job_not_found")
    assert client.get(f"/v1/jobs/{job_id}", headers=auth(owner)).status_code == 200


def test_unknown_job_id_is_not_found(client: TestClient, admin_key: str) -> None:
    response = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth(admin_key))
    assert_problem(response, 404, "job_not_found")


def test_missing_scope_is_forbidden_with_insufficient_scope(client: TestClient) -> None:
    reviewer = issue(client, "acme", Role.REVIEWER)
    response = client.post("/v1/read", content=png_page(), headers=auth(reviewer))
    assert_problem(response, 403, "insufficient_scope")
    response = client.delete(f"/v1/jobs/{uuid.uuid4()}", headers=auth(reviewer))
    assert_problem(response, 403, "insufficient_scope")


def test_the_sample_page_is_a_png_that_reads_back_as_its_lines(
    client: TestClient, admin_key: str
) -> None:
    sample = client.get("/v1/sample.png", headers=auth(admin_key))
    assert sample.status_code == 200, sample.text
    assert sample.headers["content-type"] == "image/png"
    assert client.get("/v1/sample.png", headers=auth(admin_key)).content == sample.content

    read = client.post("/v1/read:sync", headers=auth(admin_key),
                       files={"file": ("sample.png", sample.content, "image/png")})

    assert read.status_code == 200, read.text
    assert read.json()["text"] == "\n".join(SAMPLE_LINES)
    assert read.json()["declared_type_mismatch"] is None
