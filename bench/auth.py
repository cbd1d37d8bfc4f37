"""What authentication and the audit log add to a request, measured side by side.

One runtime serves ``GET /v1/jobs/{id}`` of a finished job (a result read, so the
audited path) through three apps, called in turn in the same loop:

- bare: the key check replaced through ``dependency_overrides`` and the audit log by a
  no-op, so only the route, the database read and the result's decryption remain;
- auth: the real key check (parse, digest lookup, restrictions), no audit entry;
- auth + audit: everything, as served (the entry is hashed, signed and committed).

The OCR engine is a fake: recognition plays no part here. Run: python bench/auth.py
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from ocrvault.api.app import create_app
from ocrvault.api.deps import require_scope
from ocrvault.audit import AuditEvent
from ocrvault.config import Settings
from ocrvault.principal import Principal, RequestContext, Scope
from ocrvault.runtime import Runtime
from ocrvault.store.db import Transaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine


class NoAudit:
    def record(self, event: AuditEvent, within: Transaction | None = None) -> None:
        return None


def quiet(runtime: Runtime) -> Runtime:
    """The same runtime whose job service writes no audit entries."""
    jobs = copy.copy(runtime.jobs)
    jobs.audit = NoAudit()
    return replace(runtime, jobs=jobs)


def timed(client: TestClient, path: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    response = client.get(path, headers=headers)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per variant")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="ocrvault-bench-auth-")) / "data"
    runtime = Runtime.build(Settings(data_dir=data_dir, workers=1, reaper_interval_seconds=3600),
                            engine=FixedEngine())
    with ExitStack() as stack:
        served = stack.enter_context(TestClient(create_app(runtime)))
        key = runtime.access.bootstrap_tenant("bench").secret
        headers = {"Authorization": f"Bearer {key}"}
        job = served.post("/v1/read", content=encode(text_page(["bench"]), "PNG"),
                          headers=headers).json()["id"]
        while served.get(f"/v1/jobs/{job}", headers=headers).json()["status"] != "succeeded":
            time.sleep(0.01)
        caller = runtime.access.authenticate(key, RequestContext("bench"), Scope.JOBS_READ)
        silent = quiet(runtime)
        bare_app, auth_app = create_app(silent, start=False), create_app(silent, start=False)
        bare_app.dependency_overrides[require_scope(Scope.JOBS_READ)] = _fixed(caller)
        variants: dict[str, tuple[FastAPI | None, dict[str, str]]] = {
            "bare (no auth, no audit)": (bare_app, {}),
            "auth, no audit": (auth_app, headers),
            "auth + audit": (None, headers),
        }
        clients = {name: served if app is None else stack.enter_context(TestClient(app))
                   for name, (app, _) in variants.items()}
        samples: dict[str, list[float]] = {name: [] for name in variants}
        path = f"/v1/jobs/{job}"
        for round_ in range(args.requests + 200):
            for name, (_, sent) in variants.items():
                elapsed = timed(clients[name], path, sent)
                if round_ >= 200:  # the first rounds warm caches and connections
                    samples[name].append(elapsed)
    report(samples, args.requests)


def _fixed(caller: Principal) -> Callable[[], Principal]:
    return lambda: caller


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100)[int(fraction * 100) - 1]


def report(samples: dict[str, list[float]], requests: int) -> None:
    print(f"GET /v1/jobs/{{id}} of a finished job, {requests} requests per variant, interleaved")
    print(f"{'variant':<28}{'p50 ms':>9}{'p95 ms':>9}")
    stats = {name: (statistics.median(v), percentile(v, 0.95)) for name, v in samples.items()}
    for name, (p50, p95) in stats.items():
        print(f"{name:<28}{p50:>9.3f}{p95:>9.3f}")
    (bare50, bare95), (auth50, auth95), (all50, all95) = stats.values()
    for label, p50, p95 in (("authentication", auth50, auth95), ("auth + audit", all50, all95)):
        print(f"added by {label:<17} p50 {p50 - bare50:+.3f} ms, p95 {p95 - bare95:+.3f} ms")
    print("target: auth + audit under 1 ms at p50")


if __name__ == "__main__":
    main()
