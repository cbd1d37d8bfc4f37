"""Read-only queries for the security posture report (posture/): what the database says
about tenants, their retention policies, webhook endpoints, keys, overdue data and the
scheduler's lease. ``tenant_id=None`` reads the whole deployment (the operator's view)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ocrvault.store.records import RetentionPolicyRecord, TenantRecord, WebhookEndpointRecord
from ocrvault.store.tables import (
    ApiKeyRow,
    ClusterLockRow,
    JobRow,
    RetentionPolicyRow,
    TenantRow,
    WebhookEndpointRow,
)


@dataclass(frozen=True, slots=True)
class Overdue:
    """Jobs holding a part whose retention has run out, and the oldest such expiry."""

    jobs: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class LockHolder:
    owner: str
    expires_at: datetime


class PostureRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def tenants(self) -> list[TenantRecord]:
        rows = self.session.scalars(select(TenantRow).order_by(TenantRow.name)).all()
        return [TenantRecord.of(row) for row in rows]

    def tenant(self, tenant_id: str) -> TenantRecord | None:
        row = self.session.get(TenantRow, tenant_id)
        return None if row is None else TenantRecord.of(row)

    def retention_policies(self, tenant_id: str | None) -> list[RetentionPolicyRecord]:
        """Stored policies: tenant-wide ones (scope ``tenant``) and key overrides (scope =
        the key id), by tenant, scope and environment."""
        query = select(RetentionPolicyRow)
        if tenant_id is not None:
            query = query.where(RetentionPolicyRow.tenant_id == tenant_id)
        rows = self.session.scalars(query.order_by(RetentionPolicyRow.tenant_id,
                                                   RetentionPolicyRow.scope,
                                                   RetentionPolicyRow.environment)).all()
        return [RetentionPolicyRecord.of(row) for row in rows]

    def webhook_endpoints(self, tenant_id: str | None) -> list[WebhookEndpointRecord]:
        query = select(WebhookEndpointRow)
        if tenant_id is not None:
            query = query.where(WebhookEndpointRow.tenant_id == tenant_id)
        rows = self.session.scalars(query.order_by(WebhookEndpointRow.created_at,
                                                   WebhookEndpointRow.id)).all()
        return [WebhookEndpointRecord.of(row) for row in rows]

    def active_keys(self, tenant_id: str | None, now: datetime) -> dict[str, int]:
        """Keys neither revoked nor expired, by environment."""
        query = (select(ApiKeyRow.environment, func.count())
                 .where(ApiKeyRow.revoked_at.is_(None))
                 .where((ApiKeyRow.expires_at.is_(None)) | (ApiKeyRow.expires_at > now))
                 .group_by(ApiKeyRow.environment))
        if tenant_id is not None:
            query = query.where(ApiKeyRow.tenant_id == tenant_id)
        return {str(env): int(count) for env, count in self.session.execute(query).all()}

    def overdue(self, now: datetime, tenant_id: str | None) -> Overdue:
        query = select(func.count(), func.min(JobRow.next_expiry_at)).where(
            JobRow.next_expiry_at <= now)
        if tenant_id is not None:
            query = query.where(JobRow.tenant_id == tenant_id)
        count, oldest = self.session.execute(query).one()
        return Overdue(int(count or 0), oldest)

    def lock_holder(self, name: str) -> LockHolder | None:
        row = self.session.get(ClusterLockRow, name)
        return None if row is None else LockHolder(row.owner, row.expires_at)
