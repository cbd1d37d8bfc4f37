"""Searchable PDF: each page as it came, under an invisible text layer set on the word boxes.

One PDF page per page of the result, built in memory with pikepdf.

* Image input: the page image fills the page. A JPEG goes in as it came (DCT passthrough,
  no re-encode) with its APP segments and comments removed losslessly (EXIF with GPS,
  XMP, ICC, JFIF thumbnails; Adobe's APP14 stays: it says how to read the colours); its
  EXIF orientation is applied by the placing matrix, not by touching the data. Other
  images are the decoder's metadata-free pixels (ingest/decode.py), Flate-compressed,
  1 bit per pixel where the page is pure black and white: lossless.
* PDF input: the original pages (vectors, fonts, existing text) are kept; the text layer is
  grafted only onto pages that were OCR'd, as OCRmyPDF does, never onto pages whose own
  text was extracted. Annotation appearances are flattened into the page (so stamps and
  filled fields still show), then annotations go. Page dictionaries keep only the keys
  that draw the page; every action, script, attachment, form, XMP stream and piece
  info left in what the pages reach is removed, and the document gets a fresh catalog
  without Info dictionary, outlines, names, open action or forms.

The words are set in Tesseract's "GlyphLessFont" (render/glyphless.ttf, from
tesseract-ocr's tessdata/pdf.ttf, Apache-2.0): a CID font whose every glyph is empty and
500/1000 em wide, with a ToUnicode map from each UTF-16 unit to itself, in render mode 3
(invisible). Each word is stretched (Tz) to its box, so selecting highlights the word.

These functions parse the input (pikepdf, pdfium, Pillow): the worker calls them through
the decode sandbox (``render_isolated``), never in its own process.

Residual risks: the PDF comes back from the sandbox child as bytes that the worker stores
without parsing them again (parsing them would be parsing what a subverted child chose),
so a child taken over by an exploit could return any PDF for its own job. Text that a PDF
page draws as vector outlines stays unsearchable unless the page was OCR'd. Form fields
whose appearance qpdf cannot generate are dropped undrawn. One sandbox call renders the
whole document, bounded by the decode timeout.
"""

from __future__ import annotations

import ctypes
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.resources import files

import pikepdf
import pypdfium2 as pdfium
from PIL import Image, ImageCms

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest.decode import PagePixels, decode_pages
from ocrvault.ingest.types import FileFormat
from ocrvault.model import Document, OutputFormat, Page, PageSource
from ocrvault.render.base import PdfProfile, SourceFile

GLYPHLESS_FONT = files("ocrvault.render").joinpath("glyphless.ttf").read_bytes()
_CHAR_WIDTH = 0.5  # em: every glyph of the glyphless font
_DEFAULT_DPI = 300.0
_Point = tuple[float, float]
_Matrix = tuple[float, float, float, float, float, float]

# What a kept page dictionary may hold: what draws it. /Annots, /AA, /Metadata,
# /PieceInfo, /Thumb, /B, /StructParents and the rest go.
_PAGE_KEYS = frozenset({"/Type", "/Parent", "/Resources", "/Contents", "/MediaBox", "/CropBox",
                        "/BleedBox", "/TrimBox", "/ArtBox", "/Rotate", "/UserUnit", "/Group"})
# Removed from every dictionary the kept pages reach (XObjects, resources, ...).
_BANNED_KEYS = ("/Metadata", "/PieceInfo", "/AA", "/A", "/JS", "/JavaScript", "/OpenAction",
                "/EmbeddedFile", "/EmbeddedFiles", "/AcroForm", "/XFA", "/URI", "/Launch")


class SearchablePdfRenderer:
    format = OutputFormat.PDF
    reads_input = True
    view_of_result = False

    def reads_lines(self, page: Page) -> bool:
        return page.source is PageSource.OCR  # a page with its own text is kept as it is

    def render(self, document: Document, source: SourceFile | None) -> bytes:
        if source is None:
            raise ValueError("the searchable PDF is drawn from the input")
        if len(source.pages) != len(document.pages):
            raise ValueError("the result and the source disagree on the pages")
        pdf = pikepdf.new()
        font = _glyphless_font(pdf)
        if source.format is FileFormat.PDF:
            _graft_onto_pdf(pdf, font, document, source)
        else:
            for page, image in zip(document.pages, _page_images(source), strict=True):
                _add_image_page(pdf, font, page, image)
        if source.pdf_profile is PdfProfile.PDFA_2B:
            _declare_pdfa_2b(pdf)
        return _saved(pdf)


RENDERER = SearchablePdfRenderer()


# ---- the text layer ----------------------------------------------------------------------


