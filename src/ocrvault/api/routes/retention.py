"""Retention policies: the tenant's, per environment, and per-key overrides (scope
policies:manage)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ocrvault.access.keys import Environment
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

    def policy(self) -> RetentionPolicy:
        return RetentionPolicy(**self.model_dump())


class RetentionAnswer(RetentionBody):
    environment: Environment = Field(description="The environment whose jobs it applies to")

    @classmethod
    def of(cls, policy: RetentionPolicy, environment: Environment) -> RetentionAnswer:
        return cls(**policy.as_dict(), environment=environment)


EnvironmentParam = Annotated[Environment | None, Query(
    description="Whose policy: 'live' or 'test' (default: the caller's key's environment; "
    "a test key reaches 'test' only)")]

@router.get("/retention", response_model=RetentionAnswer,
            responses=problems(400, 401, 403, 429),
            summary="The tenant's retention policy for an environment")
def get_tenant_retention(rt: RuntimeDep, caller: Manager,
                         environment: EnvironmentParam = None) -> RetentionAnswer:
    environment = environment or caller.environment
    return RetentionAnswer.of(rt.retention.tenant_policy(caller, environment), environment)


@router.put("/retention", response_model=RetentionAnswer,
            responses=problems(400, 401, 403, 429),
            summary="Replace the tenant's retention policy for an environment (applies to jobs "
            "submitted from now)")
def put_tenant_retention(body: RetentionBody, rt: RuntimeDep, caller: Manager,
                         environment: EnvironmentParam = None) -> RetentionAnswer:
    environment = environment or caller.environment
    return RetentionAnswer.of(
        rt.retention.set_tenant_policy(caller, body.policy(), environment), environment)


@router.get("/keys/{key_id}/retention", response_model=RetentionAnswer,
            responses=problems(401, 403, 404, 429),
            summary="The retention policy jobs submitted with this key get")
def get_key_retention(key_id: str, rt: RuntimeDep, caller: Manager) -> RetentionAnswer:
    return RetentionAnswer.of(rt.retention.key_policy(caller, key_id), caller.environment)


@router.put("/keys/{key_id}/retention", response_model=RetentionAnswer,
            responses=problems(400, 401, 403, 404, 429),
            summary="Override the tenant's retention policy for jobs submitted with this key")
def put_key_retention(key_id: str, body: RetentionBody, rt: RuntimeDep,
                      caller: Manager) -> RetentionAnswer:
    return RetentionAnswer.of(rt.retention.set_key_policy(caller, key_id, body.policy()),
                              caller.environment)
