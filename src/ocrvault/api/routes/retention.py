"""Retention policies: the tenant's, and per-key overrides (scope policies:manage)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ocrvault.access.principal import Principal, Scope
from ocrvault.api.deps import AuthFirstRoute, RuntimeDep, require_scope
from ocrvault.api.schemas import problems
from ocrvault.retention.policy import MAX_SECONDS, RetentionPolicy

router = APIRouter(prefix="/v1", tags=["retention"], route_class=AuthFirstRoute)

Manager = Annotated[Principal, Depends(require_scope(Scope.POLICIES_MANAGE))]
Seconds = Field(ge=0, le=MAX_SECONDS, strict=True)  # strict: JSON false is no 0


class RetentionBody(BaseModel):
    """Seconds each kind of data is kept after its job finishes (0: deleted at once)."""

    input: int = Seconds
    result: int = Seconds
    outputs: int = Seconds
    job_metadata: int = Seconds
    failed_inputs: int = Seconds

    @classmethod
    def of(cls, policy: RetentionPolicy) -> RetentionBody:
        return cls(**policy.as_dict())

    def policy(self) -> RetentionPolicy:
        return RetentionPolicy(**self.model_dump())


@router.get("/retention", response_model=RetentionBody, responses=problems(401, 403, 429),
            summary="The tenant's retention policy")
def get_tenant_retention(rt: RuntimeDep, caller: Manager) -> RetentionBody:
    return RetentionBody.of(rt.retention.tenant_policy(caller))


@router.put("/retention", response_model=RetentionBody, responses=problems(400, 401, 403, 429),
            summary="Replace the tenant's retention policy (applies to jobs submitted from now)")
def put_tenant_retention(body: RetentionBody, rt: RuntimeDep, caller: Manager) -> RetentionBody:
    return RetentionBody.of(rt.retention.set_tenant_policy(caller, body.policy()))


@router.get("/keys/{key_id}/retention", response_model=RetentionBody,
            responses=problems(401, 403, 404, 429),
            summary="The retention policy jobs submitted with this key get")
def get_key_retention(key_id: str, rt: RuntimeDep, caller: Manager) -> RetentionBody:
    return RetentionBody.of(rt.retention.key_policy(caller, key_id))


@router.put("/keys/{key_id}/retention", response_model=RetentionBody,
            responses=problems(400, 401, 403, 404, 429),
            summary="Override the tenant's retention policy for jobs submitted with this key")
def put_key_retention(key_id: str, body: RetentionBody, rt: RuntimeDep,
                      caller: Manager) -> RetentionBody:
    return RetentionBody.of(rt.retention.set_key_policy(caller, key_id, body.policy()))
