"""Appending to the audit log, and cutting its chains at their retention.

:meth:`AuditLog.record` is the one call every audited flow makes. The event goes to
its tenant's chain (``deployment`` when it has no tenant). An append locks that chain's
head row first (``AuditRepository.advance``), so appends to one chain from any number
of threads or processes queue instead of forking it, while other tenants' appends go
on in parallel; the unique (chain, pos) is the backstop that makes a fork fail rather
than happen. A chain's first append also opens it: its head row is created and the
opening is appended to the ``deployment`` chain, in the same transaction (locks are
always taken tenant chain first, then ``deployment``).

A flow that changes something passes its own transaction (``within``), so the change
and its entry commit together or not at all. A flow that reveals something (a result,
an output) records first and reveals after: if the entry cannot be written, nothing
is revealed.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol

from ocrvault.audit.chain import (
    DEPLOYMENT,
    GENESIS,
    ChainSigner,
    chain_of,
    entry_hash,
    entry_message,
    point_message,
)
from ocrvault.audit.events import Actor, AuditAction, AuditEvent
from ocrvault.audit.verify import Position, anchor_tamper, walk
from ocrvault.clock import Clock, utcnow
from ocrvault.errors import IntegrityError
from ocrvault.store.audit import AuditRepository
from ocrvault.store.db import Database, Transaction

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    """What services need: record one event, inside the caller's transaction or its own."""

    def record(self, event: AuditEvent, within: Transaction | None = None) -> None: ...


class AuditLog:
    def __init__(self, db: Database, signer: ChainSigner, clock: Clock = utcnow,
                 retention: timedelta = timedelta(days=400)) -> None:
        self.db = db
        self.signer = signer
        self.clock = clock
        self.retention = retention

    def record(self, event: AuditEvent, within: Transaction | None = None) -> None:
        if within is not None:
            self._append(AuditRepository(within), event)
            return
        with self.db.transaction() as session:
            self._append(AuditRepository(session), event)

    def _append(self, entries: AuditRepository, event: AuditEvent) -> None:
        self._append_to(entries, chain_of(event.actor.tenant_id), event)

    def _append_to(self, entries: AuditRepository, chain: str, event: AuditEvent) -> None:
        taken = entries.advance(chain)
        if taken is None:
            if entries.open(chain, GENESIS) and chain != DEPLOYMENT:
                self._append_to(entries, DEPLOYMENT, AuditEvent(
                    AuditAction.CHAIN_OPENED, Actor.system("audit"), target_id=chain))
            taken = entries.advance(chain)
            if taken is None:
                raise LookupError(f"the audit chain {chain!r} could not be opened")
        pos, previous = taken
        actor = event.actor
        values: dict[str, Any] = {
            "chain": chain, "pos": pos, "id": str(uuid.uuid4()), "at": self.clock(),
            "tenant_id": actor.tenant_id,
            "environment": actor.environment.value if actor.environment else None,
            "actor_key_id": actor.key_id, "actor_name": actor.name,
            "action": event.action.value, "target_id": event.target_id,
            "client_ip": actor.client_ip, "request_id": actor.request_id,
            "outcome": event.outcome.value, "reason": event.reason.value if event.reason else None,
            "detail": None if event.detail is None else json.dumps(
                event.detail, sort_keys=True, separators=(",", ":")),
            "prev_hash": previous,
        }
        digest = entry_hash(values)
        values["mac_version"], values["mac"] = self.signer.sign(entry_message(digest))
        entries.insert(values)
        entries.set_head(chain, digest, *self.signer.sign(point_message("head", chain, pos,
                                                                        digest)))

    def purge_expired(self) -> int:
        """Delete entries older than the retention from every chain; returns how many.

        Each chain is cut in its own transaction. A cut keeps whole prefixes only (never
        an entry newer than the cutoff, even if clocks disagreed), is checked before it is
        made (purging never launders a tampered entry or checkpoint into a signed one), and
        leaves the chain a signed checkpoint (its last removed entry's position and hash)
        from which ``verify`` starts. A chain that fails the check keeps its entries; the
        others are still cut, and then the refusal is raised.
        """
        cutoff = self.clock() - self.retention
        with self.db.transaction() as session:
            chains = AuditRepository(session).chains_written_before(cutoff)
        removed, refused = 0, []
        for chain in chains:
            try:
                removed += self._cut(chain, cutoff)
            except IntegrityError:
                refused.append(chain)
        if refused:
            raise IntegrityError(f"the audit chains {', '.join(refused)} failed verification; "
                                 "nothing was purged from them")
        return removed

    def _cut(self, chain: str, cutoff: datetime) -> int:
        with self.db.transaction() as session:
            entries = AuditRepository(session)
            state = entries.lock(chain)
            if state is None:  # entries without a head row: verify reports the chain
                raise IntegrityError(f"the audit chain {chain} has no head")
            first_kept = entries.first_pos_from(chain, cutoff)
            cut = state.head_pos if first_kept is None else first_kept - 1
            if cut <= state.anchor_pos:
                return 0
            start = Position(state.anchor_pos, state.anchor_hash)
            checked = walk(entries, self.signer, chain, start, cut)
            tamper = anchor_tamper(self.signer, state) or checked.tamper
            if tamper is not None:
                log.error("audit retention cut of chain %s refused: %s; run `ocrvault audit "
                          "verify`", chain, tamper)
                raise IntegrityError(f"the audit chain {chain} failed verification")
            end = checked.end
            entries.set_anchor(chain, end.pos, end.hash, *self.signer.sign(
                point_message("anchor", chain, end.pos, end.hash)))
            removed = entries.delete_through(chain, cut)
            self._append_to(entries, DEPLOYMENT, AuditEvent(
                AuditAction.AUDIT_PURGED, Actor.system("retention"), target_id=f"{chain}@{cut}"))
        log.info("audit retention removed %d entries of chain %s up to position %d", removed,
                 chain, cut)
        return removed
