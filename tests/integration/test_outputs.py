"""Outputs through the API: asked for at submission, rendered by the worker, sealed, served,
audited, and shredded with the job; one never asked for is a clear 409."""

from __future__ import annotations

import io
from typing import Any

import pikepdf
import pypdfium2 as pdfium
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from tests.conftest import assert_problem, auth, read_succeeded
from tests.docgen import encode, text_page
from tests.renderfix import alto_schema, parse_xml

LINES = ["Invoice number 4711", "Total amount due 99 EUR"]
PNG = encode(text_page(LINES), "PNG")
JPEG = encode(text_page(LINES), "JPEG", quality=85)


def submitted(client: TestClient, key: str, data: bytes = PNG, **params: str) -> dict[str, Any]:
    return read_succeeded(client, key, data, **params)


def test_each_requested_output_is_served_with_its_media_type(
    client: TestClient, admin_key: str
) -> None:
    job = submitted(client, admin_key, JPEG, outputs="text,hocr,alto,pdf,json")
    assert job["outputs"] == ["text", "hocr", "alto", "pdf"]  # json is always there

    def fetch(fmt: str) -> Any:
        response = client.get(f"/v1/jobs/{job['id']}/outputs/{fmt}", headers=auth(admin_key))
        assert response.status_code == 200, response.text
        return response

    assert fetch("text").text == "\n".join(LINES)
    hocr = fetch("hocr")
    assert hocr.headers["content-type"] == "application/xhtml+xml; charset=utf-8"
    assert "ocrx_word" in hocr.text and "4711" in hocr.text
    alto = fetch("alto")
    assert alto.headers["content-type"] == "application/xml; charset=utf-8"
    assert alto_schema().validate(parse_xml(alto.content).getroottree())
    pdf = fetch("pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    page = pdfium.PdfDocument(pdf.content)[0]
    assert page.get_textpage().get_text_range().split() == " ".join(LINES).split()
    assert len(pdf.content) <= 1.1 * len(JPEG)
    assert fetch("json").json() == job["result"]


def test_an_output_not_asked_for_at_submission_is_409_output_not_requested(
    client: TestClient, admin_key: str
) -> None:
    job = submitted(client, admin_key, outputs="hocr")
    for fmt in ("alto", "pdf"):
        problem = assert_problem(
            client.get(f"/v1/jobs/{job['id']}/outputs/{fmt}", headers=auth(admin_key)),
            409, "output_not_requested")
        assert f"outputs={fmt}" in problem["detail"]
    # Views of the result need no request: they are the result, spelled another way.
    for fmt in ("json", "text", "hocr"):  # (hocr was asked for)
        assert client.get(f"/v1/jobs/{job['id']}/outputs/{fmt}",
                          headers=auth(admin_key)).status_code == 200


def test_an_unknown_output_is_refused_at_submission(client: TestClient, admin_key: str) -> None:
    response = client.post("/v1/read", content=PNG, params={"outputs": "pdf,docx"},
                           headers=auth(admin_key))
    assert_problem(response, 400, "invalid_parameter")


def test_outputs_are_sealed_blobs_shredded_with_the_job(
    client: TestClient, admin_key: str, settings: Settings
) -> None:
    job = submitted(client, admin_key, outputs="hocr,alto,pdf")
    blobs = {p.name for p in settings.blob_dir.rglob("*") if p.is_file()}
    assert {"output-hocr", "output-alto", "output-pdf"} <= blobs
    for path in settings.blob_dir.rglob("output-*"):
        assert not path.read_bytes().startswith((b"%PDF", b"<?xml"))  # ciphertext

    receipt = client.delete(f"/v1/jobs/{job['id']}", headers=auth(admin_key)).json()

    assert {"output-hocr", "output-alto", "output-pdf"} <= set(receipt["deleted"])
    assert [p for p in settings.blob_dir.rglob("*") if p.is_file()] == []
    assert_problem(client.get(f"/v1/jobs/{job['id']}/outputs/pdf", headers=auth(admin_key)),
                   410, "job_deleted")


def test_reading_an_output_is_audited(client: TestClient, admin_key: str) -> None:
    job = submitted(client, admin_key, outputs="pdf")
    client.get(f"/v1/jobs/{job['id']}/outputs/pdf", headers=auth(admin_key))
    client.get(f"/v1/jobs/{job['id']}/outputs/alto", headers=auth(admin_key))  # 409: no read

    entries = client.get("/v1/audit", params={"limit": 1000}, headers=auth(admin_key)).json()
    reads = [e for e in entries["entries"] if e["action"] == "job:output:read"]
    assert [e["target_id"] for e in reads] == [job["id"]]


def test_pdfa_is_offered_for_images_and_refused_for_a_pdf_whose_pages_are_kept(
    client: TestClient, admin_key: str
) -> None:
    job = submitted(client, admin_key, JPEG, outputs="pdf", pdf_profile="pdfa-2b")
    pdf = client.get(f"/v1/jobs/{job['id']}/outputs/pdf", headers=auth(admin_key)).content
    with pikepdf.open(io.BytesIO(pdf)) as opened:
        assert opened.Root.OutputIntents[0].S == pikepdf.Name.GTS_PDFA1

    refused = client.post("/v1/read", content=pdf, headers=auth(admin_key),
                          params={"outputs": "pdf", "pdf_profile": "pdfa-2b"})
    assert_problem(refused, 400, "invalid_parameter")
