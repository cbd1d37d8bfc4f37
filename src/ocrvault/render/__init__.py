"""Output formats rendered from a Document. Each renderer is a pure function to bytes."""

from __future__ import annotations

from collections.abc import Callable

from ocrvault.model import Document, OutputFormat


def render_text(document: Document) -> bytes:
    return document.text.encode("utf-8")


RENDERERS: dict[OutputFormat, Callable[[Document], bytes]] = {
    OutputFormat.TEXT: render_text,
}


def render(document: Document, fmt: OutputFormat) -> bytes:
    return RENDERERS[fmt](document)
