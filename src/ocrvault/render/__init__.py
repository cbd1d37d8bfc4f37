"""Output formats rendered from a job's result: json, text, hOCR, ALTO, searchable PDF.

Each format is one module here with a ``RENDERER`` (see :mod:`ocrvault.render.base`);
:mod:`ocrvault.render.registry` finds them. Renderers that draw the input (the searchable
PDF) parse untrusted bytes, so their callers run them in the decode sandbox.
"""

from __future__ import annotations

from ocrvault.model import Document, OutputFormat
from ocrvault.render.base import PdfProfile, Renderer, SourceFile
from ocrvault.render.registry import RendererRegistry, default_registry, render_isolated

__all__ = ["PdfProfile", "Renderer", "RendererRegistry", "SourceFile", "default_registry",
           "render", "render_isolated"]


def render(document: Document, fmt: OutputFormat) -> bytes:
    """``fmt`` drawn from the result alone; a format that needs the input raises ValueError."""
    renderer = default_registry().get(fmt)
    if renderer.reads_input:
        raise ValueError(f"{fmt.value} is drawn from the input: render it in the sandbox")
    return renderer.render(document, None)
