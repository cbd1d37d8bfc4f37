"""Nothing is sent anywhere: FastAPI's built-in OpenTelemetry stays off even when the
environment asks for it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from ocrvault.config import Settings
from tests.conftest import auth, runtime_of


@pytest.fixture
def collector() -> tuple[socket.socket, list[bytes]]:
    """A local listener standing in for an OTLP collector; records any connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[bytes] = []

    def accept() -> None:
        while server.fileno() != -1:
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            seen.append(connection.recv(1024))
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, seen


def test_fastapi_telemetry_is_off_even_when_the_environment_configures_it(
    monkeypatch: pytest.MonkeyPatch, collector: tuple[socket.socket, list[bytes]],
    make_client: Callable[..., TestClient], settings: Settings,
) -> None:
    server, seen = collector
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    client = make_client(settings)

    config = client.app._telemetry  # type: ignore[attr-defined]
    assert not any(config[name] for name in
                   ("tracing", "metrics", "logs", "operation_spans", "auto_configure"))
    key = runtime_of(client).access.bootstrap_tenant("acme").secret
    for _ in range(5):
        client.get("/v1/jobs/nothing", headers=auth(key))
    client.__exit__(None, None, None)  # shutdown is when batched exporters would flush
    server.close()
    assert seen == []
