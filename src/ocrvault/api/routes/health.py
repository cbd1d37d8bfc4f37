"""Liveness and readiness probes (no auth; they reveal nothing about data).

Prometheus metrics are not on this port: telemetry/metrics.py serves them on
OCRVAULT_METRICS_PORT, for every role."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ocrvault.api.deps import ReadinessProbesDep

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
