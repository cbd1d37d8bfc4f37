"""`serve` with the operations settings, as an operator starts it: a scheduler (no HTTP of
its own) serves Prometheus metrics on OCRVAULT_METRICS_PORT and writes JSON log lines."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from ocrvault.cli import app
from tests.databases import TestDatabases
from tests.e2e.live import LiveServer
from tests.servers import free_port


def scrape_until(url: str, text: str, timeout: float = 60) -> str:
    """The scrape, once it holds ``text``; the scheduler's first pass may take a tick."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = httpx.get(url, timeout=5).text
            if text in body:
                return body
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} at {url} within {timeout}s")
        time.sleep(0.1)


def test_a_scheduler_serves_metrics_on_its_port_and_logs_json_lines(
        databases: TestDatabases, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = databases.env(data_dir)
    assert CliRunner().invoke(app, ["migrate"], env=env).exit_code == 0
    port = free_port()
    server = LiveServer(data_dir, "--role", "scheduler", env={
        **env, "OCRVAULT_METRICS_PORT": str(port), "OCRVAULT_LOG_FORMAT": "json",
        "OCRVAULT_REAPER_INTERVAL_SECONDS": "0.2"})
    try:
        server.wait_for_output("running")
        body = scrape_until(f"http://127.0.0.1:{port}/metrics", "ocrvault_reaper_runs_total 1")
        assert 'ocrvault_jobs{state="queued"} 0.0' in body
        assert "ocrvault_queue_oldest_age_seconds 0.0" in body
        server.process.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    finally:
        server.close()
    logged = [json.loads(line) for line in server.output.splitlines() if line.startswith("{")]
    assert logged and all({"ts", "level", "logger", "message"} <= set(line) for line in logged)
