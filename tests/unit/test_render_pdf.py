"""The searchable PDF: the page as it came, words findable on their boxes, nothing else kept.

Rendered with the real renderer in this process (the worker runs the same function in
the decode sandbox: tests/integration/test_outputs.py goes through it).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageChops

from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.ingest.types import FileFormat, Limits
from ocrvault.model import Document, EngineInfo, OutputFormat, Page, PageSource
from ocrvault.render import PdfProfile, SourceFile, render_isolated
from ocrvault.render.pdf import RENDERER, strip_jpeg_metadata
from tests.conftest import CORPUS
from tests.docgen import encode, mixed_pdf, pdf_of, text_page
from tests.renderfix import line_of, word

HOSTILE = CORPUS / "hostile"
LIMITS = Limits(max_file_bytes=200 * 2**20, max_pages=100, max_page_pixels=100_000_000,
                max_side_px=20_000)
LINES = ["Invoice number 4711", "Total amount due 99 EUR"]
# What no output may hold: names of actions, scripts, attachments, forms and metadata.
FORBIDDEN = (b"/JavaScript", b"/JS", b"/OpenAction", b"/AA", b"/Launch", b"/EmbeddedFile",
             b"/AcroForm", b"/XFA", b"/Metadata", b"/Info", b"/Annots", b"/URI", b"/FileAttachment")


def ocr(engine: TesseractEngine, image: Image.Image, number: int = 1) -> Page:
    return engine.recognize(image, RecognizeOptions(languages=("eng",), page_number=number))


def searchable(document: Document, data: bytes, fmt: FileFormat,
               pages: tuple[int, ...] = (1,)) -> bytes:
    return render_isolated(OutputFormat.PDF, document.model_dump_json().encode(),
                           SourceFile(data, fmt, pages, LIMITS))


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing (make system-deps installs it)")
        pytest.skip(f"{name} is not installed (poppler-utils / qpdf; make system-deps)")
    return found


def pdftotext(pdf: bytes) -> str:
    return subprocess.run([tool("pdftotext"), "-layout", "-", "-"], input=pdf,
                          capture_output=True, check=True).stdout.decode()


def qpdf_check(pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    result = subprocess.run([tool("qpdf"), "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and "No syntax or stream encoding errors" in result.stdout, (
        result.stdout + result.stderr)


def pdfium_words(pdf: bytes, index: int = 0) -> tuple[str, list[tuple[float, ...]]]:
    """The page's text and each character's box, in the page's points (top-left origin)."""
    document = pdfium.PdfDocument(pdf)
    page = document[index]
    text = page.get_textpage()
    height = page.get_height()
    boxes = []
    for i in range(text.count_chars()):
        left, bottom, right, top = text.get_charbox(i)
        boxes.append((left, height - top, right, height - bottom))
    return text.get_text_range(), boxes


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_three_readers_find_the_words_of_an_image_page(
    engine: TesseractEngine, fmt: str, tmp_path: Path
) -> None:
    image = text_page(LINES)
    page = ocr(engine, image)
    data = encode(image, fmt, **({"dpi": (200, 200)} if fmt != "JPEG" else {}))
    pdf = searchable(Document.from_pages([page], engine.info, ["eng"]), data, FileFormat[fmt])

    text, _ = pdfium_words(pdf)
    assert text.split() == " ".join(LINES).split()
    assert pdftotext(pdf).split() == " ".join(LINES).split()
    qpdf_check(pdf, tmp_path)


