"""Small helpers the markup renderers (hOCR, ALTO) share: boxes and XML-safe text."""

from __future__ import annotations

import math
import re

from ocrvault.model import Polygon

# Characters XML 1.0 forbids (C0 controls but tab/newline/return, surrogates, U+FFFE/F):
# an engine or a PDF text layer may hand them back, and one makes the whole file invalid.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Box = tuple[int, int, int, int]  # left, top, right, bottom: whole pixels


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (escaping is the writer's job)."""
    return _NOT_XML.sub("", text)


def box_of(polygon: Polygon) -> Box:
    """The axis-aligned box around an 8-number polygon, widened to whole pixels."""
    xs, ys = polygon[0::2], polygon[1::2]
    left, top = math.floor(max(min(xs), 0)), math.floor(max(min(ys), 0))
    return left, top, max(math.ceil(max(xs)), left), max(math.ceil(max(ys)), top)


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))
