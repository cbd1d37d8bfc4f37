"""The audit log's tables: entries in hash chains, and one head row per chain.

Only this module reads or writes ``audit_entries`` and ``audit_chains``; it hands out
frozen records, never rows. What the chains mean (names, hashes, signatures) is
``ocrvault.audit``'s business; here are the statements and the locks.

Locking: an append takes its chain's head row with one ``UPDATE ... RETURNING``
(:meth:`AuditRepository.advance`). PostgreSQL locks that row only, so appends to
other chains run in parallel; SQLite takes its single writer lock (waiting up to
busy_timeout) before the head is read, so no reader's stale snapshot is ever
upgraded into a write. Either way appenders to one chain queue instead of forking it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ocrvault.store.repository import _in_environments
from ocrvault.store.tables import AuditEntryRow, Base

_ENTRIES = Base.metadata.tables["audit_entries"]
_CHAINS = Base.metadata.tables["audit_chains"]
_E = _ENTRIES.c
_C = _CHAINS.c

# Appends run on every audited request: their statements are built once, with bound
# parameters, because building one costs more than running it.
_ADVANCE = (
    update(_CHAINS).where(_C.chain == bindparam("of_chain"))
    .values(head_pos=_C.head_pos + 1).returning(_C.head_pos, _C.head_hash)
)
_SET_HEAD = update(_CHAINS).where(_C.chain == bindparam("of_chain")).values(
    head_hash=bindparam("digest"), head_mac_version=bindparam("version"), head_mac=bindparam("mac")
)
_INSERT_ENTRY = insert(_ENTRIES)


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An audit entry as stored, chain fields included."""

    seq: int
    chain: str
    pos: int
    id: str
    at: datetime
    tenant_id: str | None
    environment: str | None
    actor_key_id: str | None
    actor_name: str
    action: str
    target_id: str | None
    client_ip: str | None
    request_id: str | None
    outcome: str
    reason: str | None
    detail: str | None
    prev_hash: str
    mac_version: int
    mac: str


@dataclass(frozen=True, slots=True)
class ChainState:
    """A chain's head (its last entry) and anchor (the last entry retention removed,
    or position 0), each a position, the entry's hash and the signature over them."""

    chain: str
    head_pos: int
    head_hash: str
    head_mac_version: int | None
    head_mac: str | None
    anchor_pos: int
    anchor_hash: str
    anchor_mac_version: int | None
    anchor_mac: str | None


