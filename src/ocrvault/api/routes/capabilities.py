"""What the deployment reads: its engines and their languages.

Scope ``read:submit``: these lists serve choosing ``languages=`` (and an engine) for a
submission, and they name software versions, which a key that cannot submit (an
auditor's, a deleter's) has no use for.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ocrvault.api.deps import AuthFirstRoute, EngineCatalogDep, require_scope
from ocrvault.api.schemas import problems
from ocrvault.jobs.capabilities import (
    EngineDescription,
    LanguageDescription,
    describe_engines,
    describe_languages,
)
from ocrvault.principal import Principal, Scope

router = APIRouter(prefix="/v1", tags=["capabilities"], route_class=AuthFirstRoute)

Submitter = Annotated[Principal, Depends(require_scope(Scope.READ_SUBMIT))]


class EngineList(BaseModel):
    engines: list[EngineDescription]


class LanguageList(BaseModel):
    languages: list[LanguageDescription] = Field(
        description="Codes to pass as 'languages' (join several with ',' or '+')")


@router.get("/engines", response_model=EngineList, responses=problems(401, 403, 429),
            summary="The OCR engines this server runs, with their versions and languages")
def list_engines(engines: EngineCatalogDep, caller: Submitter) -> EngineList:
    return EngineList(engines=describe_engines(engines.specs(), engines.default))


@router.get("/languages", response_model=LanguageList, responses=problems(401, 403, 429),
            summary="The languages this server reads, with their names")
def list_languages(engines: EngineCatalogDep, caller: Submitter) -> LanguageList:
    return LanguageList(languages=describe_languages(engines.specs()))
