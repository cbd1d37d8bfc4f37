"""The client without I/O: every API call as a generator of steps, run by a thin driver.

An operation yields :class:`httpx.Request` objects (the driver sends each and sends back
the :class:`httpx.Response`, or the :class:`httpx.TransportError` it raised) and
:class:`Sleep` steps (the driver waits), and returns the typed result. Retries, polling
and parsing live here once; ``Client`` drives it with ``httpx.Client`` and ``time.sleep``,
``AsyncClient`` with ``httpx.AsyncClient`` and ``asyncio.sleep``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import secrets
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any, TypedDict, TypeVar

import httpx
from pydantic import BaseModel

from ocrvault.client.errors import ApiError, api_error, retry_after
from ocrvault.client.models import (
    AuditEntry,
    AuditPage,
    BulkDeletion,
    DeletionReceipt,
    Document,
    Engine,
    Job,
    JobCreated,
    JobPage,
    Key,
    KeyCreated,
    Language,
    RetentionPolicy,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# A file to send: its path, its bytes, or a binary file object (read from where it stands).
Upload = str | os.PathLike[str] | bytes | IO[bytes]
# Seconds, or a duration, for retention and grace periods.
Duration = int | timedelta
Progress = Callable[[Job], None]


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Step = httpx.Request | Sleep
Outcome = httpx.Response | httpx.TransportError | None
Exchange = Generator[Step, Outcome, T]

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Retry:
    """When to try a request again: 429 and 503 (any method: the server refused before
    doing anything), honouring ``Retry-After``; connection errors for idempotent methods
    only (a POST may have been received). Waits back off exponentially with jitter.

    A ``Retry-After`` longer than ``max_delay`` is not waited for: the error is raised
    at once, with its ``retry_after``. ``Retry(attempts=1)`` never retries.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_delay: float = 30.0
    statuses: frozenset[int] = frozenset({429, 503})
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int, method: str, outcome: httpx.Response | Exception) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None to stop here."""
        if attempt >= self.attempts:
            return None
        jitter: float = self.jitter()
        if isinstance(outcome, httpx.Response):
            if outcome.status_code not in self.statuses:
                return None
            asked = retry_after(outcome)
            if asked is not None:
                return None if asked > self.max_delay else asked + jitter * self.backoff
        elif not (isinstance(outcome, httpx.TransportError) and method in IDEMPOTENT):
            return None
        ceiling = min(self.max_delay, self.backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + jitter * ceiling / 2  # "equal jitter": never ~0


class CustomerKey:
    """Your own 256-bit key (SSE-C style): a job submitted with it can be read only with it.

    Keep it yourself; ocrvault stores only its hash. Its repr never shows the key.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a customer key is 32 bytes")
        self._key = key

    @classmethod
    def generate(cls) -> CustomerKey:
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_base64(cls, text: str) -> CustomerKey:
        return cls(base64.b64decode(text, validate=True))

    def base64(self) -> str:
        return base64.b64encode(self._key).decode()

    def headers(self) -> dict[str, str]:
        digest = base64.b64encode(hashlib.sha256(self._key).digest()).decode()
        return {"X-Ocrvault-Customer-Key": self.base64(),
                "X-Ocrvault-Customer-Key-SHA256": digest}

    def __repr__(self) -> str:
        return "CustomerKey(<hidden>)"


# Options of the methods, each of them optional; None means the server's default.
class SubmitOptions(TypedDict, total=False):
    languages: str | Iterable[str] | None
    pages: str | None
    outputs: Iterable[str] | None
    retention: Duration | str | None
    pdf_password: str | None
    engine: str | None
    pdf_text: str | None  # "auto", "ocr" or "extract"
    pdf_profile: str | None  # of the searchable PDF: "default" or "pdfa-2b"
    customer_key: CustomerKey | None


class ReadOptions(TypedDict, total=False):
    languages: str | Iterable[str] | None
    pages: str | None
    pdf_password: str | None
    engine: str | None
    pdf_text: str | None


class JobFilters(TypedDict, total=False):
    status: str | Iterable[str] | None
    since: datetime | None
    until: datetime | None
    limit: int | None
    cursor: str | None


class AuditFilters(TypedDict, total=False):
    since: datetime | None
    until: datetime | None
    action: str | None
    actor: str | None
    target: str | None
    limit: int | None
    cursor: str | None


class RetentionFields(TypedDict, total=False):
    """Any subset: a server without partial updates needs all five."""

    input: Duration | None
    result: Duration | None
    outputs: Duration | None
    job_metadata: Duration | None
    failed_inputs: Duration | None


