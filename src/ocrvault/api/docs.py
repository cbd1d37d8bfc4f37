"""Swagger UI at ``/docs``, served from the package, never from a CDN.

FastAPI's page loads Swagger UI from a public CDN with no integrity check, so a third
party decides what script runs beside the user's API key, and the page is blank
offline. Here the page is FastAPI's, pointed at the copy of Swagger UI (5.x, which reads
OpenAPI 3.1) that the pinned ``fastapi-offline`` wheel ships, and only the files the page
loads are served. Its one inline script (the initialiser) is allowed by its SHA-256,
computed from the page as generated, in a Content-Security-Policy that otherwise allows
nothing but this origin.

Residual risks: Swagger UI itself runs with the user's key in the page; keep the wheel
current. ``OCRVAULT_DOCS_ENABLED=false`` removes the page and its assets;
``/openapi.json`` stays, since the SDK and tests read it and it holds no data.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/static"
# The files of the bundle the page loads, with their types; nothing else of it is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
# Only its files are used: FastAPIOffline itself would route redoc and a CDN fallback too.
_ASSET_DIR = Path(str(files("fastapi_offline") / "static"))
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
# Swagger UI draws its icons as data: SVGs in its CSS; it fetches only the OpenAPI document.
_POLICY = ("default-src 'none'; script-src 'self' {scripts}; style-src 'self'; "
           "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")


def docs_page(openapi_url: str, title: str) -> tuple[str, str]:
    """The docs page and the Content-Security-Policy that lets exactly it run."""
    html = bytes(get_swagger_ui_html(
        openapi_url=openapi_url, title=title,
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
    ).body).decode("utf-8")
    scripts = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html))
    return html, _POLICY.format(scripts=scripts)


def install_docs(app: FastAPI) -> str:
    """Route the docs page and its assets on ``app``; return the page's policy."""
    html, policy = docs_page(app.openapi_url or "/openapi.json", f"{app.title} API")

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(html)

    @app.get(f"{ASSETS_PATH}/{{name}}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404)
        return FileResponse(_ASSET_DIR / name, media_type=media_type)

    return policy
