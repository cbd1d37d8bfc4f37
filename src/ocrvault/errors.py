"""Every error ocrvault reports, in one enum and one exception tree.

Each :class:`ErrorCode` member carries its HTTP status and a short title; the API
maps any :class:`OcrVaultError` to RFC 9457 problem+json in exactly one place
(``api/problems.py``) and the CLI maps it to an exit code in one place
(``cli.py``). Messages (``detail``) say what the caller should do, and never hold
document content or secrets.

::

    OcrVaultError                 base: code + detail
    ├── InputRejected             the submitted file or its parameters (4xx)
    ├── AuthError                 unauthorized / forbidden (401, 403)
    ├── ResourceError             not found, gone, conflict (404, 409, 410)
    ├── IntegrityError            a stored object failed to authenticate (500, no oracle)
    └── ProcessingError           decoding or OCR failed for a reason not the caller's
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
    PROCESSING_TIMEOUT = "processing_timeout"
    PROCESSING_FAILED = "processing_failed"
    JOB_NOT_FOUND = "job_not_found"
    JOB_DELETED = "job_deleted"
    OUTPUT_NOT_AVAILABLE = "output_not_available"
    JOB_NOT_FINISHED = "job_not_finished"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    INTEGRITY_ERROR = "integrity_error"
    INTERNAL_ERROR = "internal_error"

    @property
    def status(self) -> int:
        return _STATUS[self]

    @property
    def title(self) -> str:
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
    ErrorCode.PROCESSING_TIMEOUT: 422,
    ErrorCode.PROCESSING_FAILED: 500,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.JOB_DELETED: 410,
    ErrorCode.OUTPUT_NOT_AVAILABLE: 404,
    ErrorCode.JOB_NOT_FINISHED: 409,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.INTEGRITY_ERROR: 500,
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


class ResourceError(OcrVaultError):
    """The addressed resource does not exist for this caller, is gone, or is not ready."""


class IntegrityError(OcrVaultError):
    """A stored object failed authentication. One message for every cause: no oracle."""

    def __init__(self, detail: str = "a stored object failed its integrity check") -> None:
        super().__init__(ErrorCode.INTEGRITY_ERROR, detail)


class ProcessingError(OcrVaultError):
    """Decoding or recognition failed for a reason that is not the caller's input."""