def text_layer(page: Page) -> bytes:
    """Operators that set ``page``'s words, invisible, in a space of page pixels with the
    origin at the bottom left (the caller's ``cm`` maps it onto the PDF page)."""
    ops = ["BT", "3 Tr"]
    for line in page.lines:
        words = [(w.text.strip(), _box(w.polygon)) for w in line.words if w.text.strip()]
        # One size and baseline per line: words of one size on one baseline read as one
        # line to every extractor (per-word heights split a line where a word has no
        # ascender). Each word is stretched to its own width.
        _, line_top, _, line_bottom = _box(line.polygon)
        size = max(line_bottom - line_top, 1.0)
        for index, (text, (left, _top, right, _bottom)) in enumerate(words):
            span = right - left
            if index + 1 < len(words):  # a space after it, reaching to the next word
                text += " "
                span = max(words[index + 1][1][0] - left, span)
            units = len(text.encode("utf-16-be")) // 2
            stretch = 100.0 * max(span, 1.0) / (units * _CHAR_WIDTH * size)
            ops.append(f"/FOcr {size:.2f} Tf {stretch:.2f} Tz 1 0 0 1 {left:.2f} "
                       f"{page.height - line_bottom:.2f} Tm <{text.encode('utf-16-be').hex()}> Tj")
    ops.append("ET")
    return "\n".join(ops).encode("ascii")


def _box(polygon: list[float]) -> tuple[float, float, float, float]:
    xs, ys = polygon[0::2], polygon[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _cm(matrix: _Matrix) -> bytes:
    return ("{:.6f} {:.6f} {:.6f} {:.6f} {:.4f} {:.4f} cm".format(*matrix)).encode("ascii")


def _affine(mapping: Callable[[float, float], _Point]) -> _Matrix:
    """The PDF matrix of an affine ``mapping``, from where it sends three points."""
    (ex, ey), (ax, ay), (cx, cy) = mapping(0, 0), mapping(1, 0), mapping(0, 1)
    return ax - ex, ay - ey, cx - ex, cy - ey, ex, ey


def _glyphless_font(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    font_file = pikepdf.Stream(pdf, GLYPHLESS_FONT)
    font_file.Length1 = len(GLYPHLESS_FONT)
    cid_to_gid = pikepdf.Stream(pdf, zlib.compress(b"\x00\x01" * 65536, 9))
    cid_to_gid.Filter = pikepdf.Name.FlateDecode
    descriptor = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name.GlyphLessFont, Flags=5,
        FontBBox=[0, 0, 500, 1000], ItalicAngle=0, Ascent=1000, Descent=0, CapHeight=1000,
        StemV=80, FontFile2=font_file))
    descendant = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.CIDFontType2,
        BaseFont=pikepdf.Name.GlyphLessFont, DW=500, CIDToGIDMap=cid_to_gid,
        CIDSystemInfo=pikepdf.Dictionary(Registry="Adobe", Ordering="Identity", Supplement=0),
        FontDescriptor=descriptor))
    to_unicode = pikepdf.Stream(pdf, _TO_UNICODE)
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0, BaseFont=pikepdf.Name.GlyphLessFont,
        Encoding=pikepdf.Name("/Identity-H"), DescendantFonts=[descendant],
        ToUnicode=to_unicode))


