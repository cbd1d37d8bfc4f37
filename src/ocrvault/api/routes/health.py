"""Liveness and readiness probes (no auth; they reveal nothing about data)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ocrvault.api.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database, blob store and OCR engine are ready")
def readyz(rt: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, probe in (
        ("database", rt.db.ping),
        ("blob_store", rt.documents.blobs.ping),
        ("engine", lambda: rt.pipeline.engine.languages()),
    ):
        try:
            probe()
            checks[name] = "ok"
        except Exception as error:
            checks[name] = f"failing: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)
