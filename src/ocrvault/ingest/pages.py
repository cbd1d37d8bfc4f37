"""Parse a page selection such as ``"1-3,5"`` (1-based, inclusive ranges).

A selection is checked twice: its shape and bounds when the request arrives
(:func:`parse_page_ranges`, before any byte of the upload is read), and against the
document's page count once the file is inspected (:func:`parse_page_selection`). As
``pdftoppm -f/-l`` do, a range that runs past the last page selects the pages that exist
(:func:`missing_pages` names the others, for the result to say so); a selection of no
existing page is refused with ``pages_out_of_range``. Every
number is bounded by its digit count *before* ``int()`` sees it: Python refuses to
convert more than 4,300 digits, and a page number that long is no page anyway.
"""

from __future__ import annotations

import re

from ocrvault.errors import ErrorCode, InputRejected

MAX_PAGE_NUMBER = 100_000
MAX_PAGE_RANGES = 100
MAX_PAGE_SPEC_CHARS = 1000

_PART = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")
_DIGITS = len(str(MAX_PAGE_NUMBER))


def parse_page_ranges(spec: str) -> tuple[tuple[int, int], ...]:
    """The ``(first, last)`` ranges of ``spec``, each rising within 1..MAX_PAGE_NUMBER."""
    if len(spec) > MAX_PAGE_SPEC_CHARS:
        raise _invalid(f"the selection is longer than {MAX_PAGE_SPEC_CHARS} characters")
    parts = spec.split(",")
    if len(parts) > MAX_PAGE_RANGES:
        raise _invalid(f"the selection has more than {MAX_PAGE_RANGES} pages or ranges")
    return tuple(_range(part) for part in parts)


def parse_page_selection(spec: str | None, page_count: int) -> list[int]:
    """The selected 1-based pages that exist, sorted and unique; ``None`` selects every page.

    Raises ``pages_out_of_range`` when the selection holds none of the document's pages.
    """
    if spec is None:
        return list(range(1, page_count + 1))
    pages: set[int] = set()
    for first, last in parse_page_ranges(spec):
        pages.update(range(first, min(last, page_count) + 1))
    if not pages:
        noun = "page" if page_count == 1 else "pages"
        raise InputRejected(
            ErrorCode.PAGES_OUT_OF_RANGE,
            f"pages={spec.strip()[:40]!r} selects no page of this document, which has "
            f"{page_count} {noun}. Ask for pages 1 to {page_count}, or leave out 'pages'.",
        )
    return sorted(pages)


def missing_pages(spec: str | None, page_count: int) -> str | None:
    """The pages ``spec`` selects beyond the document's last, as ranges (``'2-3,7'``), or
    None when every selected page exists."""
    if spec is None:
        return None
    beyond = sorted({(max(first, page_count + 1), last)
                     for first, last in parse_page_ranges(spec) if last > page_count})
    merged: list[tuple[int, int]] = []
    for first, last in beyond:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in merged) or None


def _range(part: str) -> tuple[int, int]:
    match = _PART.fullmatch(part)
    if match is None:
        raise _invalid(f"{part.strip()[:20]!r} is not a page number or a range like '2-4'")
    if any(len(number.lstrip("0")) > _DIGITS for number in match.groups("")):
        raise _invalid(f"a page number is at most {MAX_PAGE_NUMBER}")
    first = int(match[1])
    last = int(match[2] or first)
    if not 1 <= first <= last:
        raise _invalid(f"{part.strip()!r} is not a page or rising range counted from 1")
    if last > MAX_PAGE_NUMBER:
        raise _invalid(f"a page number is at most {MAX_PAGE_NUMBER}")
    return first, last


def _invalid(reason: str) -> InputRejected:
    return InputRejected(
        ErrorCode.INVALID_PARAMETER,
        f"pages: {reason}. Use page numbers and ranges separated by commas, like '1-3,5'.",
    )
