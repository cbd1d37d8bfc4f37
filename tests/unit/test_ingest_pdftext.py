"""The rule that decides whether a PDF page's own text is read instead of OCR'd, and the
boxes it gets (ingest/pdftext.py), run as the sandbox child runs it."""

from __future__ import annotations

import io
from dataclasses import replace

import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image

from ocrvault.ingest.decode import decode_pages
from ocrvault.ingest.inspect import pdf_page_rendering
from ocrvault.ingest.pdftext import PageText, read_text_layer
from ocrvault.ingest.types import FileFormat, Limits, PdfText
from ocrvault.model import PageSource
from tests.docgen import mixed_pdf, text_page

LIMITS = Limits(max_file_bytes=2**30, max_pages=100, max_page_pixels=100_000_000,
                max_side_px=20_000, pdf_dpi=300)


def decoded(data: bytes, mode: PdfText = PdfText.AUTO) -> list[object]:
    count = len(pdfium.PdfDocument(data))
    return list(decode_pages(data, FileFormat.PDF, list(range(1, count + 1)), LIMITS, None,
                             mode))


def one_page(content: bytes, font: pikepdf.Dictionary | None = None, rotate: int = 0,
             to_unicode: bytes | None = None) -> bytes:
    pdf = pikepdf.new()
    font = font or pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                      BaseFont=pikepdf.Name.Helvetica)
    if to_unicode is not None:
        font.ToUnicode = pikepdf.Stream(pdf, to_unicode)
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792], Rotate=rotate,
                              Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
                              Contents=pikepdf.Stream(pdf, content))
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_a_born_digital_page_comes_as_words_on_the_pixels_ocr_would_see() -> None:
    [page] = decoded(mixed_pdf([("text", ["Hello born world"])]))

    assert isinstance(page, PageText)
    extracted = page.to_page().page
    assert extracted.source is PageSource.EXTRACTED and extracted.engine is None
    assert [w.text for w in extracted.lines[0].words] == ["Hello", "born", "world"]
    assert {w.confidence for w in extracted.lines[0].words} == {1.0}
    hello = extracted.lines[0].words[0].polygon  # 72 pt, 720 pt up: (300, 300) px at 300 dpi
    assert 298 <= hello[0] <= 310 and 240 <= hello[1] <= 300 and 290 <= hello[5] <= 320
    assert extracted.size_pt == (612.0, 792.0)  # US Letter, what the page is in inches


def test_glyphs_without_a_unicode_mapping_are_junk_and_the_page_is_ocrd() -> None:
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica,
        Encoding=pikepdf.Dictionary(Differences=[65, *(pikepdf.Name(f"/g{n}") for n in
                                                       range(4))]))
    junk = one_page(b"BT /F1 14 Tf 72 720 Td (ABCD ABDC BADC CCAB) Tj ET", font)

    for mode in (PdfText.AUTO, PdfText.EXTRACT):  # extract keeps no junk: nothing is left
        [page] = decoded(junk, mode)
        assert not isinstance(page, PageText)


def test_an_invisible_layer_over_a_scan_is_ocrd_unless_extract_is_asked() -> None:
    layered = mixed_pdf([("invisible", text_page(["Scan"], size=(1275, 1650)), "hidden words")])
    assert not isinstance(decoded(layered)[0], PageText)
    [page] = decoded(layered, PdfText.EXTRACT)
    assert isinstance(page, PageText)
    assert page.to_page().page.lines[0].text == "hidden words"


def test_invisible_text_alone_on_a_page_is_another_tools_ocr_and_is_ocrd() -> None:
    hidden = one_page(b"BT 3 Tr /F1 14 Tf 72 720 Td (nothing to see here at all) Tj ET")
    assert not isinstance(decoded(hidden)[0], PageText)