class AuditRepository:
    """The audit log's rows. Caller-facing reads take the tenant; the unscoped ones serve
    verification, export and retention."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- chains ---------------------------------------------------------------------

    def advance(self, chain: str) -> tuple[int, str] | None:
        """Lock ``chain`` for this transaction and take its next position.

        Returns (the new entry's position, the head hash it links to), or None when the
        chain does not exist yet (:meth:`open`). The caller then sets the new head.
        """
        row = self.session.execute(_ADVANCE, {"of_chain": chain}).one_or_none()
        return None if row is None else (int(row[0]), str(row[1]))

    def open(self, chain: str, genesis: str) -> bool:
        """Create ``chain`` empty, unless it exists; True if this transaction created it.

        A concurrent opener of the same chain waits for this transaction (PostgreSQL's
        unique index; SQLite's writer lock) and then finds it there.
        """
        values = {"chain": chain, "head_pos": 0, "head_hash": genesis, "anchor_pos": 0,
                  "anchor_hash": genesis}
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            statement: Any = postgresql.insert(_CHAINS).values(values).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(_CHAINS).values(values).on_conflict_do_nothing()
        else:  # pragma: no cover - the two dialects ocrvault supports
            raise NotImplementedError(f"no audit chain insert for {dialect}")
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here.
        return self.session.execute(statement.returning(_C.chain)).first() is not None

    def set_head(self, chain: str, digest: str, mac_version: int, mac: str) -> None:
        self.session.execute(_SET_HEAD, {"of_chain": chain, "digest": digest,
                                         "version": mac_version, "mac": mac})

    def lock(self, chain: str) -> ChainState | None:
        """The chain, locked for this transaction (as :meth:`advance` does), or None."""
        self.session.execute(
            update(_CHAINS).where(_C.chain == chain).values(head_pos=_C.head_pos)
        )
        return self.chain(chain)

    def chain(self, chain: str) -> ChainState | None:
        row = self.session.execute(select(_CHAINS).where(_C.chain == chain)).mappings().first()
        return None if row is None else ChainState(**row)

    def chain_names(self) -> list[str]:
        """Every chain that has a head row or an entry (a head row may have been removed)."""
        return list(self.session.scalars(
            select(_C.chain).union(select(_E.chain)).order_by("chain")))

    def set_anchor(self, chain: str, pos: int, digest: str, mac_version: int, mac: str) -> None:
        self.session.execute(
            update(_CHAINS).where(_C.chain == chain).values(
                anchor_pos=pos, anchor_hash=digest, anchor_mac_version=mac_version,
                anchor_mac=mac)
        )

    # -- entries --------------------------------------------------------------------

    def insert(self, values: Mapping[str, Any]) -> None:
        """A new entry, as column values without ``seq`` (the database assigns it)."""
        self.session.execute(_INSERT_ENTRY, dict(values))

    def _entries(self, query: Select[Any]) -> list[StoredEntry]:
        return [StoredEntry(**row) for row in self.session.execute(query).mappings()]

    def in_chain(self, chain: str, after_pos: int, limit: int) -> list[StoredEntry]:
        """One chain's entries after ``after_pos``, in chain order."""
        return self._entries(select(_ENTRIES).where(_E.chain == chain, _E.pos > after_pos)
                             .order_by(_E.pos).limit(limit))

    def for_tenant(self, entry_id: str, tenant_id: str,
                   environments: Collection[str | None]) -> StoredEntry | None:
        found = self._entries(select(_ENTRIES).where(
            _E.id == entry_id, _E.tenant_id == tenant_id,
            _in_environments(AuditEntryRow.environment, environments)))
        return found[0] if found else None

    def page(self, tenant_id: str, environments: Collection[str | None], *, after_seq: int,
             limit: int, since: datetime | None = None, until: datetime | None = None,
             action: str | None = None, actor: str | None = None,
             target: str | None = None) -> list[StoredEntry]:
        """One tenant's entries after ``after_seq``, oldest first, filtered."""
        query = select(_ENTRIES).where(
            _E.tenant_id == tenant_id, _in_environments(AuditEntryRow.environment, environments),
            _E.seq > after_seq,
        )
        for column, value in ((_E.action, action), (_E.actor_key_id, actor),
                              (_E.target_id, target)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(_E.at >= since)
        if until is not None:
            query = query.where(_E.at < until)
        return self._entries(query.order_by(_E.seq).limit(limit))

    def targets(self, chain: str, action: str) -> list[str]:
        """The targets of one chain's entries of ``action``."""
        return [target for target in self.session.scalars(
            select(_E.target_id).where(_E.chain == chain, _E.action == action))
            if target is not None]

    def chains_written_before(self, cutoff: datetime) -> list[str]:
        """The chains holding an entry older than ``cutoff``: what retention may cut."""
        return list(self.session.scalars(
            select(_E.chain).where(_E.at < cutoff).distinct().order_by(_E.chain)))

    def first_pos_from(self, chain: str, cutoff: datetime) -> int | None:
        """The chain's first entry written at or after ``cutoff``: retention keeps it and
        all later ones."""
        first = self.session.scalar(
            select(func.min(_E.pos)).where(_E.chain == chain, _E.at >= cutoff))
        return None if first is None else int(first)

    def delete_through(self, chain: str, pos: int) -> int:
        result = self.session.execute(delete(_ENTRIES).where(_E.chain == chain, _E.pos <= pos))
        return int(getattr(result, "rowcount", 0))