_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identify-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
"""


# ---- image input ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PageImage:
    """One page's picture: the XObject's stream data and dictionary, how it stands."""

    data: bytes
    size: tuple[int, int]  # as stored
    filter: str | None
    colour_space: str
    bits: int
    dpi: float
    orientation: int = 1  # EXIF orientation, applied when placing
    decode: tuple[int, ...] = ()


def _page_images(source: SourceFile) -> Iterator[_PageImage]:
    dpi = _dpi_of(source)
    if source.format is FileFormat.JPEG:
        jpeg = _jpeg_image(source.data, dpi)
        # PDF/A-2b with an sRGB output intent admits no DeviceCMYK: such a JPEG goes in as
        # its decoded RGB pixels instead (lossless from there on).
        if not (jpeg.colour_space == "/DeviceCMYK"
                and source.pdf_profile is PdfProfile.PDFA_2B):
            yield jpeg
            return
    for pixels in decode_pages(source.data, source.format, list(source.pages), source.limits):
        assert isinstance(pixels, PagePixels), "an image's pages come as pixels"
        image = Image.frombytes(pixels.mode, pixels.size, pixels.pixels)
        yield _lossless_image(image, dpi)


def _lossless_image(image: Image.Image, dpi: float) -> _PageImage:
    if image.mode == "L" and set(image.histogram()[1:255]) == {0}:  # only black and white
        bilevel = image.point(lambda v: 255 if v >= 128 else 0).convert("1")
        return _PageImage(zlib.compress(bilevel.tobytes(), 6), image.size, "/FlateDecode",
                          "/DeviceGray", 1, dpi)
    space = "/DeviceGray" if image.mode == "L" else "/DeviceRGB"
    return _PageImage(zlib.compress(image.tobytes(), 6), image.size, "/FlateDecode", space, 8,
                      dpi)


def _jpeg_image(data: bytes, dpi: float) -> _PageImage:
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
        orientation = int(image.getexif().get(0x0112, 1))
        mode, size = image.mode, image.size
    stripped, adobe = strip_jpeg_metadata(data)
    spaces = {"L": "/DeviceGray", "RGB": "/DeviceRGB", "CMYK": "/DeviceCMYK"}
    if mode not in spaces:
        raise InputRejected(ErrorCode.CORRUPT_FILE,
                            f"A {mode} JPEG cannot be placed in a PDF; convert it to RGB.")
    # Adobe's CMYK JPEGs store inverted samples, which viewers undo with this Decode array.
    decode = (1, 0) * 4 if mode == "CMYK" and adobe else ()
    return _PageImage(stripped, size, "/DCTDecode", spaces[mode], 8, dpi,
                      orientation if 1 <= orientation <= 8 else 1, decode)


def strip_jpeg_metadata(data: bytes) -> tuple[bytes, bool]:
    """``data`` without APP0-APP13, APP15 and COM segments, byte for byte otherwise; and
    whether an Adobe APP14 segment (kept: it sets the colour transform) was present.

    Segments are walked up to the first scan; from there the entropy-coded data and any
    later tables are copied as they are.
    """
    if data[:2] != b"\xff\xd8":
        raise InputRejected(ErrorCode.CORRUPT_FILE, "The JPEG file is damaged.")
    out = bytearray(b"\xff\xd8")
    position, adobe = 2, False
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise InputRejected(ErrorCode.CORRUPT_FILE, "The JPEG file is damaged.")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is image data
            out += data[position:]
            return bytes(out), adobe
        length = int.from_bytes(data[position + 2:position + 4], "big")
        end = position + 2 + length
        if length < 2 or end > len(data):
            raise InputRejected(ErrorCode.CORRUPT_FILE, "The JPEG file is damaged.")
        is_app = 0xE0 <= marker <= 0xEF
        if marker == 0xEE and data[position + 4:position + 9] == b"Adobe":
            adobe = True
            out += data[position:end]
        elif not (is_app or marker == 0xFE):
            out += data[position:end]
        position = end
    raise InputRejected(ErrorCode.CORRUPT_FILE, "The JPEG file has no image data.")


def _dpi_of(source: SourceFile) -> float:
    """The resolution the file declares (for the page size only), or 300 dpi."""
    try:
        with Image.open(io.BytesIO(source.data), formats=[source.format.name]) as image:
            dpi = image.info.get("dpi", (0, 0))[0]
    except Exception:  # a missing or odd density is no reason to fail
        return _DEFAULT_DPI
    return float(dpi) if isinstance(dpi, int | float) and 50 <= dpi <= 2400 else _DEFAULT_DPI


# Stored pixel (u, v) of a w x h image to upright pixel, per EXIF orientation.
_ORIENT: dict[int, Callable[[float, float, float, float], _Point]] = {
    1: lambda u, v, w, h: (u, v),
    2: lambda u, v, w, h: (w - u, v),
    3: lambda u, v, w, h: (w - u, h - v),
    4: lambda u, v, w, h: (u, h - v),
    5: lambda u, v, w, h: (v, u),
    6: lambda u, v, w, h: (h - v, u),
    7: lambda u, v, w, h: (h - v, w - u),
    8: lambda u, v, w, h: (v, w - u),
}


def _add_image_page(pdf: pikepdf.Pdf, font: pikepdf.Dictionary, page: Page,
                    image: _PageImage) -> None:
    width, height = image.size
    upright = (height, width) if image.orientation >= 5 else (width, height)
    if upright != (page.width, page.height):
        raise ValueError("the page image and the result disagree on the page size")
    scale = 72.0 / image.dpi
    page_w, page_h = page.width * scale, page.height * scale

    def placed(s: float, t: float) -> _Point:
        x, y = _ORIENT[image.orientation](s * width, (1 - t) * height, width, height)
        return x * scale, page_h - y * scale

    xobject = pikepdf.Stream(pdf, image.data)
    xobject.Type, xobject.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    xobject.Width, xobject.Height = width, height
    xobject.ColorSpace = pikepdf.Name(image.colour_space)
    xobject.BitsPerComponent = image.bits
    if image.filter:
        xobject.Filter = pikepdf.Name(image.filter)
    if image.decode:
        xobject.Decode = list(image.decode)
    words = _cm((scale, 0, 0, scale, 0, 0))
    content = b"q " + _cm(_affine(placed)) + b" /Im0 Do Q\nq " + words + b"\n" + \
        text_layer(page) + b"\nQ\n"
    pdf_page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, round(page_w, 3), round(page_h, 3)],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=xobject),
                                     Font=pikepdf.Dictionary(FOcr=font)),
        Contents=pikepdf.Stream(pdf, content))
    pdf.pages.append(pikepdf.Page(pdf_page))


# ---- PDF input --------------------------------------------------------------------------


def _graft_onto_pdf(pdf: pikepdf.Pdf, font: pikepdf.Dictionary, document: Document,
                    source: SourceFile) -> None:
    try:
        original = pikepdf.open(io.BytesIO(source.data), password=source.pdf_password or "")
    except pikepdf.PdfError:
        raise InputRejected(ErrorCode.CORRUPT_FILE, "The PDF cannot be opened to write the "
                            "searchable PDF.") from None
    rendered = pdfium.PdfDocument(source.data, password=source.pdf_password)
    with original:
        try:
            original.generate_appearance_streams()
            original.flatten_annotations(mode="all")
        except pikepdf.PdfError:
            pass  # a form qpdf cannot draw stays undrawn: its annotations go below anyway
        for result_page, number in zip(document.pages, source.pages, strict=True):
            pdf.pages.append(original.pages[number - 1])
            page = pdf.pages[-1]
            for key in set(page.obj.keys()) - _PAGE_KEYS:
                del page.obj[key]
            if result_page.source is PageSource.OCR and result_page.lines:
                matrix = _pixels_to_page(rendered, number, result_page)
                name = page.add_resource(font, pikepdf.Name.Font, prefix="FOcr")
                layer = text_layer(result_page).replace(b"/FOcr ", f"{name} ".encode())
                # The page's own graphics state must not leak into the layer: wrap it.
                page.contents_add(pikepdf.Stream(pdf, b"q\n"), prepend=True)
                page.contents_add(pikepdf.Stream(pdf, b"\nQ\n"))
                page.contents_add(pikepdf.Stream(pdf, b"q " + _cm(matrix) + b"\n" + layer
                                                 + b"\nQ\n"))
    rendered.close()
    _scrub(pdf)


def _pixels_to_page(rendered: pdfium.PdfDocument, number: int, page: Page) -> _Matrix:
    """The matrix from the result's page pixels (origin bottom left) to the PDF page's user
    space, as pdfium rendered the page for OCR (crop box, /Rotate and scale included)."""
    pdf_page = rendered[number - 1]
    try:
        def user_space(px: float, py: float) -> _Point:
            # pdfium maps whole device pixels; scale the unit points up to the corners.
            dx, dy = round(px * page.width), round(page.height - py * page.height)
            ux, uy = ctypes.c_double(), ctypes.c_double()
            pdfium.raw.FPDF_DeviceToPage(pdf_page.raw, 0, 0, page.width, page.height, 0,
                                         dx, dy, ctypes.byref(ux), ctypes.byref(uy))
            return ux.value, uy.value

        a, b, c, d, e, f = _affine(user_space)
        return a / page.width, b / page.width, c / page.height, d / page.height, e, f
    finally:
        pdf_page.close()


def _scrub(pdf: pikepdf.Pdf) -> None:
    """Remove what acts or tells, from every object the new document holds."""
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            for key in _BANNED_KEYS:
                if key in obj:
                    del obj[key]


def _declare_pdfa_2b(pdf: pikepdf.Pdf) -> None:
    """What PDF/A-2b asks beyond what every output already is (fonts embedded, no
    encryption, scripts or actions): an sRGB output intent and XMP naming the conformance.
    The XMP holds that and nothing of the input. Offered for image input only (the
    pipeline refuses it for a PDF, whose own pages may break PDF/A)."""
    profile = pikepdf.Stream(pdf, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
                             .tobytes())
    profile.N = 3
    pdf.Root.OutputIntents = [pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFA1,
        OutputConditionIdentifier="sRGB IEC61966-2.1", Info="sRGB IEC61966-2.1",
        DestOutputProfile=profile)]
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as xmp:
        xmp["pdfaid:part"] = "2"
        xmp["pdfaid:conformance"] = "B"


def _saved(pdf: pikepdf.Pdf) -> bytes:
    if "/Info" in pdf.trailer:
        del pdf.trailer.Info
    out = io.BytesIO()
    pdf.save(out, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate,
             deterministic_id=True, linearize=False)
    return out.getvalue()
