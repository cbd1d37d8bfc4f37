"""What the client raises when the server says no: one :class:`ApiError`, subclassed by status.

::

    ApiError              status, code, detail, request_id, retry_after
    ├── BadRequest        400 (invalid_parameter, corrupt_file, ...)
    ├── Unauthorized      401: no key, a wrong one, a revoked or expired one
    ├── Forbidden         403: the key lacks a scope, or may not act on that object
    ├── NotFound          404: job_not_found, key_not_found, ... (also another tenant's)
    ├── Conflict          409
    ├── Gone              410: deleted, or expired under retention
    ├── PayloadTooLarge   413: file_too_large, body_too_large
    ├── RateLimited       429: rate_limited, quota_exceeded; ``retry_after`` in seconds
    └── Unavailable       503: the server is full of uploads, or its storage cannot be
                          reached; ``retry_after`` in seconds

Switch on ``code`` (the server's stable ``ErrorCode``) for anything finer.
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime

import httpx

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """A problem+json answer (or, from a proxy in between, any error answer)."""

    def __init__(self, status: int, code: str, detail: str, *, request_id: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}"
                         + (f" (request id {request_id})" if request_id else ""))
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequest(ApiError): ...
class Unauthorized(ApiError): ...
class Forbidden(ApiError): ...
class NotFound(ApiError): ...
class Conflict(ApiError): ...
class Gone(ApiError): ...
class PayloadTooLarge(ApiError): ...
class RateLimited(ApiError): ...
class Unavailable(ApiError): ...


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    410: Gone, 413: PayloadTooLarge, 429: RateLimited, 503: Unavailable,
}


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds the ``Retry-After`` header asks to wait (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def api_error(response: httpx.Response) -> ApiError:
    """The exception for an error answer; a body that is no problem+json still gives one."""
    code, detail = "http_error", response.text[:200] or response.reason_phrase
    if response.headers.get("Content-Type", "").startswith(("application/json", PROBLEM_JSON)):
        try:
            problem = response.json()
            code, detail = str(problem["code"]), str(problem["detail"])
        except (ValueError, KeyError, TypeError):
            pass
    kind = _BY_STATUS.get(response.status_code, ApiError)
    return kind(response.status_code, code, detail,
                request_id=response.headers.get("X-Request-Id"),
                retry_after=retry_after(response))
