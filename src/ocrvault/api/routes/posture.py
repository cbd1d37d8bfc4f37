"""The security posture report of the caller's tenant (scope ``audit:read``): JSON (the
stable form, schema in ocrvault/posture/posture.schema.json), Markdown or printable HTML."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ocrvault.api.deps import AuthFirstRoute, PostureServiceDep, require_scope
from ocrvault.api.schemas import problems
from ocrvault.posture.model import Report
from ocrvault.posture.render_html import render_html
from ocrvault.posture.render_markdown import render_markdown
from ocrvault.principal import Principal, Scope

PATH = "/v1/security/posture"
# The HTML form is a page: its inline styles may apply, nothing may load or frame it.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

router = APIRouter(tags=["security"], route_class=AuthFirstRoute)

Auditor = Annotated[Principal, Depends(require_scope(Scope.AUDIT_READ))]


class PostureFormat(StrEnum):
    JSON = "json"
    MD = "md"
    HTML = "html"


@router.get(PATH, response_model=Report, responses={
    **problems(400, 401, 403, 429),
    200: {"content": {"text/markdown": {}, "text/html": {}},
          "description": "The report; JSON unless `format` asks for md or html"}},
    summary="The security checklist, answered by this deployment with evidence")
def get_posture(posture: PostureServiceDep, caller: Auditor,
                format: Annotated[PostureFormat, Query(
                    description="json (stable, see the schema), md or html (printable)")]
                = PostureFormat.JSON) -> Response:
    report = posture.for_tenant(caller)
    if format is PostureFormat.HTML:
        return HTMLResponse(render_html(report))
    if format is PostureFormat.MD:
        return Response(render_markdown(report), media_type="text/markdown; charset=utf-8")
    return JSONResponse(report.model_dump(mode="json"))
