"""Per-resource response shapes of the native API."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    model_validator,
)

from ocrvault.access.names import MAX_NAME_CHARS, name_problem
from ocrvault.access.service import MAX_GRACE, IssuedKey, KeyInfo
from ocrvault.api.problems import PROBLEM_JSON, Problem
from ocrvault.environments import Environment
from ocrvault.model import Document, Job, JobError, JobStatus, OutputFormat, PartExpiries
from ocrvault.principal import JobVisibility, Role, Scope


class JobCreated(BaseModel):
    id: str
    status: JobStatus
    created_at: datetime
    expires_at: datetime | None


class JobSummary(BaseModel):
    """A job's metadata: what GET /v1/jobs lists (never its result or text)."""

    id: str
    status: JobStatus
    created_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None = Field(description="When the result and outputs are deleted")
    languages: list[str]
    outputs: list[OutputFormat]
    page_count: int | None = Field(description="How many pages the job reads")
    pages_done: int = Field(description="Pages read so far (updated while the job runs, at "
                            "most every half second)")
    pages_total: int | None = Field(description="Pages to read: the same as page_count")
    error: JobError | None
    expires: PartExpiries = Field(description="When each part is deleted under retention")
    expired: list[str] = Field(description="Parts already deleted under retention")

    @classmethod
    def of(cls, job: Job) -> JobSummary:
        return cls(
            id=job.id, status=job.status, created_at=job.created_at,
            completed_at=job.completed_at, expires_at=job.expires_at, languages=job.languages,
            outputs=job.outputs, page_count=job.page_count, pages_done=job.pages_done,
            pages_total=job.page_count, error=job.error, expires=job.expires,
            expired=job.expired,
        )


class JobPublic(JobSummary):
    result: Document | None = Field(description="Null until succeeded, and once it expired")


class JobList(BaseModel):
    jobs: list[JobSummary] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as 'cursor' for the next page; null at "
                                    "the end")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json answers a route can give."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Problem"}
        for status in statuses
    }


def _cidr_text(value: object) -> object:
    """Only text is an address range: pydantic would take JSON ``true`` or ``5`` as a /32."""
    if not isinstance(value, str):
        raise ValueError("give an address range as text, like '10.0.0.0/8'")
    return value


Cidr = Annotated[IPvAnyNetwork, BeforeValidator(_cidr_text)]


def _not_a_number(value: object) -> object:
    """ISO 8601 only, as documented: pydantic would read '0.5' as seconds since 1970."""
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("give an ISO 8601 date-time with a zone, like 2025-01-31T00:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    """The time in UTC, as it is stored and compared; 0001-01-01T00:00+01:00 has none."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date-time is out of range") from None


# A date-time query parameter: ISO 8601 with a zone, never a bare number.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]


def _plain_name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# Free text that reaches logs and terminals: no control or bidi characters (access/names.py).
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS),
                 AfterValidator(_plain_name)]


class KeyCreate(BaseModel):
    """A key to make: a ``role`` or an explicit list of ``scopes``, never both."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    role: Role | None = None
    scopes: list[Scope] | None = None
    environment: Environment | None = Field(default=None, description="Default: the caller's")
    expires_at: Timestamp | None = None
    allowed_ips: list[Cidr] | None = Field(
        default=None, max_length=100, description="CIDRs the key may be used from"
    )
    # Bounded, so that no number reaches a 64-bit column it overflows; strict: JSON true is no 1.
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)
    max_concurrent_jobs: int | None = Field(default=None, ge=1, le=10_000, strict=True)
    max_pages_per_day: int | None = Field(default=None, ge=1, le=100_000_000, strict=True)
    job_visibility: JobVisibility | None = Field(
        default=None, description="Which jobs the key sees and deletes: 'own' (those it "
        "submitted) or 'tenant'. Default: 'own' for the developer role, else 'tenant'; never "
        "wider than the maker's")

    @model_validator(mode="after")
    def _role_or_scopes(self) -> KeyCreate:
        if (self.role is None) == (self.scopes is None):
            raise ValueError("give exactly one of 'role' and 'scopes'")
        return self


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=24 * 3600, ge=0, le=int(MAX_GRACE.total_seconds()), strict=True,
        description="How long the current secret keeps working (default 24 h, at most 7 days)",
    )


@dataclass(frozen=True, slots=True)
class KeyCreated(KeyInfo):
    """A key right after it was made or rotated: the only answer that holds its secret (only
    its SHA-256 is stored)."""

    secret: str

    @classmethod
    def of(cls, issued: IssuedKey) -> KeyCreated:
        return cls(**asdict(issued.key), secret=issued.secret)


class KeyList(BaseModel):
    keys: list[KeyInfo]
