"""Walking the chain: the first entry that was changed, removed or inserted.

From the retention checkpoint (or genesis) each entry must carry the next sequence
number, link to the hash of the one before it, and bear a valid signature; the last
must be the signed head. The first break is named:

- a missing sequence number, or a tail shorter than the signed head: *removed*;
- an entry whose signature or link fails while the entry after it links past it to
  its predecessor, or any entry beyond the signed head: *inserted*;
- any other entry whose signature or link fails: *changed*.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from ocrvault.audit.chain import GENESIS, ChainSigner, entry_hash, entry_message, point_message
from ocrvault.store.db import Database
from ocrvault.store.repository import AuditRepository
from ocrvault.store.tables import AuditEntryRow

_BATCH = 1000


class TamperKind(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"
    HEAD = "head"
    CHECKPOINT = "checkpoint"


@dataclass(frozen=True, slots=True)
class Tamper:
    kind: TamperKind
    seq: int

    def __str__(self) -> str:
        if self.kind is TamperKind.HEAD:
            return f"the signature of the chain head (entry {self.seq}) does not verify"
        if self.kind is TamperKind.CHECKPOINT:
            return f"the signature of the retention checkpoint (entry {self.seq}) does not verify"
        return f"entry {self.seq} was {self.kind.value}"


@dataclass(frozen=True, slots=True)
class Position:
    """A verified place in the chain: an entry's sequence number and hash."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class WalkResult:
    end: Position
    entries: int
    tamper: Tamper | None = None


def walk(entries: AuditRepository, signer: ChainSigner, start: Position,
         bound: int) -> WalkResult:
    """Check the entries after ``start`` up to sequence number ``bound``."""
    position, count = start, 0
    rows = _rows(entries, start.seq, bound)
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        tamper = _judge(signer, position, current, following)
        if tamper is not None:
            return WalkResult(position, count, tamper)
        position, count = Position(current.seq, entry_hash(current)), count + 1
        current = following
    if position.seq < bound:
        return WalkResult(position, count, Tamper(TamperKind.REMOVED, position.seq + 1))
    return WalkResult(position, count)


def _rows(entries: AuditRepository, after: int, bound: int) -> Iterator[AuditEntryRow]:
    while batch := entries.after(after, _BATCH):
        for row in batch:
            if row.seq > bound:
                return
            yield row
        after = batch[-1].seq


def _judge(signer: ChainSigner, previous: Position, current: AuditEntryRow,
           following: AuditEntryRow | None) -> Tamper | None:
    if current.seq != previous.seq + 1:
        return Tamper(TamperKind.REMOVED, previous.seq + 1)
    signed = signer.verify(entry_message(entry_hash(current)), current.mac_version, current.mac)
    if signed and current.prev_hash == previous.hash:
        return None
    if following is not None and following.prev_hash == previous.hash:
        return Tamper(TamperKind.INSERTED, current.seq)
    return Tamper(TamperKind.CHANGED, current.seq)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    entries: int
    first_seq: int
    head_seq: int
    tamper: Tamper | None

    @property
    def ok(self) -> bool:
        return self.tamper is None


def verify_chain(db: Database, signer: ChainSigner) -> VerifyReport:
    """Walk the whole retained chain up to its signed head.

    Appends made while the walk runs move the head on; the walk follows it and stops
    at the head it reads last. A retention cut made meanwhile moves the checkpoint;
    the walk then starts again from the new one. Live traffic is no false alarm.
    """
    for _ in range(3):
        report = _verify_once(db, signer)
        with db.transaction() as session:
            if AuditRepository(session).chain().anchor_seq + 1 == report.first_seq:
                break
    return report


def _verify_once(db: Database, signer: ChainSigner) -> VerifyReport:
    with db.transaction() as session:
        entries = AuditRepository(session)
        chain = entries.chain()
        anchor = Position(chain.anchor_seq, chain.anchor_hash)

        def report(tamper: Tamper | None) -> VerifyReport:
            return VerifyReport(total, anchor.seq + 1, chain.head_seq, tamper)

        total = 0
        if anchor != Position(0, GENESIS) and not signer.verify(
            point_message("anchor", anchor.seq, anchor.hash), chain.anchor_mac_version,
            chain.anchor_mac,
        ):
            return report(Tamper(TamperKind.CHECKPOINT, anchor.seq))
        position, bound = anchor, -1
        while chain.head_seq != bound:
            bound = chain.head_seq
            result = walk(entries, signer, position, bound)
            position, total = result.end, total + result.entries
            if result.tamper is not None:
                return report(result.tamper)
            chain = entries.chain()
        head = Position(chain.head_seq, chain.head_hash)
        unsigned_empty = head == Position(0, GENESIS) and chain.head_mac is None
        if not unsigned_empty and (head != position or not signer.verify(
            point_message("head", head.seq, head.hash), chain.head_mac_version, chain.head_mac,
        )):
            return report(Tamper(TamperKind.HEAD, head.seq))
        beyond = entries.after(bound, 1)
        return report(Tamper(TamperKind.INSERTED, beyond[0].seq) if beyond else None)
