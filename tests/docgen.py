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
# were occasionally misread (WF as WEF), which made canary tests flaky.
CANARY_WORDS = (
    "apple", "river", "stone", "cloud", "garden", "silver", "window", "forest", "candle",
    "harbor", "meadow", "pencil", "rocket", "saddle", "tunnel", "velvet", "walnut", "yellow",
    "bridge", "copper", "dinner", "engine", "finger", "gentle", "hollow", "island", "jacket",
    "kitten", "ladder", "magnet", "number", "orange", "planet", "quiet", "rabbit", "summer",
    "timber", "useful", "valley", "winter", "market", "button", "circle", "doctor", "father",
    "golden", "hunter", "letter", "mother", "nature", "office", "people", "public", "record",
)


def canary() -> str:
    """A unique string to plant in a document and search for on disk and in logs
    (54**4, about 8.5 million, variants: unique within a run)."""
    return "canary " + " ".join(secrets.choice(CANARY_WORDS) for _ in range(4))