def test_each_word_is_selectable_on_its_own_box(engine: TesseractEngine) -> None:
    image = text_page(LINES)
    page = ocr(engine, image)
    pdf = searchable(Document.from_pages([page], engine.info, ["eng"]), encode(image, "PNG"),
                     FileFormat.PNG)
    scale = 72 / 300  # a PNG without a density is placed at 300 dpi

    text, boxes = pdfium_words(pdf)
    char_boxes = [box for char, box in zip(text, boxes, strict=False) if not char.isspace()]
    word_boxes = [w.polygon for line in page.lines for w in line.words
                  for _ in w.text]  # one per character, in reading order
    assert len(char_boxes) == len(word_boxes)
    for char_box, polygon in zip(char_boxes, word_boxes, strict=True):
        left, top, right, bottom = (v * scale for v in (min(polygon[0::2]), min(polygon[1::2]),
                                                        max(polygon[0::2]), max(polygon[1::2])))
        centre_x, centre_y = (char_box[0] + char_box[2]) / 2, (char_box[1] + char_box[3]) / 2
        assert left - 1 <= centre_x <= right + 1 and top - 1 <= centre_y <= bottom + 1


def test_a_jpeg_goes_in_as_it_came_without_its_metadata_and_hardly_grows(
    engine: TesseractEngine
) -> None:
    image = text_page(LINES)
    data = encode(image, "JPEG", quality=85, exif=Image.Exif(), comment=b"secret comment")
    pdf = searchable(Document.from_pages([ocr(engine, image)], engine.info, ["eng"]), data,
                     FileFormat.JPEG)

    with pikepdf.open(io.BytesIO(pdf)) as opened:
        xobject = opened.pages[0].Resources.XObject.Im0
        assert xobject.Filter == pikepdf.Name.DCTDecode
        passed = xobject.read_raw_bytes()
    assert passed == strip_jpeg_metadata(data)[0]  # the scan data, byte for byte
    assert b"secret comment" not in pdf
    assert len(pdf) <= 1.1 * len(data)


@pytest.mark.parametrize("name", ["gen_jpeg_exif_gps.jpg", "pil_exif_gps.jpg"])
def test_no_exif_gps_xmp_or_comment_of_a_hostile_jpeg_survives_and_pixels_are_unchanged(
    name: str
) -> None:
    data = (HOSTILE / name).read_bytes()
    with Image.open(io.BytesIO(data)) as original:
        size = original.size
        pixels = original.convert("RGB")
    page = Page(number=1, width=size[0], height=size[1], angle=0,
                lines=[line_of(word("hello", 1, 1, 10, 5))])
    pdf = searchable(Document.from_pages([page], _engine_info(), ["eng"]), data,
                     FileFormat.JPEG)

    for needle in (b"Exif", b"GPS", b"xmp", b"http://ns.adobe.com", b"48.8583N", b"ICC_PROFILE",
                   b"JFIF", *FORBIDDEN):
        assert needle not in pdf, needle
    with pikepdf.open(io.BytesIO(pdf)) as opened:
        xobject = opened.pages[0].Resources.XObject.Im0
        embedded = Image.open(io.BytesIO(xobject.read_raw_bytes())).convert("RGB")
    assert ImageChops.difference(embedded, pixels).getbbox() is None  # no re-encode


def test_an_exif_rotated_jpeg_is_placed_upright_as_it_was_read(engine: TesseractEngine) -> None:
    upright = text_page(LINES)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 undoes this
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", quality=95, exif=exif, dpi=(300, 300))
    page = ocr(engine, upright)
    pdf = searchable(Document.from_pages([page], engine.info, ["eng"]), data, FileFormat.JPEG)

    document = pdfium.PdfDocument(pdf)
    assert document[0].get_size() == pytest.approx((1700 * 72 / 300, 1000 * 72 / 300), abs=0.01)
    drawn = document[0].render(scale=300 / 72).to_pil().convert("L").resize(upright.size)
    difference = ImageChops.difference(drawn, upright.convert("L"))
    assert sum(difference.histogram()[64:]) < 0.01 * upright.width * upright.height
    assert pdfium_words(pdf)[0].split() == " ".join(LINES).split()


