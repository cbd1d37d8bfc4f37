"""Retention policies: the tenant's, per environment, and per-key overrides (scope
policies:manage)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ocrvault.api.deps import AuthFirstRoute, RetentionServiceDep, require_scope
from ocrvault.api.schemas import problems
from ocrvault.environments import Environment
from ocrvault.errors import InputRejected
from ocrvault.principal import Principal, Scope
from ocrvault.retention.policy import MAX_SECONDS, RetentionPolicy, parse_retention

router = APIRouter(prefix="/v1", tags=["retention"], route_class=AuthFirstRoute)

Manager = Annotated[Principal, Depends(require_scope(Scope.POLICIES_MANAGE))]
Seconds = Field(ge=0, le=MAX_SECONDS, strict=True)  # strict: JSON false is no 0


def _duration(value: object) -> object:
    """An ISO 8601 duration ('PT1H', 'P30D') or digits as text become seconds, as in
    ``?retention=``; numbers pass on to the strict check."""
    if not isinstance(value, str):
        return value
    try:
        return parse_retention(value) if value.strip() else value
    except InputRejected as error:
        raise ValueError(error.detail) from None


Duration = Annotated[
    Annotated[int, BeforeValidator(_duration), Field(ge=0, le=MAX_SECONDS, strict=True)] | None,
    Field(description="Seconds, or an ISO 8601 duration such as 'PT1H' or 'P30D'; left out: "
          "unchanged"),
]


class RetentionBody(BaseModel):
    """How long each kind of data is kept after its job finishes (0: deleted at once).
    Only the kinds given change; the others keep their current value."""

    model_config = ConfigDict(extra="forbid")

    input: Duration = None
    result: Duration = None
    outputs: Duration = None
    job_metadata: Duration = None
    failed_inputs: Duration = None

    @model_validator(mode="after")
    def _no_null(self) -> RetentionBody:
        """A kind left out is unchanged; an explicit null is no duration (nor 'unlimited')."""
        for name in sorted(self.model_fields_set):
            if getattr(self, name) is None:
                raise ValueError(f"'{name}' is null: give seconds or an ISO 8601 duration, "
                                 "or leave it out to keep its value")
        return self

    def changes(self) -> dict[str, int]:
        return self.model_dump(exclude_none=True)


class RetentionAnswer(BaseModel):
    """Seconds each kind of data is kept after its job finishes (0: deleted at once)."""

    input: int = Seconds
    result: int = Seconds
    outputs: int = Seconds
    job_metadata: int = Seconds
    failed_inputs: int = Seconds
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
def get_tenant_retention(policies: RetentionServiceDep, caller: Manager,
                         environment: EnvironmentParam = None) -> RetentionAnswer:
    environment = environment or caller.environment
    return RetentionAnswer.of(policies.tenant_policy(caller, environment), environment)


_TENANT_CHANGE: dict[str, Any] = {
    "response_model": RetentionAnswer, "responses": problems(400, 401, 403, 429),
    "summary": "Change the tenant's retention policy for an environment: the kinds given "
    "(applies to jobs submitted from now)",
}
_KEY_CHANGE: dict[str, Any] = {
    "response_model": RetentionAnswer, "responses": problems(400, 401, 403, 404, 429),
    "summary": "Override the retention policy for jobs submitted with this key: the kinds "
    "given, the others as they are now",
}


# PUT and PATCH alike: both change only the kinds the body names.
@router.put("/retention", **_TENANT_CHANGE)
@router.patch("/retention", operation_id="patch_tenant_retention", **_TENANT_CHANGE)
def put_tenant_retention(body: RetentionBody, policies: RetentionServiceDep, caller: Manager,
                         environment: EnvironmentParam = None) -> RetentionAnswer:
    environment = environment or caller.environment
    return RetentionAnswer.of(
        policies.set_tenant_policy(caller, body.changes(), environment), environment)


@router.get("/keys/{key_id}/retention", response_model=RetentionAnswer,
            responses=problems(401, 403, 404, 429),
            summary="The retention policy jobs submitted with this key get")
def get_key_retention(key_id: str, policies: RetentionServiceDep,
                      caller: Manager) -> RetentionAnswer:
    return RetentionAnswer.of(policies.key_policy(caller, key_id), caller.environment)


@router.put("/keys/{key_id}/retention", **_KEY_CHANGE)
@router.patch("/keys/{key_id}/retention", operation_id="patch_key_retention", **_KEY_CHANGE)
def put_key_retention(key_id: str, body: RetentionBody, policies: RetentionServiceDep,
                      caller: Manager) -> RetentionAnswer:
    return RetentionAnswer.of(policies.set_key_policy(caller, key_id, body.changes()),
                              caller.environment)
