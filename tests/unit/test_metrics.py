"""The metrics module: several processes of a role merge into one scrape (multiprocess
mode), the key-provider hook times calls and says whether the provider is up, the
decode sandbox's kills are counted by reason, and the scheduler's census reports the
queue from the database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sandbox_targets as targets
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from ocrvault.config import Settings
from ocrvault.errors import InputRejected
from ocrvault.ingest import Sandbox
from ocrvault.jobs.census import JobCensus
from ocrvault.telemetry import metrics
from tests.clocks import FakeClock
from tests.conftest import auth, runtime_of
from tests.docgen import encode, text_page

SRC = Path(__file__).resolve().parents[2] / "src"

RECORD = """
from ocrvault.telemetry import metrics
metrics.REQUESTS.labels(method="GET", route="/v1/jobs", status="200").inc({count})
metrics.REAPER_LAG.set({lag})
"""


def _python(code: str, multiproc_dir: Path, *, with_tests: bool = False) -> str:
    path = f"{SRC}{os.pathsep}{SRC.parent}" if with_tests else str(SRC)
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": path, metrics.MULTIPROC_ENV: str(multiproc_dir)},
    ).stdout


def test_processes_of_one_node_merge_into_one_scrape(tmp_path: Path) -> None:
    _python(RECORD.format(count=2, lag=3.5), tmp_path)
    _python(RECORD.format(count=5, lag=1.0), tmp_path)

    scraped = _python("from ocrvault.telemetry import metrics\n"
                      "print(metrics.exposition()[0].decode())", tmp_path)

    assert 'ocrvault_http_requests_total{method="GET",route="/v1/jobs",status="200"} 7.0' in (
        scraped)
    # A gauge merges as its multiprocess_mode says: the reaper's lag, the largest.
    assert "ocrvault_reaper_lag_seconds 3.5" in scraped


DECODE_AND_RENDER = """
import os
from ocrvault.compose.worker import build_pipeline
from ocrvault.config import Settings
from ocrvault.model import OutputFormat
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine

pipeline = build_pipeline(Settings(data_dir="unused"), FixedEngine())
data = encode(text_page(["hello"], size=(300, 100)), "PNG")
params = pipeline.params(None, None, "pdf")
checked = pipeline.check(data, params)
pipeline.render(pipeline.run(data, checked, params), data, checked, params, OutputFormat.PDF)
pipeline.ingestor.sandbox.close()
print(os.getpid())
"""


def test_decode_sandbox_children_write_no_metrics_file(tmp_path: Path) -> None:
    """In multiprocess mode every process that loads the metrics writes a file: the
    sandbox's children, which write nothing, must not load them."""
    parent = _python(DECODE_AND_RENDER, tmp_path, with_tests=True).strip()
    writers = {path.stem.rsplit("_", 1)[1] for path in tmp_path.iterdir()}
    assert writers == {parent}


def test_the_key_provider_hook_times_calls_and_reports_the_provider_down_on_failure() -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    calls_before = sample("ocrvault_key_provider_duration_seconds_count",
                          provider="test", operation="unwrap")
    with metrics.key_provider_call("test", "unwrap"):
        pass
    assert sample("ocrvault_key_provider_up", provider="test") == 1.0
    with pytest.raises(TimeoutError), metrics.key_provider_call("test", "unwrap"):
        raise TimeoutError

    assert sample("ocrvault_key_provider_up", provider="test") == 0.0
    assert sample("ocrvault_key_provider_errors_total", provider="test", operation="unwrap") == 1
    assert sample("ocrvault_key_provider_duration_seconds_count", provider="test",
                  operation="unwrap") == calls_before + 2


def test_a_sandbox_child_killed_at_its_timeout_is_counted_with_the_restart() -> None:
    def kills() -> float:
        return REGISTRY.get_sample_value("ocrvault_sandbox_kills_total",
                                         {"reason": "timeout"}) or 0.0

    def restarts() -> float:
        return REGISTRY.get_sample_value("ocrvault_sandbox_restarts_total") or 0.0

    kills_before, restarts_before = kills(), restarts()
    with Sandbox(memory_bytes=256 * 2**20, cpu_seconds=60, timeout_seconds=1) as box:
        with pytest.raises(InputRejected):
            box.call(targets.block)
        box.call(targets.child_pid)
    assert kills() == kills_before + 1
    assert restarts() == restarts_before + 2


def test_the_census_reports_queue_depth_and_the_oldest_jobs_age(
        make_client: Callable[..., TestClient], settings: Settings) -> None:
    clock = FakeClock()
    # No worker threads: what is submitted stays queued.
    client = make_client(settings.model_copy(update={"workers": 0}), clock=clock)
    runtime = runtime_of(client)
    key = runtime.access.bootstrap_tenant("acme").secret
    page = encode(text_page(["queued"], size=(400, 100)), "PNG")
    for _ in range(2):
        response = client.post("/v1/read", content=page, headers=auth(key))
        assert response.status_code == 202, response.text
    clock.advance(timedelta(seconds=90))

    JobCensus(runtime.db, clock).run_once()

    assert REGISTRY.get_sample_value("ocrvault_queue_depth") == 2
    assert REGISTRY.get_sample_value("ocrvault_jobs", {"state": "queued"}) == 2
    assert REGISTRY.get_sample_value("ocrvault_jobs", {"state": "succeeded"}) == 0
    assert REGISTRY.get_sample_value("ocrvault_queue_oldest_age_seconds") == 90
