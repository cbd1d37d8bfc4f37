"""Born-digital PDF pages are read from their own text; scans and untrustworthy layers are
OCR'd; each page of the result says which (``source``)."""

from __future__ import annotations

import time

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient

from tests.conftest import assert_problem, auth, read_succeeded
from tests.docgen import mixed_pdf, text_page

SCAN = (1275, 1650)  # US Letter at 150 dpi, as mixed_pdf places its images
MIXED = mixed_pdf([
    ("text", ["Quarterly report 2026", "Revenue grew (by 12%)"]),
    ("scan", text_page(["Scanned delivery note"], size=SCAN, font_px=40)),
    ("invisible", text_page(["Signed contract copy"], size=SCAN, font_px=40), "xq zzkv jj"),
    ("stamp", text_page(["Archived invoice scan"], size=SCAN, font_px=40), "APPROVED"),
])


def test_auto_reads_born_digital_pages_and_ocrs_scans_junk_layers_and_stamped_scans(
    client: TestClient, admin_key: str
) -> None:
    job = read_succeeded(client, admin_key, MIXED)
    pages = job["result"]["pages"]

    assert [p["source"] for p in pages] == ["extracted", "ocr", "ocr", "ocr"]
    texts = [" ".join(line["text"] for line in p["lines"]) for p in pages]
    assert texts == ["Quarterly report 2026 Revenue grew (by 12%)", "Scanned delivery note",
                     "Signed contract copy", "Archived invoice scan APPROVED"]  # drawn: read
    born = pages[0]
    assert born["engine"] is None and born["width"] == 2550  # the pixels OCR would render
    assert abs(born["height"] - 3300) <= 1
    words = [w for line in born["lines"] for w in line["words"]]
    assert {w["confidence"] for w in words} == {1.0}
    quarterly = words[0]["polygon"]  # 72 pt from the left at 300 dpi: x = 300 px
    assert 295 <= quarterly[0] <= 305 and quarterly[2] > quarterly[0]
    assert [p["engine"] for p in pages[1:]] == ["tesseract"] * 3


@pytest.mark.parametrize(("mode", "sources"), [
    ("ocr", ["ocr", "ocr", "ocr", "ocr"]),
    ("extract", ["extracted", "ocr", "extracted", "extracted"]),
])
def test_pdf_text_chooses_ocr_everywhere_or_any_text_layer(
    client: TestClient, admin_key: str, mode: str, sources: list[str]
) -> None:
    job = read_succeeded(client, admin_key, MIXED, pdf_text=mode)
    pages = job["result"]["pages"]
    assert [p["source"] for p in pages] == sources
    if mode == "extract":
        assert pages[2]["lines"][0]["text"] == "xq zzkv jj"  # the layer, junk and all
    else:
        assert "Quarterly" in pages[0]["lines"][0]["text"]


def test_an_unknown_pdf_text_mode_is_refused(client: TestClient, admin_key: str) -> None:
    response = client.post("/v1/read", content=MIXED, params={"pdf_text": "guess"},
                           headers=auth(admin_key))
    assert_problem(response, 400, "invalid_parameter")


def test_the_searchable_pdf_of_a_mixed_document_keeps_every_page_and_finds_every_word(
    client: TestClient, admin_key: str
) -> None:
    job = read_succeeded(client, admin_key, MIXED, outputs="pdf")
    pdf = client.get(f"/v1/jobs/{job['id']}/outputs/pdf", headers=auth(admin_key)).content

    document = pdfium.PdfDocument(pdf)
    texts = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    assert " ".join(texts[0].split()) == "Quarterly report 2026 Revenue grew (by 12%)"
    assert "Scanned delivery note" in " ".join(texts[1].split())
    # The junk layer stays (it was the page), and the OCR'd words are grafted beside it.
    assert "Signed contract copy" in " ".join(texts[2].split())
    assert "APPROVED" in texts[3] and "Archived invoice scan" in " ".join(texts[3].split())


def test_a_born_digital_page_is_read_in_milliseconds_not_ocr_seconds(
    client: TestClient, admin_key: str
) -> None:
    lines = [f"Line {n} of a born-digital report with some words" for n in range(40)]
    born = mixed_pdf([("text", lines)] * 5)
    started = time.monotonic()
    extracted = read_succeeded(client, admin_key, born)
    extract_seconds = time.monotonic() - started
    started = time.monotonic()
    read_succeeded(client, admin_key, born, pdf_text="ocr")
    ocr_seconds = time.monotonic() - started

    assert {p["source"] for p in extracted["result"]["pages"]} == {"extracted"}
    assert extract_seconds * 3 < ocr_seconds, (extract_seconds, ocr_seconds)
