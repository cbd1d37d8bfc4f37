"""Plain text: lines joined by newline, pages by form feed (the result's own ``text``)."""

from __future__ import annotations

from ocrvault.model import Document, OutputFormat
from ocrvault.render.base import DocumentRenderer


def render_text(document: Document) -> bytes:
    return document.text.encode("utf-8")


RENDERER = DocumentRenderer(OutputFormat.TEXT, render_text, view_of_result=True)
