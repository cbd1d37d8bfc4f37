"""A sample page to submit (scope ``read:submit``): the "try it" line needs no file of yours.

It holds no data of anyone's, but /v1 stays authenticated throughout; a key that cannot
submit has no use for it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from ocrvault.api.deps import AuthFirstRoute, require_scope
from ocrvault.api.schemas import problems
from ocrvault.principal import Principal, Scope
from ocrvault.sample import sample_png

router = APIRouter(prefix="/v1", tags=["read"], route_class=AuthFirstRoute)


@router.get("/sample.png", response_class=Response, responses={
    200: {"content": {"image/png": {}}, "description": "A PNG page with a few lines of text"},
    **problems(401, 403, 429)}, summary="A sample page to try the read routes on")
def sample(_caller: Annotated[Principal, Depends(require_scope(Scope.READ_SUBMIT))]) -> Response:
    return Response(sample_png(), media_type="image/png")
