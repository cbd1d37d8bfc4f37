"""Every error ocrvault reports, in one enum and one exception tree.

Each :class:`ErrorCode` member carries its HTTP status and a short title; the API
maps any :class:`OcrVaultError` to RFC 9457 problem+json in exactly one place
(``api/problems.py``) and the CLI maps it to an exit code in one place
(``cli.py``). Messages (``detail``) say what the caller should do, and never hold
document content or secrets.

::

    OcrVaultError                 base: code + detail
    ├── InputRejected             the submitted file or its parameters (4xx)
    ├── AuthError                 unauthorized / forbidden / insufficient scope (401, 403)
    ├── Throttled                 over a key's rate limit or quota (429), or the server full
    │                             of uploads (503); with Retry-After
    ├── ResourceError             not found, gone, conflict (404, 409, 410)
    ├── Misdirected               another region's key (421), with that region's base URL
    ├── IntegrityError            a stored object failed to authenticate (500, no oracle)
    ├── ProcessingError           decoding or OCR failed for a reason not the caller's
    └── Unavailable               a backend (the blob store, the master-key provider)
                                  cannot serve now (503); with Retry-After
"""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus


class ErrorCode(StrEnum):
    """Stable machine codes; clients may switch on them. Never rename a member."""

    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    FILE_TOO_LARGE = "file_too_large"
    EMPTY_FILE = "empty_file"
    CORRUPT_FILE = "corrupt_file"
    TOO_MANY_PAGES = "too_many_pages"
    IMAGE_TOO_LARGE = "image_too_large"
    ENCRYPTED_PDF = "encrypted_pdf"
    INVALID_PARAMETER = "invalid_parameter"
    PAGES_OUT_OF_RANGE = "pages_out_of_range"
    BODY_TOO_LARGE = "body_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    PROCESSING_TIMEOUT = "processing_timeout"
    PROCESSING_FAILED = "processing_failed"
    JOB_NOT_FOUND = "job_not_found"
    JOB_DELETED = "job_deleted"
    DATA_EXPIRED = "data_expired"
    RETENTION_EXCEEDS_POLICY = "retention_exceeds_policy"
    OUTPUT_NOT_AVAILABLE = "output_not_available"
    OUTPUT_NOT_REQUESTED = "output_not_requested"
    JOB_NOT_FINISHED = "job_not_finished"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CUSTOMER_KEY_REQUIRED = "customer_key_required"
    CUSTOMER_KEY_MISMATCH = "customer_key_mismatch"
    INSECURE_TRANSPORT = "insecure_transport"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    IP_NOT_ALLOWED = "ip_not_allowed"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    KEY_NOT_FOUND = "key_not_found"
    KEY_REVOKED = "key_revoked"
    AUDIT_ENTRY_NOT_FOUND = "audit_entry_not_found"
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    WEBHOOK_DELIVERY_NOT_FOUND = "webhook_delivery_not_found"
    WEBHOOK_URL_REFUSED = "webhook_url_refused"
    CALLBACK_URL_NOT_REGISTERED = "callback_url_not_registered"
    INTEGRITY_ERROR = "integrity_error"
    SERVER_BUSY = "server_busy"
    ENGINE_UNAVAILABLE = "engine_unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    KEY_SERVICE_UNAVAILABLE = "key_service_unavailable"
    KEY_ACCESS_DENIED = "key_access_denied"
    TENANT_OFFBOARDED = "tenant_offboarded"
    WRONG_REGION = "wrong_region"
    INTERNAL_ERROR = "internal_error"

    @property
    def status(self) -> int:
        return _STATUS[self]

    @property
    def phrase(self) -> str:
        return HTTPStatus(self.status).phrase


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.FILE_TOO_LARGE: 413,
    ErrorCode.EMPTY_FILE: 400,
    ErrorCode.CORRUPT_FILE: 422,
    ErrorCode.TOO_MANY_PAGES: 422,
    ErrorCode.IMAGE_TOO_LARGE: 422,
    ErrorCode.ENCRYPTED_PDF: 422,
    ErrorCode.INVALID_PARAMETER: 400,
    ErrorCode.PAGES_OUT_OF_RANGE: 422,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.HEADERS_TOO_LARGE: 431,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.PROCESSING_TIMEOUT: 422,
    ErrorCode.PROCESSING_FAILED: 500,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.JOB_DELETED: 410,
    ErrorCode.DATA_EXPIRED: 410,
    ErrorCode.RETENTION_EXCEEDS_POLICY: 400,
    ErrorCode.OUTPUT_NOT_AVAILABLE: 404,
    ErrorCode.OUTPUT_NOT_REQUESTED: 409,
    ErrorCode.JOB_NOT_FINISHED: 409,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CUSTOMER_KEY_REQUIRED: 403,
    ErrorCode.CUSTOMER_KEY_MISMATCH: 403,
    ErrorCode.INSECURE_TRANSPORT: 403,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.IP_NOT_ALLOWED: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.QUOTA_EXCEEDED: 429,
    ErrorCode.KEY_NOT_FOUND: 404,
    ErrorCode.KEY_REVOKED: 409,
    ErrorCode.AUDIT_ENTRY_NOT_FOUND: 404,
    ErrorCode.WEBHOOK_NOT_FOUND: 404,
    ErrorCode.WEBHOOK_DELIVERY_NOT_FOUND: 404,
    ErrorCode.WEBHOOK_URL_REFUSED: 400,
    ErrorCode.CALLBACK_URL_NOT_REGISTERED: 400,
    ErrorCode.INTEGRITY_ERROR: 500,
    ErrorCode.SERVER_BUSY: 503,
    ErrorCode.ENGINE_UNAVAILABLE: 503,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
    ErrorCode.KEY_SERVICE_UNAVAILABLE: 503,
    ErrorCode.KEY_ACCESS_DENIED: 403,
    ErrorCode.TENANT_OFFBOARDED: 410,
    ErrorCode.WRONG_REGION: 421,
    ErrorCode.INTERNAL_ERROR: 500,
}


class OcrVaultError(Exception):
    """Base of every error ocrvault raises on purpose."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def status(self) -> int:
        return self.code.status


class InputRejected(OcrVaultError):
    """The file or a request parameter is not acceptable; the caller can fix it."""


class AuthError(OcrVaultError):
    """The credentials are missing, unknown or lack the right."""


class Throttled(OcrVaultError):
    """Over a rate limit or quota; ``retry_after`` (seconds) when waiting will help."""

    def __init__(self, code: ErrorCode, detail: str, retry_after: int | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after


class ResourceError(OcrVaultError):
    """The addressed resource does not exist for this caller, is gone, or is not ready."""


class IntegrityError(OcrVaultError):
    """A stored object failed authentication. One message for every cause: no oracle."""

    def __init__(self, detail: str = "a stored object failed its integrity check") -> None:
        super().__init__(ErrorCode.INTEGRITY_ERROR, detail)


class Misdirected(OcrVaultError):
    """The request belongs to another deployment (421): ``location`` is its base URL, when
    known. Raised before a byte of the request body is read."""

    def __init__(self, code: ErrorCode, detail: str, location: str | None) -> None:
        super().__init__(code, detail)
        self.location = location


class ProcessingError(OcrVaultError):
    """Decoding or recognition failed for a reason that is not the caller's input."""


class Unavailable(OcrVaultError):
    """A backend the request needs cannot be reached or did not answer in time; the same
    request may succeed later. ``retry_after`` (seconds) is a hint for the client."""

    def __init__(self, code: ErrorCode, detail: str, retry_after: int) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after
