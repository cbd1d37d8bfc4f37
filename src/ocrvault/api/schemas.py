"""Per-resource response shapes of the native API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ocrvault.api.problems import PROBLEM_JSON, Problem
from ocrvault.model import Document, JobError, JobStatus, OutputFormat


class JobCreated(BaseModel):
    id: str
    status: JobStatus
    created_at: datetime
    expires_at: datetime | None


class JobPublic(BaseModel):
    id: str
    status: JobStatus
    created_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None = Field(description="When the result and outputs are deleted")
    languages: list[str]
    outputs: list[OutputFormat]
    page_count: int | None
    error: JobError | None
    result: Document | None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json answers a route can give."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Problem"}
        for status in statuses
    }
