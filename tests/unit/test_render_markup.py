"""hOCR and ALTO from a result, the registry that finds every renderer."""

from __future__ import annotations

import re

import pytest

from ocrvault.model import OutputFormat
from ocrvault.render import default_registry, render
from ocrvault.render.alto import NAMESPACE
from tests.renderfix import alto_schema, parse_xml, sample_document

XHTML = "{http://www.w3.org/1999/xhtml}"
ALTO = f"{{{NAMESPACE}}}"


def test_every_output_format_has_exactly_one_renderer_found_by_module() -> None:
    registry = default_registry()
    assert registry.formats == set(OutputFormat)
    for fmt in OutputFormat:
        assert registry.get(fmt).format is fmt


def test_only_json_and_text_are_views_of_the_result_served_without_being_asked() -> None:
    views = {fmt for fmt in OutputFormat if default_registry().get(fmt).view_of_result}
    assert views == {OutputFormat.JSON, OutputFormat.TEXT}
    assert [f for f in OutputFormat if default_registry().get(f).reads_input] == [
        OutputFormat.PDF]


def test_hocr_is_well_formed_xhtml_with_pages_lines_and_words_on_their_boxes() -> None:
    root = parse_xml(render(sample_document(), OutputFormat.HOCR))

    assert root.tag == f"{XHTML}html"
    meta = {m.get("name"): m.get("content") for m in root.iter(f"{XHTML}meta") if m.get("name")}
    assert meta["ocr-number-of-pages"] == "2" and meta["ocr-langs"] == "eng deu"
    assert "ocrx_word" in meta["ocr-capabilities"]
    pages = [e for e in root.iter(f"{XHTML}div") if e.get("class") == "ocr_page"]
    assert [p.get("title") for p in pages] == ["bbox 0 0 1700 1000; ppageno 0",
                                                "bbox 0 0 800 600; ppageno 1"]
    assert all("image" not in p.get("title", "") for p in pages)  # the upload stays unnamed
    lines = [e for e in pages[0] if e.get("class") == "ocr_line"]
    assert [line.get("title") for line in lines] == [
        "bbox 100 100 500 140", "bbox 100 160 390 200", "bbox 100 600 300 640"]
    words = [(w.text, w.get("title")) for w in pages[0].iter(f"{XHTML}span")
             if w.get("class") == "ocrx_word"]
    assert words == [("Invoice", "bbox 100 100 300 140; x_wconf 90"),
                     ("<4711>", "bbox 320 100 500 140; x_wconf 90"),
                     ("Total:", "bbox 100 160 250 200; x_wconf 90"),
                     ("99\u00a0€", "bbox 270 160 390 200; x_wconf 31"),
                     ("Fax&", "bbox 100 600 300 640; x_wconf 90")]  # form feed dropped


def test_alto_validates_against_the_alto_4_schema() -> None:
    data = render(sample_document(), OutputFormat.ALTO)
    schema = alto_schema()
    document = parse_xml(data)

    assert schema.validate(document.getroottree()), schema.error_log
    assert document.findtext(f"{ALTO}Description/{ALTO}MeasurementUnit") == "pixel"


def test_alto_strings_carry_position_content_and_confidence_with_spaces_between() -> None:
    root = parse_xml(render(sample_document(), OutputFormat.ALTO))
    page = root.find(f"{ALTO}Layout/{ALTO}Page")
    assert page is not None
    assert (page.get("WIDTH"), page.get("HEIGHT"), page.get("PHYSICAL_IMG_NR")) == (
        "1700", "1000", "1")
    blocks = page.findall(f"{ALTO}PrintSpace/{ALTO}TextBlock")
    assert len(blocks) == 2  # the third line stands far below: a block of its own
    first_line = blocks[0].find(f"{ALTO}TextLine")
    assert first_line is not None
    assert [child.tag.removeprefix(ALTO) for child in first_line] == ["String", "SP", "String"]
    invoice, space, number = first_line
    assert {k: invoice.get(k) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT", "CONTENT", "WC")} == {
        "HPOS": "100", "VPOS": "100", "WIDTH": "200", "HEIGHT": "40", "CONTENT": "Invoice",
        "WC": "0.90"}
    assert (space.get("HPOS"), space.get("WIDTH")) == ("300", "20")
    assert number.get("CONTENT") == "<4711>"


def test_a_result_without_words_still_renders_valid_alto_and_hocr() -> None:
    blank = sample_document().pages[1]
    empty = sample_document().model_copy(update={"pages": [blank]})
    assert alto_schema().validate(parse_xml(render(empty, OutputFormat.ALTO)).getroottree())
    assert parse_xml(render(empty, OutputFormat.HOCR)).tag == f"{XHTML}html"


def test_a_renderer_that_draws_the_input_refuses_to_run_without_the_sandbox() -> None:
    with pytest.raises(ValueError, match="sandbox"):
        render(sample_document(), OutputFormat.PDF)


def test_text_and_json_outputs_are_the_results_own_text_and_json() -> None:
    document = sample_document()
    assert render(document, OutputFormat.TEXT).decode() == document.text
    assert re.search(rb'"pages":\[', render(document, OutputFormat.JSON))
