"""Log hygiene: anything shaped like an API key, and secret query parameters (a PDF's
password), are redacted from every log record.

A filter on the root logger alone would miss most records: Python consults a
logger's filters only for records logged on that very logger, not for those that
propagate up from ``ocrvault.*``, and uvicorn's access log does not propagate at all.
So :func:`install_key_redaction` also runs :class:`KeyRedactingFilter` in the log
record factory, the one place every record passes through, before any handler
formats it. Message, arguments, exception text and stack are all redacted.

A key is found as written and in every form a URL may carry it: percent-encoded (in
any case, twice over) or between plus-encoded spaces. A secret parameter's value is
redacted to the next ``&``, as the server parses a query, also when a ``;`` comes
before its name.

Residual risks: a key split by something other than URL encoding (base64, a JSON
``\\u`` escape, spread over two records) is not recognised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from ocrvault.access.keys import KEY_PATTERN

REDACTED = "[REDACTED-KEY]"
# Keys in any case: over-redacting a near-key costs nothing, missing a key costs a breach.
_KEY = re.compile(KEY_PATTERN.pattern, re.IGNORECASE)
# A run of characters a URL may carry unreserved or encoded: where an encoded key hides.
_URL_TOKEN = re.compile(r"[A-Za-z0-9_.~%+-]+")
# Decoding rounds tried on a token: a key encoded twice (%255F) is still found.
_DECODE_ROUNDS = 4

# A query parameter whose value is a secret: uvicorn's access log prints the whole URL.
SECRET_PARAMETERS = frozenset({"pdf_password"})
REDACTED_VALUE = "[REDACTED]"
# Text between '&'s and whitespace, and a 'name=' in it. A secret parameter's value runs
# to the next '&' as the server parses a query (parse_qsl splits on '&' only, so
# 'pdf_password=a;b;c' is one value); a 'name=' after ';' is looked at too, because a
# client that separates with ';' meant its value as the password.
_PIECE = re.compile(r"[^&\s]+")
_NAME = re.compile(r"(?<![A-Za-z0-9_.~%+-])([A-Za-z0-9_.~%+-]+)=")


def _decoded_forms(token: str) -> Iterator[str]:
    """``token`` and what it decodes to, once, twice...: as percent- and plus-encoded."""
    yield token
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote_plus(token)
        if decoded == token:
            return
        token = decoded
        yield token


def _redact_encoded_key(match: re.Match[str]) -> str:
    token = match[0]
    if "%" not in token and "+" not in token:
        return token  # plain keys are left to _KEY, which keeps the text around them
    return REDACTED if any(_KEY.search(form) for form in _decoded_forms(token)) else token


def _redact_secret_parameter(piece: re.Match[str]) -> str:
    text = piece[0]
    for name in _NAME.finditer(text) if "=" in text else ():
        # The name as the server may decode it: pdf%5Fpassword is pdf_password too.
        if any(form.lower() in SECRET_PARAMETERS for form in _decoded_forms(name[1])):
            return text[:name.end()] + REDACTED_VALUE
    return text


def redact(text: str) -> str:
    """``text`` without keys (plain or URL-encoded) and without secret parameters' values."""
    # Encoded keys first: the plain pattern would take only a key's head up to its first
    # escape and leave the rest of the secret behind.
    text = _URL_TOKEN.sub(_redact_encoded_key, text)
    return _PIECE.sub(_redact_secret_parameter, _KEY.sub(REDACTED, text))


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


# --- Structured logs (OCRVAULT_LOG_FORMAT=json) ---
# What a JSON line may hold besides time, level, logger and the (redacted) message: the
# request fields api/observe.py sets. Anything else a caller passes as `extra` is left out,
# so a new field is a decision made here, not a leak made elsewhere.
REQUEST_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "tenant")


def tenant_ref(tenant_id: str | None, mode: str) -> str | None:
    """The tenant as a log line shows it: a SHA-256 prefix (``hash``: lines of one tenant
    correlate, and an operator with the database can find which tenant it is), or
    nothing (``omit``)."""
    if tenant_id is None or mode == "omit":
        return None
    return hashlib.sha256(tenant_id.encode()).hexdigest()[:16]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the request fields present,
    and exc (the redacted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in REQUEST_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = redact(record.exc_text)
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """The root logger writes to stderr, as text or as JSON lines, with redaction on.

    As ``logging.basicConfig`` does, it leaves a root logger that already has handlers
    alone: a program that embeds ocrvault (or a test harness) keeps its own logging."""
    install_key_redaction()
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
