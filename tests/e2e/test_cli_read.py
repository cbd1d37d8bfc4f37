"""`ocrvault read`: local OCR of several files with no server, nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ocrvault.cli import app
from tests.docgen import encode, pdf_of, text_page


def test_read_writes_one_output_per_file_and_reports_a_bad_one(tmp_path: Path) -> None:
    page = tmp_path / "note.png"
    page.write_bytes(encode(text_page(["Local reading works"], size=(900, 200)), "PNG"))
    pdf = tmp_path / "two.pdf"
    pdf.write_bytes(pdf_of([text_page(["First page"], size=(900, 200)),
                            text_page(["Second page"], size=(900, 200))]))
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"<html>not an image</html>")
    out = tmp_path / "out"

    result = CliRunner().invoke(
        app, ["read", str(page), str(fake), str(pdf), "--format", "json", "--out", str(out)],
        env={"OCRVAULT_DATA_DIR": str(tmp_path / "data")},
    )

    assert result.exit_code == 2, result.output  # one file was refused
    assert "unsupported_media_type" in result.output
    assert json.loads((out / "note.json").read_text())["text"] == "Local reading works"
    document = json.loads((out / "two.json").read_text())
    assert [p["number"] for p in document["pages"]] == [1, 2]
    assert document["text"] == "First page\fSecond page"
    assert not (out / "fake.json").exists()
    assert not (tmp_path / "data").exists()  # reading locally stores nothing


def test_read_prints_text_to_stdout_by_default(tmp_path: Path) -> None:
    page = tmp_path / "note.png"
    page.write_bytes(encode(text_page(["Printed to stdout"], size=(900, 200)), "PNG"))
    result = CliRunner().invoke(app, ["read", str(page)],
                                env={"OCRVAULT_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    assert "Printed to stdout" in result.stdout


def test_read_pages_beyond_a_files_last_page_reads_the_pages_it_has(tmp_path: Path) -> None:
    """`--pages 1-3` over files of one and two pages, as pdftoppm -f 1 -l 3 would."""
    page = tmp_path / "one.png"
    page.write_bytes(encode(text_page(["Only page"], size=(900, 200)), "PNG"))
    pdf = tmp_path / "two.pdf"
    pdf.write_bytes(pdf_of([text_page(["First page"], size=(900, 200)),
                            text_page(["Second page"], size=(900, 200))]))
    out = tmp_path / "out"

    result = CliRunner().invoke(
        app, ["read", str(page), str(pdf), "--pages", "1-3", "--languages", "eng,deu",
              "--format", "json", "--out", str(out)],
        env={"OCRVAULT_DATA_DIR": str(tmp_path / "data")},
    )

    assert result.exit_code == 0, result.output
    one = json.loads((out / "one.json").read_text())
    two = json.loads((out / "two.json").read_text())
    assert [p["number"] for p in one["pages"]] == [1]
    assert [p["number"] for p in two["pages"]] == [1, 2]
    assert (one["pages_requested"], one["pages_missing"]) == ("1-3", "2-3")
    assert (two["pages_requested"], two["pages_missing"]) == ("1-3", "3")
    assert one["languages"] == ["eng", "deu"]
