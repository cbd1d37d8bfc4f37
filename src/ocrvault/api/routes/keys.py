"""Managing a tenant's API keys: create, list, read, revoke, rotate (scope ``keys:manage``).

A key acts only on keys within its own rights (access/reach.py): another key it can see
but not reach is ``403 forbidden``; one it cannot see is ``404 key_not_found``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from ocrvault.access.service import KeyInfo, KeySpec
from ocrvault.api.deps import AccessServiceDep, AuthFirstRoute, require_scope
from ocrvault.api.schemas import KeyCreate, KeyCreated, KeyList, KeyRotate, problems
from ocrvault.principal import KeyLimits, Principal, Scope

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=AuthFirstRoute)

Manager = Annotated[Principal, Depends(require_scope(Scope.KEYS_MANAGE))]


@router.post("", status_code=201, response_model=KeyCreated,
             responses=problems(400, 401, 403, 429),
             summary="Make a key; its secret is in this answer only")
def create_key(body: KeyCreate, access: AccessServiceDep, caller: Manager) -> KeyCreated:
    spec = KeySpec(
        name=body.name, scopes=body.role.scopes if body.role else frozenset(body.scopes or ()),
        environment=body.environment or caller.environment, expires_at=body.expires_at,
        allowed_ips=tuple(body.allowed_ips or ()),
        limits=KeyLimits(rate_per_minute=body.rate_limit_per_minute,
                         concurrent_jobs=body.max_concurrent_jobs,
                         pages_per_day=body.max_pages_per_day),
        job_visibility=body.job_visibility, role=body.role,
    )
    return KeyCreated.of(access.create_key(caller, spec))


@router.get("", response_model=KeyList, responses=problems(401, 403, 429),
            summary="The tenant's keys (a test key sees test keys only); never a secret")
def list_keys(access: AccessServiceDep, caller: Manager) -> KeyList:
    return KeyList(keys=access.list_keys(caller))


@router.get("/{key_id}", response_model=KeyInfo, responses=problems(401, 403, 404, 429),
            summary="One key's details (a key within the caller's rights); never a secret")
def get_key(key_id: str, access: AccessServiceDep, caller: Manager) -> KeyInfo:
    return access.get_key(caller, key_id)


@router.delete("/{key_id}", response_model=KeyInfo, responses=problems(401, 403, 404, 429),
               summary="Revoke a key and every key it made; refused from the next request on")
def revoke_key(key_id: str, access: AccessServiceDep, caller: Manager) -> KeyInfo:
    return access.revoke_key(caller, key_id)


@router.post("/{key_id}/rotate", response_model=KeyCreated,
             responses=problems(400, 401, 403, 404, 409, 429),
             summary="A new secret; the current one keeps working for the grace period")
def rotate_key(key_id: str, access: AccessServiceDep, caller: Manager,
               rotation: Annotated[KeyRotate | None, Body()] = None) -> KeyCreated:
    grace = timedelta(seconds=(rotation or KeyRotate()).grace_seconds)
    return KeyCreated.of(access.rotate_key(caller, key_id, grace))
