"""Every Prometheus metric of ocrvault, defined here and only here.

Other modules record with one line each (``metrics.PAGES.labels(engine=...).inc()``);
the definitions, their help texts and what may be a label live in this one place, so a
reviewer checks one file for what leaves the process. Labels are bounded and
content-free: route templates (``/v1/jobs/{job_id}``, never a path with an id), HTTP
methods and statuses, engine names, error codes, fixed outcome words. Never a tenant, a
key, a job id, a file name or text: ``tests/security/test_metrics_content.py`` runs a
canary document through the API and scrapes.

Exposition: :func:`serve` starts a scrape endpoint on its own port
(``OCRVAULT_METRICS_PORT``, bound to ``OCRVAULT_METRICS_HOST``, default loopback), on every
role: the worker and the scheduler have no HTTP of their own, and the API's port serves
tenants, who must not read cluster-wide figures.

Several processes of one role on one host (uvicorn or gunicorn workers, several worker
processes) share one scrape through prometheus_client's multiprocess mode: set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder owned by the service user, the same for
the processes of one node, emptied before they start (the systemd unit's
``ExecStartPre``); each process then writes its samples there and the scrape merges
them. Gauges say how they merge (``multiprocess_mode``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Request and page times: sub-second API calls up to multi-minute pages of huge scans.
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# --- HTTP (api/observe.py) ---
REQUESTS = Counter("ocrvault_http_requests", "HTTP requests answered, by route template.",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("ocrvault_http_request_duration_seconds",
                            "Time to answer an HTTP request, by route template.",
                            ["method", "route"], buckets=_FAST)
REFUSALS = Counter("ocrvault_refusals", "Requests answered with a problem+json, by its code.",
                   ["code"])
RATE_LIMIT_HITS = Counter("ocrvault_rate_limit_hits",
                          "Requests refused because their key was over its rate.")

# --- jobs (jobs/worker.py, jobs/census.py) ---
JOBS = Gauge("ocrvault_jobs", "Jobs in the database by state (sampled by the scheduler).",
             ["state"], multiprocess_mode="livemax")
JOBS_FINISHED = Counter("ocrvault_jobs_finished", "Jobs a worker finished, by final state.",
                        ["state"])
QUEUE_DEPTH = Gauge("ocrvault_queue_depth", "Jobs queued and not yet claimed by a worker.",
                    multiprocess_mode="livemax")
QUEUE_OLDEST_AGE = Gauge("ocrvault_queue_oldest_age_seconds",
                         "Age of the oldest job still waiting for a worker (0: none waits).",
                         multiprocess_mode="livemax")
QUEUE_WAIT_SECONDS = Histogram("ocrvault_queue_wait_seconds",
                               "Time from submission to a worker claiming the job.",
                               buckets=_SLOW)

# --- pages (jobs/pipeline.py) ---
PAGES = Counter("ocrvault_pages", "Pages recognised, by engine.", ["engine"])
PAGE_SECONDS = Histogram("ocrvault_page_duration_seconds",
                         "Time an engine took to recognise one page.", ["engine"],
                         buckets=_SLOW)

# --- decode sandbox (ingest/sandbox.py) ---
SANDBOX_RESTARTS = Counter("ocrvault_sandbox_restarts",
                           "Decode sandbox child processes started.")
SANDBOX_KILLS = Counter(
    "ocrvault_sandbox_kills",
    "Decode sandbox children stopped on a file: timeout, memory, cpu, crash, invalid_reply.",
    ["reason"])

# --- retention (retention/reaper.py) ---
REAPER_RUNS = Counter("ocrvault_reaper_runs", "Reaper passes.")
REAPER_JOBS = Counter("ocrvault_reaper_jobs", "Jobs the reaper applied retention to.")
REAPER_LAG = Gauge("ocrvault_reaper_lag_seconds",
                   "Time from expiry to deletion, largest of the last pass.",
                   multiprocess_mode="livemax")
REAPER_MAX_LAG = Gauge("ocrvault_reaper_max_lag_seconds",
                       "Largest time from expiry to deletion since this process started.",
                       multiprocess_mode="livemax")
REAPER_LAST_RUN = Gauge("ocrvault_reaper_last_run_timestamp_seconds",
                        "When the last reaper pass ended (Unix time): a stalled reaper shows.",
                        multiprocess_mode="livemax")

# --- keys (crypto/: the master-key provider's calls) ---
KEY_PROVIDER_SECONDS = Histogram("ocrvault_key_provider_duration_seconds",
                                 "Time of one call to the master-key provider.",
                                 ["provider", "operation"], buckets=_FAST)
KEY_PROVIDER_ERRORS = Counter("ocrvault_key_provider_errors",
                              "Calls to the master-key provider that failed.",
                              ["provider", "operation"])
KEY_PROVIDER_UP = Gauge("ocrvault_key_provider_up",
                        "1 if the last call to the master-key provider succeeded, else 0.",
                        ["provider"], multiprocess_mode="livemin")

# --- webhooks (webhooks/: one increment per delivery attempt's end) ---
WEBHOOK_DELIVERIES = Counter(
    "ocrvault_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, failed (will retry), gave_up, refused "
    "(the SSRF guard).", ["outcome"])


@contextmanager
def key_provider_call(provider: str, operation: str) -> Iterator[None]:
    """Times one call to a master-key provider (``provider``: its kind, e.g. ``file``,
    ``kms``, never a key id or an ARN; ``operation``: ``wrap``, ``unwrap``, ``load``), and
    records whether it worked. The keys engineer wraps each provider call in this."""
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        KEY_PROVIDER_ERRORS.labels(provider=provider, operation=operation).inc()
        KEY_PROVIDER_UP.labels(provider=provider).set(0)
        raise
    finally:
        KEY_PROVIDER_SECONDS.labels(provider=provider, operation=operation).observe(
            time.perf_counter() - started)
    KEY_PROVIDER_UP.labels(provider=provider).set(1)


def record_reaper_pass(jobs: int, lag_seconds: float, max_lag_seconds: float) -> None:
    REAPER_RUNS.inc()
    REAPER_JOBS.inc(jobs)
    REAPER_LAG.set(lag_seconds)
    REAPER_MAX_LAG.set(max_lag_seconds)
    REAPER_LAST_RUN.set_to_current_time()


@contextmanager
def page_read(engine: str) -> Iterator[None]:
    """Counts and times one page an engine reads (only pages read: a failure raises out)."""
    started = time.perf_counter()
    yield
    PAGES.labels(engine=engine).inc()
    PAGE_SECONDS.labels(engine=engine).observe(time.perf_counter() - started)


def registry() -> CollectorRegistry:
    """The registry a scrape reads: this process's, or in multiprocess mode every
    process's of this node, merged."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def exposition() -> tuple[bytes, str]:
    """The scrape body and its content type."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve(port: int, host: str = "127.0.0.1") -> Callable[[], None]:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread (prometheus_client's own
    server); returns what stops it (a process simply exits)."""
    server, _thread = start_http_server(port, addr=host, registry=registry())

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


def process_exited(pid: int | None = None) -> None:
    """In multiprocess mode, drop a finished process's live gauges from the merge."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
