"""Ingest: turn uploaded bytes into checked, metadata-free page images.

Flow: :func:`sniff` decides the format from magic bytes (in-process: pure byte
checks); :meth:`Ingestor.inspect` applies the byte, page and pixel limits from the
headers; :meth:`Ingestor.decode` streams the selected pages as ``L``/``RGB`` pixels.
Everything that parses the file with native code (Pillow, libtiff, pdfium), headers
included, runs in the :class:`Sandbox`.

Residual risks, which these guards do not cover:

* The sandbox is process isolation plus rlimits, not a security boundary against code
  execution. Code that an exploit runs in a child has the service's user id and
  environment: it can read what the service can read (the data dir, the keyring
  file, ``OCRVAULT_MASTER_KEY`` if the key is passed that way), open network
  connections, delete or rename files, create empty ones, signal other processes of
  the same user, raise its own CPU soft limit (the wall-clock timeout still stops it)
  and start processes that outlive it. Deploy with a dedicated user and a container,
  seccomp or network policy to close these.
* ``RLIMIT_AS`` caps address space, not resident memory; several children can each
  use up to their cap at once, so size ``memory_bytes`` x pool size to the host.
* Within a child, decompression (PDF Flate streams, PNG IDAT) is bounded only by
  the memory cap and the time budgets, not per stream.
* Limits are checked against what headers declare; a decoder that disagrees with its
  own header is bounded by the memory cap. A PDF page's size comes from pdfium's view
  of the page box (``/UserUnit`` is ignored, as pdfium renders it).
* The parent checks only the shape of returned pages (mode, size, byte count); a
  subverted child can still return wrong pixels for the document it was given.
* pdfium renders static annotation appearances (stamps, filled form fields); forms
  are never initialised, so no script, action or XFA runs and nothing is fetched.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from ocrvault.ingest.decode import decode_page, decode_pages
from ocrvault.ingest.inspect import check_file_size, inspect_header
from ocrvault.ingest.pages import parse_page_selection
from ocrvault.ingest.sandbox import Budget, Sandbox
from ocrvault.ingest.sniff import sniff
from ocrvault.ingest.types import (
    DecodedPage,
    ExtractedPage,
    FileFormat,
    InputInfo,
    Limits,
    PdfText,
)

__all__ = [
    "DecodedPage",
    "ExtractedPage",
    "FileFormat",
    "Ingestor",
    "InputInfo",
    "Limits",
    "PdfText",
    "Sandbox",
    "parse_page_selection",
    "sniff",
]


class Ingestor:
    """Checks and decodes uploads under ``limits``, parsing them only inside ``sandbox``."""

    def __init__(self, limits: Limits, sandbox: Sandbox) -> None:
        self.limits = limits
        self.sandbox = sandbox  # its owner closes it

    def warm(self) -> None:
        """Start the sandbox's children, each inspecting a tiny image once (see
        :meth:`Sandbox.warm`)."""
        self.sandbox.warm(inspect_header, _blank_png(), FileFormat.PNG, self.limits)

    def inspect(self, data: bytes, pdf_password: str | None = None) -> InputInfo:
        """Format, page count and size of ``data``, or ``InputRejected`` if it breaks a limit."""
        check_file_size(data, self.limits)  # before the bytes are copied to a child
        fmt = sniff(data)
        return self.sandbox.call(inspect_header, data, fmt, self.limits, pdf_password)

    def decode(
        self, data: bytes, fmt: FileFormat, pages: list[int], pdf_password: str | None = None,
        pdf_text: PdfText = PdfText.OCR,
    ) -> Iterator[DecodedPage | ExtractedPage]:
        """Decode ``pages`` (1-based) of a file :meth:`inspect` accepted as ``fmt``, one at a
        time; a page is decoded when it is asked for, and its limits checked again. A PDF
        page read from its own text layer (``pdf_text``) comes as an :class:`ExtractedPage`."""
        for page in self.sandbox.call_iter(
            decode_pages, data, fmt, pages, self.limits, pdf_password, pdf_text
        ):
            yield page.to_page()

    def budget(self) -> Budget:
        """The decode timeout of one file, to share between the pages of a document."""
        return self.sandbox.budget()

    def decode_page(self, key: str | None, data: bytes, fmt: FileFormat, number: int,
                    pdf_password: str | None = None, budget: Budget | None = None,
                    pdf_text: PdfText = PdfText.OCR,
                    grey: bool = False) -> DecodedPage | ExtractedPage:
        """Decode page ``number`` (1-based) of a file :meth:`inspect` accepted as ``fmt``;
        a PDF page read from its own text layer (``pdf_text``) comes as an
        :class:`ExtractedPage`, pixels come as 8-bit grey with ``grey``. ``key`` names
        ``data``: the child that decoded a page of it keeps it, so the next page costs no
        copy (see :meth:`Sandbox.call_with`); :meth:`forget` ``key`` after the last page.
        No key: nothing is kept (a file of one page). Every page of a file spends from one
        ``budget``."""
        if key is None:
            page = self.sandbox.call(decode_page, data, fmt, number, self.limits, pdf_password,
                                     pdf_text, grey)
        else:
            page = self.sandbox.call_with(key, data, decode_page, fmt, number, self.limits,
                                          pdf_password, pdf_text, grey, budget=budget)
        return page.to_page()

    def forget(self, key: str) -> None:
        """Drop the file kept under ``key`` from the decode children."""
        self.sandbox.release(key)


def _blank_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), 255).save(out, "PNG")
    return out.getvalue()
