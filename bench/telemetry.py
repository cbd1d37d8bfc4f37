"""What metrics, traces and JSON access logs cost a request, in CPU, measured side by side.

One runtime serves two requests through four apps, called in turn in the same loop:

- off: the observing middleware (api/observe.py) taken out: no metrics, no span, no line;
- metrics: as served by default (Prometheus counters and histograms; tracing off, so a
  no-op span);
- metrics + traces: tracing on, spans batched to an exporter that drops them (the cost
  up to the network);
- metrics + traces + json: also one JSON access line per request, written to /dev/null.

Then the middleware alone around a do-nothing ASGI app, many times over: its own CPU per
request, free of the noise of whole requests, as a share of the requests above.

Requests: ``GET /healthz`` (no auth, no database: the worst case for the ratio) and
``GET /v1/jobs`` (key check and a database read: a typical API call). CPU is this
process's (client and server share it, as with TestClient), so the ratios understate the
server-side share a little. Run: python bench/telemetry.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocrvault.api.app import create_app
from ocrvault.api.observe import ObserveMiddleware
from ocrvault.config import Settings
from ocrvault.logs import JsonFormatter
from ocrvault.runtime import Runtime
from ocrvault.telemetry import tracing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.engine_fakes import FixedEngine


class Dropping(SpanExporter):
    """Takes every batch and keeps nothing: the exporter's cost without a collector."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def app_of(runtime: Runtime, *, observed: bool, log_lines: bool = False) -> FastAPI:
    app = create_app(runtime, start=False)
    kept = [m for m in app.user_middleware if m.cls is not ObserveMiddleware]
    if not observed:
        app.user_middleware[:] = kept
    else:
        for middleware in app.user_middleware:
            if middleware.cls is ObserveMiddleware:
                middleware.kwargs["log_lines"] = log_lines
    return app


def cpu_per_request(client: TestClient, path: str, headers: dict[str, str], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return (time.process_time() - start) / n


class _Route:
    path_format = "/v1/jobs/{job_id}"


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = _Route()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def middleware_cpu(app: ASGIApp, n: int) -> float:
    """CPU per call of ``app`` on a minimal request, with nothing else around it."""

    async def run() -> float:
        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(_message: Message) -> None:
            return None

        start = time.process_time()
        for _ in range(n):
            await app({"type": "http", "method": "GET", "path": "/v1/jobs/x", "headers": [],
                       "state": {"request_id": "r"}}, receive, send)
        return (time.process_time() - start) / n

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per turn")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    sink = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
    sink.setFormatter(JsonFormatter())
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        runtime = Runtime.build(Settings(data_dir=Path(tmp) / "data", workers=1,
                                         reaper_interval_seconds=3600), engine=FixedEngine())
        stack.callback(runtime.stop)
        key = runtime.access.bootstrap_tenant("bench").secret
        auth = {"Authorization": f"Bearer {key}"}

        def tracing_on() -> None:
            tracing.configure(None, "bench", processor=BatchSpanProcessor(Dropping()))

        variants: dict[str, tuple[TestClient, Callable[[], None], bool]] = {
            "off": (TestClient(app_of(runtime, observed=False)), tracing.shutdown, False),
            "metrics": (TestClient(app_of(runtime, observed=True)), tracing.shutdown, False),
            "metrics+traces": (TestClient(app_of(runtime, observed=True)), tracing_on, False),
            "metrics+traces+json": (TestClient(app_of(runtime, observed=True, log_lines=True)),
                                    tracing_on, True),
        }
        for client, _setup, _json in variants.values():
            stack.enter_context(client)
        bases: dict[str, float] = {}
        for path, headers in (("/healthz", {}), ("/v1/jobs", auth)):
            samples: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for turn in range(args.rounds):
                # Each round starts with another variant: no variant always runs cold.
                for name in names[turn % len(names):] + names[:turn % len(names)]:
                    client, setup, json_lines = variants[name]
                    setup()
                    if json_lines:
                        root.addHandler(sink)
                    cpu_per_request(client, path, headers, 20)  # warm
                    samples[name].append(cpu_per_request(client, path, headers, args.requests))
                    root.removeHandler(sink)
                    tracing.shutdown()
            base = statistics.median(samples["off"])
            bases[path] = base
            print(f"GET {path}: CPU per request, median of {args.rounds} rounds of "
                  f"{args.requests}")
            for name, values in samples.items():
                median = statistics.median(values)
                print(f"  {name:<22} {median * 1e6:8.0f} us   x{median / base:.3f}")

        # The middleware alone, on a do-nothing app: its own cost without the noise of a
        # whole request, as a share of the requests measured above.
        n = args.requests * 40
        alone = {"bare app": lambda: (_answer, tracing.shutdown, False),
                 "metrics": lambda: (observed(False), tracing.shutdown, False),
                 "metrics+traces": lambda: (observed(False), tracing_on, False),
                 "metrics+traces+json": lambda: (observed(True), tracing_on, True)}
        costs: dict[str, list[float]] = {name: [] for name in alone}
        for _ in range(args.rounds):
            for name, make in alone.items():
                app, setup, json_lines = make()
                setup()
                if json_lines:
                    root.addHandler(sink)
                costs[name].append(middleware_cpu(app, n))
                root.removeHandler(sink)
                tracing.shutdown()
        bare = statistics.median(costs["bare app"])
        print(f"The middleware alone, median of {args.rounds} rounds of {n} calls:")
        for name, values in list(costs.items())[1:]:
            added = statistics.median(values) - bare
            shares = ", ".join(f"x{1 + added / base:.3f} of GET {path}"
                               for path, base in bases.items())
            print(f"  {name:<22} +{added * 1e6:6.1f} us per request ({shares})")


def observed(log_lines: bool) -> ASGIApp:
    return ObserveMiddleware(_answer, log_lines=log_lines, log_tenant="hash")


if __name__ == "__main__":
    main()