class KeyOptions(TypedDict, total=False):
    """A ``role`` or ``scopes``, never both; the rest as ``POST /v1/keys`` documents."""

    role: str | None
    scopes: Iterable[str] | None
    environment: str | None
    expires_at: datetime | None
    allowed_ips: Iterable[str] | None
    rate_limit_per_minute: int | None
    max_concurrent_jobs: int | None
    max_pages_per_day: int | None
    job_visibility: str | None


def _wire(value: Any) -> Any:
    """A parameter as the API spells it."""
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (str, bytes, int, float)):
        return value
    if isinstance(value, Iterable):
        return [_wire(item) for item in value]
    return value


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _wire(value) for name, value in values.items() if value is not None}


def _body(file: Upload) -> bytes:
    if isinstance(file, bytes):
        return file
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as opened:
            return opened.read()
    return file.read()


def _model(kind: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: kind.model_validate_json(response.content)


def _listed(kind: type[M], field: str) -> Callable[[httpx.Response], list[M]]:
    """The list under ``field`` of a JSON object, each item a ``kind``."""
    return lambda response: [kind.model_validate(item) for item in response.json()[field]]


class Core:
    """Builds the requests, parses the answers, retries and polls; no I/O of its own."""

    def __init__(self, base_url: str, api_key: str, *, retry: Retry | None = None,
                 poll_interval: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self.retry = retry or Retry()
        self.poll_interval = poll_interval
        self.clock = clock

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, content: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> httpx.Request:
        return httpx.Request(method, self.base_url.join(path.lstrip("/")),
                             params=_compact(params or {}), json=json, content=content,
                             headers={**self._auth, **(headers or {})})

    def call(self, request: httpx.Request, parse: Callable[[httpx.Response], T]) -> Exchange[T]:
        """Send ``request`` (again, per :class:`Retry`) and parse the answer."""
        attempt = 1
        while True:
            outcome = yield request
            assert outcome is not None, "a driver answers a request with its outcome"
            delay = self.retry.delay(attempt, request.method, outcome)
            if delay is None:
                if isinstance(outcome, httpx.TransportError):
                    raise outcome
                if outcome.is_error:
                    raise api_error(outcome)
                return parse(outcome)
            yield Sleep(delay)
            attempt += 1

    # Reading documents

    def submit(self, file: Upload, *, languages: str | Iterable[str] | None = None,
               pages: str | None = None, outputs: Iterable[str] | None = None,
               retention: Duration | str | None = None, pdf_password: str | None = None,
               engine: str | None = None, pdf_text: str | None = None,
               pdf_profile: str | None = None,
               customer_key: CustomerKey | None = None) -> Exchange[JobCreated]:
        params = {"languages": _languages(languages), "pages": pages,
                  "outputs": ",".join(outputs) if outputs else None,
                  "retention": retention, "pdf_password": pdf_password, "engine": engine,
                  "pdf_text": pdf_text, "pdf_profile": pdf_profile}
        headers = {"Content-Type": "application/octet-stream",
                   **(customer_key.headers() if customer_key else {})}
        return self.call(self.request("POST", "v1/read", params=params, content=_body(file),
                                      headers=headers), _model(JobCreated))

    def read_sync(self, file: Upload, *, languages: str | Iterable[str] | None = None,
                  pages: str | None = None, pdf_password: str | None = None,
                  engine: str | None = None, pdf_text: str | None = None,
                  ) -> Exchange[Document]:
        params = {"languages": _languages(languages), "pages": pages,
                  "pdf_password": pdf_password, "engine": engine, "pdf_text": pdf_text}
        return self.call(self.request("POST", "v1/read:sync", params=params, content=_body(file),
                                      headers={"Content-Type": "application/octet-stream"}),
                         _model(Document))

    def languages(self) -> Exchange[list[Language]]:
        return self.call(self.request("GET", "v1/languages"), _listed(Language, "languages"))

    def engines(self) -> Exchange[list[Engine]]:
        return self.call(self.request("GET", "v1/engines"), _listed(Engine, "engines"))

    # Jobs

    def get_job(self, job_id: str, customer_key: CustomerKey | None = None) -> Exchange[Job]:
        headers = customer_key.headers() if customer_key else None
        return self.call(self.request("GET", f"v1/jobs/{_segment(job_id)}", headers=headers),
                         _model(Job))

    def wait(self, job_id: str, *, timeout: float = 600.0, progress: Progress | None = None,
             customer_key: CustomerKey | None = None) -> Exchange[Job]:
        """Poll until the job has finished (succeeded or failed; check ``job.error``),
        calling ``progress`` with each state seen. TimeoutError past ``timeout`` seconds."""
        deadline = self.clock() + timeout
        interval = self.poll_interval
        while True:
            job = yield from self.get_job(job_id, customer_key)
            if progress is not None:
                progress(job)
            if job.status.finished:
                return job
            if self.clock() + interval > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout:g} s")
            yield Sleep(interval)
            interval = min(interval * 1.5, 5.0)  # quick for small jobs, gentle for long ones

    def output(self, job_id: str, fmt: str = "text",
               customer_key: CustomerKey | None = None) -> Exchange[bytes]:
        headers = customer_key.headers() if customer_key else None
        path = f"v1/jobs/{_segment(job_id)}/outputs/{_segment(fmt)}"
        return self.call(self.request("GET", path, headers=headers), lambda r: r.content)

    def delete_job(self, job_id: str) -> Exchange[DeletionReceipt]:
        return self.call(self.request("DELETE", f"v1/jobs/{_segment(job_id)}"),
                         _model(DeletionReceipt))

    def delete_jobs(self, before: datetime, status: str | Iterable[str] | None = None,
                    ) -> Exchange[BulkDeletion]:
        params = {"before": before, "status": [status] if isinstance(status, str) else status}
        return self.call(self.request("DELETE", "v1/jobs", params=params), _model(BulkDeletion))

    def list_jobs(self, filters: JobFilters) -> Exchange[JobPage]:
        status = filters.get("status")
        params = {**filters, "status": [status] if isinstance(status, str) else status}
        return self.call(self.request("GET", "v1/jobs", params=params), _model(JobPage))

    # Retention

    def get_retention(self, environment: str | None = None, key_id: str | None = None,
                      ) -> Exchange[RetentionPolicy]:
        return self.call(self.request("GET", _retention_path(key_id),
                                      params={"environment": environment}),
                         _model(RetentionPolicy))

    def put_retention(self, fields: RetentionFields, environment: str | None = None,
                      key_id: str | None = None) -> Exchange[RetentionPolicy]:
        return self.call(self.request("PUT", _retention_path(key_id), json=_compact(fields),
                                      params={"environment": environment}),
                         _model(RetentionPolicy))

    # Keys

    def create_key(self, name: str, options: KeyOptions) -> Exchange[KeyCreated]:
        return self.call(self.request("POST", "v1/keys", json=_compact({"name": name, **options})),
                         _model(KeyCreated))

    def list_keys(self) -> Exchange[list[Key]]:
        return self.call(self.request("GET", "v1/keys"), _listed(Key, "keys"))

    def get_key(self, key_id: str) -> Exchange[Key]:
        return self.call(self.request("GET", f"v1/keys/{_segment(key_id)}"), _model(Key))

    def rotate_key(self, key_id: str, grace: Duration | None = None) -> Exchange[KeyCreated]:
        body = _compact({"grace_seconds": grace}) if grace is not None else None
        return self.call(self.request("POST", f"v1/keys/{_segment(key_id)}/rotate", json=body),
                         _model(KeyCreated))

    def revoke_key(self, key_id: str) -> Exchange[Key]:
        return self.call(self.request("DELETE", f"v1/keys/{_segment(key_id)}"), _model(Key))

    # Audit

    def list_audit(self, filters: AuditFilters) -> Exchange[AuditPage]:
        return self.call(self.request("GET", "v1/audit", params=filters), _model(AuditPage))

    def get_audit_entry(self, entry_id: str) -> Exchange[AuditEntry]:
        return self.call(self.request("GET", f"v1/audit/{_segment(entry_id)}"),
                         _model(AuditEntry))


def _languages(languages: str | Iterable[str] | None) -> str | None:
    return languages if languages is None or isinstance(languages, str) else "+".join(languages)


def _segment(value: str) -> str:
    """An id as one path segment: '../keys' must not walk to another route."""
    if not value or value in {".", ".."} or any(c in value for c in "/?#%\\"):
        raise ValueError(f"not an id: {value!r}")
    return value


def _retention_path(key_id: str | None) -> str:
    return f"v1/keys/{_segment(key_id)}/retention" if key_id else "v1/retention"


__all__ = ["ApiError", "AuditFilters", "Core", "CustomerKey", "Duration", "Exchange",
           "JobFilters", "KeyOptions", "Progress", "ReadOptions", "RetentionFields", "Retry",
           "Sleep", "SubmitOptions", "Upload"]
