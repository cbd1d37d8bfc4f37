"""Reading the tenant's audit log (scope ``audit:read``), oldest first, by cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ocrvault.api.deps import AuditReaderDep, AuthFirstRoute, require_scope
from ocrvault.api.schemas import Timestamp, problems
from ocrvault.audit import AuditAction, AuditEntry, AuditPage, AuditQuery
from ocrvault.audit.service import MAX_PAGE
from ocrvault.principal import Principal, Scope

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=AuthFirstRoute)

Auditor = Annotated[Principal, Depends(require_scope(Scope.AUDIT_READ))]


@router.get("", response_model=AuditPage, responses=problems(400, 401, 403, 429),
            summary="The tenant's audit entries, filtered, oldest first")
def list_entries(
    audit: AuditReaderDep, caller: Auditor,
    since: Annotated[Timestamp | None, Query(description="Entries at or after")] = None,
    until: Annotated[Timestamp | None, Query(description="Entries before")] = None,
    action: Annotated[AuditAction | None, Query()] = None,
    actor: Annotated[str | None, Query(description="The acting key's id")] = None,
    target: Annotated[str | None, Query(description="A job, key or tenant id")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPage:
    return audit.list(caller, AuditQuery(since=since, until=until, action=action,
                                                   actor=actor, target=target, cursor=cursor,
                                                   limit=limit))


@router.get("/{entry_id}", response_model=AuditEntry,
            responses=problems(401, 403, 404, 429), summary="One audit entry of the tenant")
def get_entry(entry_id: str, audit: AuditReaderDep, caller: Auditor) -> AuditEntry:
    return audit.get(caller, entry_id)
