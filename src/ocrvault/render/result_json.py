"""The result as JSON: the same document ``GET /v1/jobs/{id}`` embeds, on its own."""

from __future__ import annotations

from ocrvault.model import Document, OutputFormat
from ocrvault.render.base import DocumentRenderer


def render_json(document: Document) -> bytes:
    return document.model_dump_json().encode("utf-8")


RENDERER = DocumentRenderer(OutputFormat.JSON, render_json, view_of_result=True)
