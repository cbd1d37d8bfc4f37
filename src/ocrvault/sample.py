"""A sample page to try the API on, drawn by the server, so the first ``curl`` works anywhere.

Deterministic: Pillow's built-in scalable font (no system font needed) and fixed text, so
its OCR is the same on every install and a test can compare it.
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageDraw, ImageFont

SAMPLE_LINES = (
    "ocrvault sample page",
    "Invoice 2041 for the garden window",
    "Total due within thirty days",
)
_FONT_PX = 48


@functools.cache
def sample_png() -> bytes:
    """A white page of :data:`SAMPLE_LINES` in black, as PNG bytes."""
    page = Image.new("L", (1400, 400), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=_FONT_PX)
    for number, line in enumerate(SAMPLE_LINES):
        draw.text((_FONT_PX, _FONT_PX + number * int(_FONT_PX * 1.8)), line, fill="black",
                  font=font)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()
