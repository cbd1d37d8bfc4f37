"""Documents made in the test run: real rendered text, so OCR has something to read."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def text_page(lines: list[str], *, size: tuple[int, int] = (1700, 1000), font_px: int = 48,
              mode: str = "RGB") -> Image.Image:
    """A white page with ``lines`` in black, one under the other, left-aligned."""
    page = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT_PATH), font_px)
    y = font_px
    for line in lines:
        draw.text((font_px, y), line, fill="black", font=font)
        y += int(font_px * 1.6)
    return page


def encode(image: Image.Image, fmt: str, **save_args: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_args)
    return buf.getvalue()


def pdf_of(pages: list[Image.Image], dpi: int = 150) -> bytes:
    """A PDF whose pages are the given images (no text layer)."""
    buf = io.BytesIO()
    first, *rest = [p.convert("RGB") for p in pages]
    first.save(buf, format="PDF", save_all=True, append_images=rest, resolution=dpi)
    return buf.getvalue()


# Plain English words: Tesseract's dictionary reads them reliably, where random capitals
# were occasionally misread (WF as WEF), which made canary tests flaky. None of them is a
# word of ocrvault's own code: a canary word that is also a span attribute or a log word
# ("engine", "record", "number" were) is found where the document never went.
CANARY_WORDS = (
    "river", "stone", "silver", "forest", "candle", "harbor", "meadow", "pencil", "rocket",
    "saddle", "tunnel", "velvet", "walnut", "bridge", "copper", "dinner", "finger", "hollow",
    "island", "jacket", "kitten", "ladder", "magnet", "orange", "planet", "rabbit", "summer",
    "timber", "useful", "valley", "winter", "market", "button", "circle", "doctor", "father",
    "hunter", "mother", "nature", "banana", "carpet", "turtle", "violin", "pepper", "muffin",
    "cactus", "lizard", "wombat", "falcon", "harvest", "blanket", "pumpkin", "lantern",
    "compass",
)


def canary() -> str:
    """A unique string to plant in a document and search for on disk and in logs
    (54**4, about 8.5 million, variants: unique within a run)."""
    return "canary " + " ".join(secrets.choice(CANARY_WORDS) for _ in range(4))


# Pieces of a PDF made by :func:`mixed_pdf`: born-digital text, a scan, a scan under an
# invisible OCR layer (what another OCR tool leaves), a scan with a visible stamp.
Born = tuple[str, list[str]]  # ("text", lines)
Scan = tuple[str, Image.Image]  # ("scan", page image)
Layered = tuple[str, Image.Image, str]  # ("invisible" | "stamp", page image, layer text)


def mixed_pdf(pages: list[Born | Scan | Layered], dpi: int = 150) -> bytes:
    """A US Letter PDF (612 x 792 pt) of born-digital, scanned and layered pages."""
    import pikepdf  # only the tests that build PDFs need it

    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica,
        Encoding=pikepdf.Name.WinAnsiEncoding))
    for kind, *spec in pages:
        resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        ops: list[str] = []
        if kind == "text":
            lines = spec[0]
            assert isinstance(lines, list)
            ops.append("BT /F1 14 Tf 72 720 Td 18 TL")
            ops.extend(f"({_pdf_string(line)}) Tj T*" for line in lines)
            ops.append("ET")
        else:
            image = spec[0]
            assert isinstance(image, Image.Image)
            rgb = image.convert("RGB")
            xobject = pikepdf.Stream(pdf, encode(rgb, "JPEG", quality=92))
            xobject.Type, xobject.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
            xobject.Width, xobject.Height = rgb.size
            xobject.ColorSpace, xobject.BitsPerComponent = pikepdf.Name.DeviceRGB, 8
            xobject.Filter = pikepdf.Name.DCTDecode
            resources.XObject = pikepdf.Dictionary(Im0=xobject)
            ops.append("q 612 0 0 792 0 0 cm /Im0 Do Q")
            if kind in ("invisible", "stamp"):
                mode = 3 if kind == "invisible" else 0
                ops.append(f"BT {mode} Tr /F1 12 Tf 72 400 Td ({_pdf_string(str(spec[1]))}) Tj ET")
        page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792],
                                  Resources=resources,
                                  Contents=pikepdf.Stream(pdf, "\n".join(ops).encode("latin-1")))
        pdf.pages.append(pikepdf.Page(page))
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
