"""Reading the audit log: a tenant's own entries for its keys, the whole log for the operator.

Readers are audited too. A listing is recorded once, when it starts (no cursor), so a
client that tails the log with its cursor does not feed on its own reads; an export
is recorded before its first line is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from ocrvault.audit.chain import Canonical, entry_hash, fields_of
from ocrvault.audit.events import Actor, AuditAction, AuditEntry, AuditEvent
from ocrvault.audit.log import AuditSink
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode, InputRejected, ResourceError
from ocrvault.principal import Principal
from ocrvault.store.audit import AuditRepository, StoredEntry
from ocrvault.store.db import Database

MAX_PAGE = 1000
_EXPORT_BATCH = 1000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    since: datetime | None = None
    until: datetime | None = None
    action: AuditAction | None = None
    actor: str | None = None
    target: str | None = None
    cursor: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of a listing; ``next_cursor`` is None at the end (new entries may follow)."""

    entries: list[AuditEntry]
    next_cursor: str | None


def entry_of(row: StoredEntry) -> AuditEntry:
    return AuditEntry(
        id=row.id, at=row.at, tenant_id=row.tenant_id, environment=row.environment,
        actor_key_id=row.actor_key_id, actor_name=row.actor_name, action=AuditAction(row.action),
        target_id=row.target_id, client_ip=row.client_ip, request_id=row.request_id,
        outcome=row.outcome, reason=row.reason, detail=row.detail,
    )


def _chain_batch(chain: str, entries: AuditRepository, after: int) -> list[StoredEntry]:
    return entries.in_chain(chain, after, _EXPORT_BATCH)


def _environments(principal: Principal) -> list[str | None]:
    """A live key also sees the tenant's entries of no environment (tenant-level events)."""
    named: list[str | None] = [env.value for env in principal.administers]
    return [*named, None] if principal.environment is Environment.LIVE else named


class AuditService:
    def __init__(self, db: Database, audit: AuditSink) -> None:
        self.db = db
        self.audit = audit

    def list(self, principal: Principal, query: AuditQuery) -> AuditPage:
        """The caller's tenant's entries, oldest first, ``query.limit`` at a time."""
        environments = _environments(principal)
        with self.db.transaction() as session:
            entries = AuditRepository(session)
            after = 0
            if query.cursor is not None:
                last = entries.for_tenant(query.cursor, principal.tenant_id, environments)
                if last is None:
                    raise InputRejected(ErrorCode.INVALID_PARAMETER,
                                        "The cursor is not one this listing gave; start again "
                                        "without it.")
                after = last.seq
            rows = entries.page(
                principal.tenant_id, environments, after_seq=after, limit=query.limit + 1,
                since=query.since, until=query.until,
                action=query.action.value if query.action else None, actor=query.actor,
                target=query.target,
            )
        page = [entry_of(row) for row in rows[: query.limit]]
        if query.cursor is None:
            self.audit.record(AuditEvent(AuditAction.AUDIT_READ, Actor.of(principal)))
        more = len(rows) > query.limit
        return AuditPage(page, page[-1].id if more and page else None)

    def get(self, principal: Principal, entry_id: str) -> AuditEntry:
        with self.db.transaction() as session:
            row = AuditRepository(session).for_tenant(entry_id, principal.tenant_id,
                                                      _environments(principal))
        if row is None:
            raise ResourceError(ErrorCode.AUDIT_ENTRY_NOT_FOUND,
                                f"No audit entry {entry_id[:40]!r} for this key.")
        self.audit.record(AuditEvent(AuditAction.AUDIT_READ, Actor.of(principal),
                                     target_id=row.id))
        return entry_of(row)

    def export(self, actor: Actor, tenant_id: str | None = None) -> Iterator[Canonical]:
        """Every retained entry, chain by chain, each chain in order (one tenant's entries in
        log order, if given: its ``legacy`` ones, then its chain), as the canonical fields
        plus ``hash``, ``mac_version`` and ``mac``, so each chain's links check offline (a
        ``legacy`` line names no chain). Read by position, each chain comes out whole up to
        where it stood when reached, however many appends run meanwhile."""
        self.audit.record(AuditEvent(AuditAction.AUDIT_EXPORTED, actor, target_id=tenant_id))
        if tenant_id is not None:
            yield from self._lines(lambda entries, after: entries.page(
                tenant_id, [*Environment, None], after_seq=after, limit=_EXPORT_BATCH),
                lambda row: row.seq)
            return
        with self.db.transaction() as session:
            chains = AuditRepository(session).chain_names()
        for chain in chains:
            yield from self._lines(partial(_chain_batch, chain), lambda row: row.pos)

    def _lines(self, batch: Callable[[AuditRepository, int], Sequence[StoredEntry]],
               key: Callable[[StoredEntry], int]) -> Iterator[Canonical]:
        """Export lines of the entries ``batch`` reads after a key, one transaction a batch."""
        after = 0
        while True:
            with self.db.transaction() as session:
                rows = batch(AuditRepository(session), after)
            if not rows:
                return
            for row in rows:
                yield {**fields_of(row), "hash": entry_hash(row), "mac_version": row.mac_version,
                       "mac": row.mac}
            after = key(rows[-1])
