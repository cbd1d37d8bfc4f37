"""Parse a page selection such as ``"1-3,5"`` (1-based, inclusive ranges)."""

from __future__ import annotations

import re

from ocrvault.errors import ErrorCode, InputRejected

_PART = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")


def parse_page_selection(spec: str | None, page_count: int) -> list[int]:
    """The selected 1-based pages, sorted and unique; ``None`` selects every page."""
    if spec is None:
        return list(range(1, page_count + 1))
    pages: set[int] = set()
    for part in spec.split(","):
        match = _PART.fullmatch(part)
        if match is None:
            raise _invalid(f"{part.strip()[:20]!r} is not a page number or a range like '2-4'")
        first = int(match[1])
        last = int(match[2] or first)
        if not 1 <= first <= last:
            raise _invalid(f"{part.strip()!r} is not a page or rising range counted from 1")
        if last > page_count:
            raise _invalid(f"page {last} does not exist; the document has {page_count}")
        pages.update(range(first, last + 1))
    return sorted(pages)


def _invalid(reason: str) -> InputRejected:
    return InputRejected(
        ErrorCode.INVALID_PARAMETER,
        f"pages: {reason}. Use page numbers and ranges separated by commas, like '1-3,5'.",
    )