def test_pdf_input_keeps_born_digital_pages_and_grafts_words_only_onto_scans(
    engine: TesseractEngine, tmp_path: Path
) -> None:
    scan = text_page(["Scanned page words"], size=(1275, 1650))
    source = mixed_pdf([("text", ["Born digital line"]), ("scan", scan)])
    rendered = pdfium.PdfDocument(source)[1].render(scale=150 / 72).to_pil()
    scanned = ocr(engine, rendered, 2)
    born = Page(number=1, width=1275, height=1650, angle=0, source=PageSource.EXTRACTED,
                lines=[line_of(word("Born", 150, 140, 80), word("digital", 240, 140, 100),
                               word("line", 350, 140, 60))])
    document = Document.from_pages([born, scanned], engine.info, ["eng"])
    pdf = searchable(document, source, FileFormat.PDF, (1, 2))

    with pikepdf.open(io.BytesIO(source)) as original, pikepdf.open(io.BytesIO(pdf)) as out:
        assert len(out.pages) == 2
        # The born-digital page: its own content, untouched (no second text layer).
        assert out.pages[0].Contents.read_bytes() == original.pages[0].Contents.read_bytes()
        assert "/Im0" in out.pages[1].Resources.XObject  # the scan stays the original image
    assert pdfium_words(pdf, 0)[0].split() == ["Born", "digital", "line"]
    assert pdfium_words(pdf, 1)[0].split() == ["Scanned", "page", "words"]
    assert pdftotext(pdf).split() == ["Born", "digital", "line", "Scanned", "page", "words"]
    qpdf_check(pdf, tmp_path)


def test_only_selected_pages_are_written(engine: TesseractEngine) -> None:
    pages = [text_page([f"Page number {n}"]) for n in (1, 2, 3)]
    source = pdf_of(pages)
    page = ocr(engine, pdfium.PdfDocument(source)[2].render(scale=150 / 72).to_pil(), 3)
    pdf = searchable(Document.from_pages([page], engine.info, ["eng"]), source,
                     FileFormat.PDF, (3,))
    assert len(pdfium.PdfDocument(pdf)) == 1
    assert pdfium_words(pdf)[0].split() == ["Page", "number", "3"]


@pytest.mark.parametrize("name", [
    "gen_pdf_javascript_openaction.pdf", "gen_pdf_launch_action.pdf",
    "gen_pdf_embedded_file.pdf", "pdfjs_attachment.pdf", "pdfjs_evaljs.pdf",
    "omp_livecycle_xfa.pdf",
])
def test_no_script_action_attachment_form_or_metadata_of_a_hostile_pdf_survives(
    name: str, tmp_path: Path
) -> None:
    data = (HOSTILE / name).read_bytes()
    count = len(pdfium.PdfDocument(data))
    pages = [Page(number=n, width=1275, height=1650, angle=0,
                  lines=[line_of(word("grafted", 100, 100, 200))]) for n in range(1, count + 1)]
    pdf = searchable(Document.from_pages(pages, _engine_info(), ["eng"]), data, FileFormat.PDF,
                     tuple(range(1, count + 1)))

    with pikepdf.open(io.BytesIO(pdf)) as out:
        assert "/Info" not in out.trailer
        assert set(out.Root.keys()) == {"/Type", "/Pages"}
        plain = io.BytesIO()
        out.save(plain, qdf=True, compress_streams=False, object_stream_mode=
                 pikepdf.ObjectStreamMode.disable)  # every dictionary in the open
    for needle in FORBIDDEN:
        assert needle not in plain.getvalue(), needle
    assert b"evil.exe" not in plain.getvalue()
    assert "grafted" in pdfium_words(pdf)[0]
    qpdf_check(pdf, tmp_path)


def _engine_info() -> EngineInfo:
    return EngineInfo(name="tesseract", version="5")