def test_ocr_mode_never_reads_the_layer() -> None:
    assert not isinstance(decoded(mixed_pdf([("text", ["Hello"])]), PdfText.OCR)[0], PageText)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_word_boxes_follow_the_page_rotation_as_rendered(rotate: int) -> None:
    data = one_page(b"BT /F1 36 Tf 72 600 Td (WIDE) Tj ET", rotate=rotate)
    [page] = decoded(data)
    assert isinstance(page, PageText)
    [[word]] = page.lines
    rendered: Image.Image = pdfium.PdfDocument(data)[0].render(scale=300 / 72).to_pil()

    assert rendered.size == page.size
    # The size in points stands as the pixels do, so inches follow from either axis.
    assert page.size_pt == ((792.0, 612.0) if rotate % 180 else (612.0, 792.0))
    left, top, right, bottom = (int(v) for v in word.box)
    inside = rendered.convert("L").crop((left, top, right, bottom))
    assert inside.getextrema()[0] < 64  # ink where the box says
    blank = rendered.convert("L").copy()
    blank.paste(255, (left - 2, top - 2, right + 2, bottom + 2))  # (anti-aliased edges)
    assert blank.getextrema()[0] == 255  # and none outside it


def words_of(page: object) -> list[str]:
    assert isinstance(page, PageText)
    return [word.text for line in page.lines for word in line]


def test_characters_beyond_ucs2_keep_every_word_on_its_own_characters() -> None:
    # A ToUnicode map sends "A" to U+1D400: pdfium's text then counts it twice in UTF-16.
    cmap = b"""/CIDInit /ProcSet findresource begin
12 dict begin begincmap /CMapName /Test-UCS def /CMapType 2 def
1 begincodespacerange <00> <FF> endcodespacerange
2 beginbfchar <41> <D835DC00> <42> <0042> endbfchar
endcmap CMapName currentdict /CMap defineresource pop end end"""
    [page] = decoded(one_page(b"BT /F1 36 Tf 72 600 Td (AB BA BB) Tj ET", to_unicode=cmap))

    assert words_of(page) == ["\U0001d400B", "B\U0001d400", "BB"]
    assert isinstance(page, PageText)
    boxes = [word.box for word in page.lines[0]]
    assert boxes[0][2] < boxes[1][0] < boxes[1][2] < boxes[2][0]  # each its own place


def test_junk_inside_a_word_is_left_out_of_its_text() -> None:
    font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica,
        Encoding=pikepdf.Dictionary(Differences=[67, pikepdf.Name("/g0")]))  # "C" unmapped
    data = one_page(b"BT /F1 14 Tf 72 720 Td (xACBx and enough plain words around it) Tj ET",
                    font)

    for mode in (PdfText.AUTO, PdfText.EXTRACT):  # one junk glyph in 35: the page is read
        assert words_of(decoded(data, mode)[0])[0] == "xABx"


def test_a_few_invisible_words_on_a_visible_page_are_left_out_unless_extract() -> None:
    data = one_page(b"BT /F1 14 Tf 72 720 Td (visible words here) Tj ET "
                    b"BT 3 Tr /F1 14 Tf 72 600 Td (ghost) Tj ET")

    assert words_of(decoded(data)[0]) == ["visible", "words", "here"]
    assert words_of(decoded(data, PdfText.EXTRACT)[0]) == ["visible", "words", "here", "ghost"]


def test_auto_trusts_no_layer_on_a_rendering_that_did_not_look_for_a_covering_image() -> None:
    pdf = pdfium.PdfDocument(mixed_pdf([("text", ["Hello born world"])]))
    looked = pdf_page_rendering(pdf, 1, LIMITS)
    assert looked.scan is False
    assert read_text_layer(pdf, 1, looked, PdfText.AUTO, frozenset()) is not None
    unlooked = replace(looked, scan=None)
    assert read_text_layer(pdf, 1, unlooked, PdfText.AUTO, frozenset()) is None
    assert read_text_layer(pdf, 1, unlooked, PdfText.EXTRACT, frozenset()) is not None
