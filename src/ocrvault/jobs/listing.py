"""What GET /v1/jobs asks for, and its cursor.

A cursor is the position after the last job of a page, ``(created_at, id)``, in
URL-safe base64. It holds nothing a caller could not see already (both values are in
the page it came from), and the query is scoped to the caller whatever it says, so a
changed cursor can only move within the caller's own jobs; one that does not parse is
``invalid_parameter``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.model import JobStatus

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_CURSOR_CHARS = 200

_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Listed unless asked for: a deleted job is a content-free tombstone.
LISTED_BY_DEFAULT = tuple(s for s in JobStatus if s is not JobStatus.DELETED)


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the newest-first order: jobs after it are older (or equal and lower id)."""

    created_at: datetime
    job_id: str

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.job_id}".encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            if len(cursor) > MAX_CURSOR_CHARS:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
            at, job_id = raw.split("|")
            created_at = datetime.fromisoformat(at)
            if created_at.tzinfo is None or not _JOB_ID.fullmatch(job_id):
                raise ValueError("not a position")
            created_at = created_at.astimezone(UTC)  # as stored; year 1 at +14:00 has none
        except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                "The cursor is not one this listing gave; pass next_cursor unchanged, or "
                "start again without it.",
            ) from None
        return cls(created_at, job_id)


@dataclass(frozen=True, slots=True)
class JobQuery:
    statuses: tuple[JobStatus, ...] = LISTED_BY_DEFAULT
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    cursor: str | None = None
    limit: int = DEFAULT_PAGE

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InputRejected(ErrorCode.INVALID_PARAMETER, f"limit must be 1 to {MAX_PAGE}.")
        if self.cursor is not None:
            Position.decode(self.cursor)  # a cursor that does not parse: refused before a query

    @property
    def after(self) -> Position | None:
        return None if self.cursor is None else Position.decode(self.cursor)