def test_actions_and_metadata_a_page_itself_carries_are_removed_too(tmp_path: Path) -> None:
    """What the hostile corpus keeps at document level is left behind with the old catalog;
    this page carries its own: an open-page script, a link that runs one, XMP on the page
    and on its image, piece info."""
    source = pikepdf.open(io.BytesIO(mixed_pdf([("scan", text_page(["x"], size=(200, 200)))])))
    page = source.pages[0]
    script = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="app.alert('page')")
    page.obj.AA = pikepdf.Dictionary(O=script)
    page.obj.Annots = source.make_indirect(pikepdf.Array([pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 100, 100],
        A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI="http://127.0.0.1:9/leak"))]))
    xmp = source.make_stream(b"<x:xmpmeta>GPS 48.8583N</x:xmpmeta>")
    page.obj.Metadata = xmp
    page.obj.PieceInfo = pikepdf.Dictionary(Leak=pikepdf.Dictionary(Private="48.8583N"))
    page.Resources.XObject.Im0.Metadata = xmp
    data = io.BytesIO()
    source.save(data)

    pdf = searchable(Document.from_pages([Page(number=1, width=200, height=200, angle=0,
                                               lines=[])], _engine_info(), ["eng"]),
                     data.getvalue(), FileFormat.PDF)

    with pikepdf.open(io.BytesIO(pdf)) as out:
        plain = io.BytesIO()
        out.save(plain, qdf=True, compress_streams=False,
                 object_stream_mode=pikepdf.ObjectStreamMode.disable)
    for needle in (*FORBIDDEN, b"48.8583N", b"127.0.0.1", b"app.alert", b"/PieceInfo"):
        assert needle not in plain.getvalue(), needle
    qpdf_check(pdf, tmp_path)


def test_pdfa_2b_adds_an_srgb_output_intent_and_xmp_naming_the_conformance(
    engine: TesseractEngine, tmp_path: Path
) -> None:
    image = text_page(LINES)
    data = encode(image, "JPEG", quality=85)
    source = SourceFile(data, FileFormat.JPEG, (1,), LIMITS, pdf_profile=PdfProfile.PDFA_2B)
    document = Document.from_pages([ocr(engine, image)], engine.info, ["eng"])
    pdf = render_isolated(OutputFormat.PDF, document.model_dump_json().encode(), source)

    with pikepdf.open(io.BytesIO(pdf)) as out:
        assert "/Info" not in out.trailer
        [intent] = out.Root.OutputIntents
        assert intent.S == pikepdf.Name.GTS_PDFA1 and intent.DestOutputProfile.N == 3
        assert "/Filter" not in out.Root.Metadata  # XMP stays readable, as PDF/A asks
        xmp = out.Root.Metadata.read_bytes()
        assert b">2</pdfaid:part>" in xmp and b">B</pdfaid:conformance>" in xmp
        font = out.pages[0].Resources.Font.FOcr.DescendantFonts[0].FontDescriptor
        assert "/FontFile2" in font  # embedded
    assert pdftotext(pdf).split() == " ".join(LINES).split()
    qpdf_check(pdf, tmp_path)


@pytest.mark.parametrize(("fmt", "mode", "bits"), [("PNG", "RGB", 8), ("PNG", "L", 8),
                                                  ("TIFF", "1", 1), ("WEBP", "RGB", 8)])
def test_other_images_go_in_losslessly(fmt: str, mode: str, bits: int) -> None:
    image = text_page(LINES, size=(600, 300), font_px=30).convert(mode)
    save_args = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(image, fmt, **save_args)
    page = Page(number=1, width=600, height=300, angle=0, lines=[])
    pdf = searchable(Document.from_pages([page], _engine_info(), ["eng"]), data, FileFormat[fmt])

    with pikepdf.open(io.BytesIO(pdf)) as out:
        xobject = out.pages[0].Resources.XObject.Im0
        assert xobject.BitsPerComponent == bits
        placed = pikepdf.PdfImage(xobject).as_pil_image()
    expected = image.convert("L" if mode in ("L", "1") else "RGB")
    assert ImageChops.difference(placed.convert(expected.mode), expected).getbbox() is None


def test_the_searchable_pdf_reads_the_lines_of_ocrd_pages_only() -> None:
    # The lines of a page it keeps as the PDF has it are not even sent to the sandbox.
    page = Page(number=1, width=10, height=10, angle=0.0, lines=[])
    assert RENDERER.reads_lines(page)
    assert not RENDERER.reads_lines(page.model_copy(update={"source": PageSource.EXTRACTED}))
