"""In transit: HTTPS with TLS 1.2 as the floor, HSTS, and no plaintext off loopback."""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from typer.testing import CliRunner

from ocrvault.api.app import create_app
from ocrvault.api.transport import tls_context_factory
from ocrvault.cli import app as cli_app
from ocrvault.cli import bind_refusal, transport_options
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.runtime import Runtime
from tests.databases import TestDatabases
from tests.servers import serving


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_port(databases: TestDatabases,
               ca: trustme.CA, tmp_path: Path, engine: TesseractEngine) -> Iterator[int]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    runtime = Runtime.build(databases.settings(tmp_path / "data", workers=1), engine=engine)
    with serving(create_app(runtime), ssl_certfile=str(cert_file), ssl_keyfile=str(key_file),
                 ssl_context_factory=tls_context_factory) as port:
        yield port


def client_context(ca: trustme.CA, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with warnings.catch_warnings():  # an outdated client on purpose: Python warns about it
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client is willing; the server must refuse
    return context


def handshake(port: int, context: ssl.SSLContext) -> str | None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.version()


def test_https_serves_with_hsts_and_no_store(https_port: int, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with httpx.Client(verify=context) as client:
        response = client.get(f"https://127.0.0.1:{https_port}/healthz")
        api = client.get(f"https://127.0.0.1:{https_port}/v1/jobs/x")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert api.status_code == 401 and api.headers["cache-control"] == "no-store"


def test_tls_1_2_and_1_3_clients_are_served(https_port: int, ca: trustme.CA) -> None:
    assert handshake(https_port, client_context(ca, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert handshake(https_port, client_context(ca, ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_clients_below_tls_1_2_are_refused(
    https_port: int, ca: trustme.CA, version: ssl.TLSVersion
) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(https_port, client_context(ca, version))


def test_plain_http_on_a_tls_port_gets_no_document_answer(https_port: int) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{https_port}/healthz", timeout=5)


@pytest.mark.parametrize(
    ("host", "tls", "proxy", "refused"),
    [("127.0.0.1", False, False, False), ("::1", False, False, False),
     ("localhost", False, False, False), ("0.0.0.0", False, False, True),
     ("10.1.2.3", False, False, True), ("0.0.0.0", True, False, False),
     ("0.0.0.0", False, True, False)],
)
def test_plain_http_is_refused_off_loopback(host: str, tls: bool, proxy: bool,
                                            refused: bool) -> None:
    assert (bind_refusal(host, tls=tls, behind_proxy=proxy) is not None) is refused


def test_serve_command_refuses_a_public_bind_without_tls(databases: TestDatabases,
                                                         tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0"],
                                env=databases.env(tmp_path))
    assert result.exit_code == 2
    assert "refusing plain HTTP" in result.output
    assert not databases.created(tmp_path)


@pytest.mark.parametrize(("trusted", "believed"), [("127.0.0.1", True), ("10.9.9.9", False)])
def test_forwarded_proto_is_believed_only_from_trusted_proxies(
    databases: TestDatabases, tmp_path: Path, engine: TesseractEngine, trusted: str, believed: bool
) -> None:
    """Behind a proxy, X-Forwarded-Proto: https (and so HSTS) counts only from
    OCRVAULT_TRUSTED_PROXIES; anyone else could otherwise claim a secure channel."""
    settings = databases.settings(tmp_path / "data", workers=1, trusted_proxies=trusted)
    runtime = Runtime.build(settings, engine=engine)
    options = transport_options(settings, None, None, behind_proxy=True)
    with serving(create_app(runtime), **options) as port:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz",
                             headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert ("strict-transport-security" in response.headers) is believed
