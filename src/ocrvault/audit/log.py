"""Appending to the audit log, and cutting it at its retention.

:meth:`AuditLog.record` is the one call every audited flow makes. An append locks the
chain row first (``AuditRepository.next_seq``), so appends from any number of
threads or processes queue instead of forking the chain; the entry's primary key
(its sequence number) is the backstop that makes a fork fail rather than happen.

A flow that changes something passes its own transaction (``within``), so the change
and its entry commit together or not at all. A flow that reveals something (a result,
an output) records first and reveals after: if the entry cannot be written, nothing
is revealed.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any, Protocol

from ocrvault.audit.chain import ChainSigner, entry_hash, entry_message, point_message
from ocrvault.audit.events import Actor, AuditAction, AuditEvent
from ocrvault.audit.verify import Position, walk
from ocrvault.clock import Clock, utcnow
from ocrvault.errors import IntegrityError
from ocrvault.store.db import Database, Transaction
from ocrvault.store.repository import AuditRepository

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
        seq, previous = entries.next_seq()
        actor = event.actor
        values: dict[str, Any] = {
            "seq": seq, "id": str(uuid.uuid4()), "at": self.clock(), "tenant_id": actor.tenant_id,
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
        entries.set_head(digest, *self.signer.sign(point_message("head", seq, digest)))

    def purge_expired(self) -> int:
        """Delete entries older than the retention; returns how many.

        The cut keeps whole prefixes only (never an entry newer than the cutoff, even
        if clocks disagreed), is checked before it is made (purging never launders a
        tampered entry into a signed checkpoint), and leaves a signed checkpoint (the
        last removed entry's seq and hash) from which ``verify`` starts.
        """
        cutoff = self.clock() - self.retention
        with self.db.transaction() as session:
            entries = AuditRepository(session)
            chain = entries.claim_chain()
            first_kept = entries.first_seq_from(cutoff)
            cut = chain.head_seq if first_kept is None else first_kept - 1
            if cut <= chain.anchor_seq:
                return 0
            checked = walk(entries, self.signer, Position(chain.anchor_seq, chain.anchor_hash),
                           cut)
            if checked.tamper is not None:
                log.error("audit retention cut refused: %s; run `ocrvault audit verify`",
                          checked.tamper)
                raise IntegrityError("the audit log failed verification; nothing was purged")
            chain.anchor_seq, chain.anchor_hash = checked.end.seq, checked.end.hash
            chain.anchor_mac_version, chain.anchor_mac = self.signer.sign(
                point_message("anchor", checked.end.seq, checked.end.hash)
            )
            removed = entries.delete_through(cut)
            self._append(entries, AuditEvent(AuditAction.AUDIT_PURGED,
                                             Actor.system("retention"), target_id=f"seq:{cut}"))
        log.info("audit retention removed %d entries up to seq %d", removed, cut)
        return removed
