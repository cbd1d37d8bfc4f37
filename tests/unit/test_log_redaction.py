"""A key logged by mistake comes out redacted, whichever logger or handler carries it."""

from __future__ import annotations

import io
import logging
from typing import Any

import httpx
import pytest

from ocrvault.access.keys import generate_key
from ocrvault.api.app import create_app
from ocrvault.config import Settings
from ocrvault.environments import Environment
from ocrvault.logs import REDACTED, install_key_redaction
from ocrvault.runtime import Runtime
from tests.engine_fakes import FixedEngine
from tests.servers import serving


@pytest.fixture(autouse=True)
def _redaction() -> None:
    install_key_redaction()


def test_a_key_in_a_message_or_its_arguments_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    key = generate_key(Environment.LIVE)
    with caplog.at_level(logging.INFO):
        logging.getLogger("ocrvault.jobs.worker").info("calling with %s", key)
        logging.getLogger("ocrvault.api").warning(f"header was Bearer {key}")
    assert key not in caplog.text
    assert caplog.text.count(REDACTED) == 2
    assert all(key not in record.getMessage() for record in caplog.records)


def test_a_key_in_an_exception_traceback_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    key = generate_key(Environment.TEST)
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        logging.getLogger("ocrvault").exception("request failed")
    assert "ValueError: bad key" in caplog.text
    assert key not in caplog.text


def test_a_logger_that_does_not_propagate_is_redacted_too() -> None:
    """As uvicorn's access log: its own handler, never reaching the root."""
    key = generate_key(Environment.LIVE)
    stream = io.StringIO()
    logger = logging.getLogger("test.access")
    handler = logging.StreamHandler(stream)
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info('"GET /v1/jobs/x?key=%s HTTP/1.1" 401', key)
    finally:
        logger.removeHandler(handler)
    assert key not in stream.getvalue() and REDACTED in stream.getvalue()


def test_near_keys_are_redacted_and_bad_format_arguments_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mistyped = generate_key(Environment.LIVE)[:-3]
    logging.getLogger("ocrvault").warning("mistyped %s", mistyped)
    logging.getLogger("ocrvault").warning("too few %s %s", mistyped)
    assert mistyped not in caplog.text
    assert "arguments dropped" in caplog.text


def test_uvicorns_access_log_still_formats_and_hides_keys_and_passwords() -> None:
    """Its formatter unpacks the record's arguments: redaction must keep them a tuple."""
    key = generate_key(Environment.LIVE)
    line = _access_line(f"/v1/read?pdf_password=hunter2&k={key}", method="POST", status=202)
    assert '127.0.0.1:5000 - "POST /v1/read?pdf_password=[REDACTED]&k=' in line
    assert line.rstrip().endswith("202 Accepted")
    assert key not in line and "hunter2" not in line


def _access_line(path: str, method: str = "GET", status: int = 401) -> str:
    """``path`` as uvicorn's access log writes it: arguments in a tuple, formatted late."""
    from uvicorn.logging import AccessFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    access = logging.getLogger("uvicorn.access.encoded")
    access.addHandler(handler)
    access.propagate = False
    access.setLevel(logging.INFO)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", method, path, "1.1", status)
    finally:
        access.removeHandler(handler)
    return stream.getvalue()


def _pieces_of(secret: str, width: int = 6) -> list[str]:
    return [secret[i:i + width] for i in range(len(secret) - width + 1)]


ENCODINGS = {
    "percent-encoded underscores": lambda key: key.replace("_", "%5F"),
    "lowercase escapes": lambda key: key.replace("_", "%5f"),
    "every byte escaped": lambda key: "".join(f"%{byte:02X}" for byte in key.encode()),
    "double-encoded": lambda key: key.replace("_", "%255F"),
    "an escape inside the secret": lambda key: f"{key[:14]}%{ord(key[14]):02x}{key[15:]}",
    "between plus-encoded spaces": lambda key: "my+" + key.replace("_", "%5F") + "+here",
}


@pytest.mark.parametrize("encode", ENCODINGS.values(), ids=ENCODINGS.keys())
@pytest.mark.parametrize("where", ["/v1/jobs?api_key={}&x=1", "/v1/keys/{}/rotate"],
                         ids=["query value", "path"])
def test_an_encoded_key_is_redacted_from_the_access_log(encode: Any, where: str) -> None:
    key = generate_key(Environment.LIVE)
    line = _access_line(where.format(encode(key)))
    assert REDACTED in line
    secret = key.removeprefix("ocv_live_")
    assert not [piece for piece in _pieces_of(secret) if piece in line], line


@pytest.mark.parametrize(("query", "kept"), [
    ("pdf_password=a;b;c&outputs=text", "&outputs=text"),
    ("outputs=text&pdf%5fpassword=a;b;c", "outputs=text&"),
    ("pdf%255Fpassword=a;b;c", ""),
    ("outputs=text;pdf_password=a;b;c&pages=1", "outputs=text;pdf_password=[REDACTED]&pages=1"),
])
def test_a_secret_parameter_is_redacted_up_to_the_next_ampersand(query: str, kept: str) -> None:
    """The server splits a query on '&' only: 'a;b;c' is one password, all of it secret."""
    line = _access_line(f"/v1/read?{query}")
    assert "=[REDACTED]" in line and kept in line
    assert "a;b;c" not in line and ";b" not in line and ";c" not in line


def test_an_encoded_key_in_a_message_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    key = generate_key(Environment.TEST)
    encoded = key.replace("_", "%5F")
    logging.getLogger("ocrvault.api").warning(f"callback to https://x.example/?k={encoded}")
    assert encoded not in caplog.text and key[-10:] not in caplog.text


def test_a_real_servers_access_log_hides_encoded_keys_and_passwords(settings: Settings) -> None:
    """uvicorn as served: its parser hands the raw query to the access log."""
    from uvicorn.logging import AccessFormatter

    key = generate_key(Environment.LIVE)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('"%(request_line)s" %(status_code)s'))
    runtime = Runtime.build(settings.model_copy(update={"workers": 0}), engine=FixedEngine())
    access = logging.getLogger("uvicorn.access")
    try:
        with serving(create_app(runtime, start=False)) as port:
            access.addHandler(handler)
            access.setLevel(logging.INFO)  # serving() sets WARNING
            query = f"api_key={key.replace('_', '%5f')}&pdf_password=a;b;c"
            httpx.get(f"http://127.0.0.1:{port}/v1/jobs?{query}")
    finally:
        access.removeHandler(handler)
        runtime.stop()
    line = stream.getvalue()
    assert "GET /v1/jobs?api_key=[REDACTED-KEY]&pdf_password=[REDACTED]" in line
    assert key.removeprefix("ocv_live_")[:8] not in line and ";b;c" not in line
