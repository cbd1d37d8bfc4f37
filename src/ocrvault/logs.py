"""Log hygiene: anything shaped like an API key, and secret query parameters (a PDF's
password), are redacted from every log record.

A filter on the root logger alone would miss most records: Python consults a
logger's filters only for records logged on that very logger, not for those that
propagate up from ``ocrvault.*``, and uvicorn's access log does not propagate at all.
So :func:`install_key_redaction` also runs :class:`KeyRedactingFilter` in the log
record factory, the one place every record passes through, before any handler
formats it. Message, arguments, exception text and stack are all redacted.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any
from urllib.parse import unquote_plus

from ocrvault.access.keys import KEY_PATTERN

REDACTED = "[REDACTED-KEY]"


# A query parameter whose value is a secret: uvicorn's access log prints the whole URL.
SECRET_PARAMETERS = frozenset({"pdf_password"})
REDACTED_VALUE = "[REDACTED]"
_QUERY_PAIR = re.compile(r"(?<=[?&;])([^=&;\s\"'?]+)=([^&;\s]*)")


def _redact_secret_parameter(match: re.Match[str]) -> str:
    name = match[1]
    # The name as the server decodes it: pdf%5Fpassword is pdf_password too.
    return f"{name}={REDACTED_VALUE}" if unquote_plus(name) in SECRET_PARAMETERS else match[0]


def redact(text: str) -> str:
    return _QUERY_PAIR.sub(_redact_secret_parameter, KEY_PATTERN.sub(REDACTED, text))


def _redacted_arg(arg: object) -> object:
    """Numbers stay numbers (for %d); anything else is logged as its redacted text."""
    if isinstance(arg, (int, float)) or arg is None:
        return arg
    return redact(arg if isinstance(arg, str) else str(arg))


class KeyRedactingFilter(logging.Filter):
    """Rewrites a record so that no key survives in it; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Arguments are redacted one by one rather than merged into the message, because
        # some formatters (uvicorn's access log) unpack them; only text can hold a key.
        try:
            record.getMessage()
        except Exception:  # arguments that do not fit the format: drop them, they may hold a key
            record.msg, record.args = f"{record.msg} [unformattable arguments dropped]", None
        record.msg = redact(record.msg) if isinstance(record.msg, str) else redact(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _redacted_arg(arg) for name, arg in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = KeyRedactingFilter()


def install_key_redaction() -> None:
    """Redact keys from every log record of this process, from now on (idempotent)."""
    root = logging.getLogger()
    if _FILTER in root.filters:
        return
    root.addFilter(_FILTER)
    make_record = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _FILTER.filter(record)
        return record

    logging.setLogRecordFactory(redacting_factory)
