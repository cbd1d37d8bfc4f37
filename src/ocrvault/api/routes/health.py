"""Liveness and readiness probes (no auth; they reveal nothing about data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from ocrvault.api.deps import ReadinessProbesDep, ReaperStatsDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database, blob store and (where this node runs OCR) "
            "engine are ready")
def readyz(probes: ReadinessProbesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            probe()
            checks[name] = "ok"
        except Exception as error:
            checks[name] = f"failing: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse,
            summary="Prometheus metrics: counts and times only, never content or ids")
def metrics(stats: ReaperStatsDep) -> str:
    if stats is None:  # the reaper runs on the scheduler, not on this node
        return ""
    lines = [
        "# HELP ocrvault_reaper_runs_total Reaper passes since start.",
        "# TYPE ocrvault_reaper_runs_total counter",
        f"ocrvault_reaper_runs_total {stats.runs}",
        "# HELP ocrvault_reaper_jobs_total Jobs the reaper applied retention to since start.",
        "# TYPE ocrvault_reaper_jobs_total counter",
        f"ocrvault_reaper_jobs_total {stats.jobs_processed}",
        "# HELP ocrvault_reaper_lag_seconds Time from expiry to deletion, last pass (max).",
        "# TYPE ocrvault_reaper_lag_seconds gauge",
        f"ocrvault_reaper_lag_seconds {stats.last_run_lag_seconds:.3f}",
        "# HELP ocrvault_reaper_max_lag_seconds Largest lag seen since start.",
        "# TYPE ocrvault_reaper_max_lag_seconds gauge",
        f"ocrvault_reaper_max_lag_seconds {stats.max_lag_seconds:.3f}",
    ]
    return "\n".join(lines) + "\n"
