"""ABBYY FineReader XML (render/abbyy_xml.py): the shape ABBYY Cloud OCR's
``exportFormat=xml`` has, drawn from a result."""

from __future__ import annotations

import itertools

from lxml import etree

from ocrvault.model import OutputFormat
from ocrvault.render import render
from ocrvault.render.abbyy_xml import NAMESPACE
from tests.renderfix import parse_xml, sample_document

FR = f"{{{NAMESPACE}}}"


def line_texts(line: etree._Element) -> str:
    return "".join(c.text or "" for c in line.iter(f"{FR}charParams"))


def first_page(document_xml: bytes) -> etree._Element:
    page = parse_xml(document_xml).find(f"{FR}page")
    assert page is not None
    return page


def test_the_document_names_abbyys_languages_and_its_pages_in_pixels() -> None:
    root = parse_xml(render(sample_document(), OutputFormat.ABBYY_XML))

    assert root.tag == f"{FR}document" and root.get("version") == "1.0"
    assert (root.get("languages"), root.get("mainLanguage"), root.get("pagesCount")) == (
        "English,German", "English", "2")
    pages = root.findall(f"{FR}page")
    assert [(p.get("width"), p.get("height"), p.get("resolution")) for p in pages] == [
        ("1700", "1000", "300"), ("800", "600", "300")]
    assert pages[1].find(f"{FR}block") is None  # a page without text has no block


def root_formatting(lines: list[etree._Element]) -> list[etree._Element]:
    return [f for line in lines for f in line.iter(f"{FR}formatting")]


def test_lines_spell_their_words_char_by_char_with_spaces_between() -> None:
    blocks = first_page(render(sample_document(), OutputFormat.ABBYY_XML)).findall(
        f"{FR}block")

    assert [b.get("blockType") for b in blocks] == ["Text", "Text"]  # a gap splits them
    lines = [line for b in blocks for line in b.iter(f"{FR}line")]
    assert [line_texts(line) for line in lines] == ["Invoice <4711>", "Total: 99\u00a0€", "Fax&"]
    assert {f.get("lang") for f in root_formatting(lines)} == {"English"}
    first = lines[0]
    assert (first.get("l"), first.get("t"), first.get("r"), first.get("b"),
            first.get("baseline")) == ("100", "100", "500", "140", "140")


def test_each_char_lies_in_its_word_and_carries_the_words_confidence() -> None:
    root = parse_xml(render(sample_document(), OutputFormat.ABBYY_XML))
    chars = list(root.iter(f"{FR}charParams"))
    invoice = chars[:7]  # "Invoice": 100..300 px, 7 slices

    assert [c.get("wordStart") for c in invoice] == ["true"] + ["false"] * 6
    assert (invoice[0].get("l"), invoice[-1].get("r")) == ("100", "300")
    assert all(a.get("r") == b.get("l") for a, b in itertools.pairwise(invoice))
    space = chars[7]
    assert (space.text, space.get("l"), space.get("r")) == (" ", "300", "320")
    euro = next(c for c in chars if c.text == "€")
    assert euro.get("charConfidence") == "31"


def test_a_pdf_page_gives_the_resolution_it_was_read_at() -> None:
    document = sample_document()
    page = document.pages[0].model_copy(update={"width": 1275, "height": 1650,
                                                "size_pt": (612.0, 792.0)})
    xml = render(document.model_copy(update={"pages": [page]}), OutputFormat.ABBYY_XML)
    assert first_page(xml).get("resolution") == "150"
