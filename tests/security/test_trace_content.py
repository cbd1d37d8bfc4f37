"""Traces show where a document's time went, never what it said: with an in-memory
exporter, a canary document's spans (request, queue wait, decode, recognise, seal,
store) hold no document text, secret, tenant, key, job id or file name."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ocrvault.config import Settings
from ocrvault.telemetry import tracing
from tests.conftest import auth, runtime_of, wait_for_job
from tests.docgen import canary as make_canary
from tests.security.test_at_rest import canary_png


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(None, "all", processor=SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()


def test_spans_cover_a_job_and_hold_no_content_or_secret(
        make_client: Callable[..., TestClient], settings: Settings,
        exporter: InMemorySpanExporter) -> None:
    client = make_client(settings)
    tenant = f"tenant-{secrets.token_hex(6)}"
    issued = runtime_of(client).access.bootstrap_tenant(tenant)
    canary = make_canary()
    file_name = f"file-{secrets.token_hex(6)}.png"
    password = f"pw-{secrets.token_hex(8)}"
    submitted = client.post("/v1/read", params={"outputs": "text", "pdf_password": password},
                            headers=auth(issued.secret),
                            files={"file": (file_name, canary_png(canary), "image/png")})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert wait_for_job(client, job_id, issued.secret)["status"] == "succeeded"
    assert canary.split()[1] in client.get(f"/v1/jobs/{job_id}/outputs/text",
                                           headers=auth(issued.secret)).text

    spans = exporter.get_finished_spans()

    assert {"http.request", "queue.wait", "job", "decode", "recognise", "seal",
            "store"} <= {span.name for span in spans}
    recorded = repr([(span.name, dict(span.attributes or {}),
                      [(event.name, dict(event.attributes or {})) for event in span.events])
                     for span in spans])
    forbidden = {"tenant name": tenant, "tenant id": issued.tenant_id, "key id": issued.key_id,
                 "secret": issued.secret, "job id": job_id, "file name": file_name,
                 "password": password, **{f"canary word {w}": w for w in canary.split()[1:]}}
    assert [what for what, value in forbidden.items() if value in recorded] == []
    assert "/v1/jobs/{job_id}" in recorded  # routes are templates


def test_tracing_is_off_unless_configured() -> None:
    assert not tracing.enabled()
    with tracing.span("anything") as span:
        assert not span.is_recording()


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector stand-in: records each export's path and content type."""

    received: list[tuple[str, str, int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_with_an_otlp_endpoint_spans_are_exported_there(
        make_client: Callable[..., TestClient], settings: Settings) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        tracing.configure(endpoint, "all")
        client = make_client(settings)
        assert client.get("/healthz").status_code == 200
        tracing.shutdown()  # flushes the batch
    finally:
        tracing.shutdown()
        server.shutdown()
        server.server_close()
    assert [(path, kind) for path, kind, size in _Collector.received if size] == [
        ("/v1/traces", "application/x-protobuf")]
