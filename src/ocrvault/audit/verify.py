"""Walking the chains: in each, the first entry that was changed, removed or inserted.

Every chain is proved on its own. From its retention checkpoint (or genesis) each entry
must carry the next position, link to the hash of the one before it, and bear a valid
signature; the last must be the chain's signed head. The first break is named:

- a missing position, or a tail shorter than the signed head: *removed*;
- an entry whose signature or link fails while the entry after it links past it to
  its predecessor, or any entry beyond the signed head: *inserted*;
- any other entry whose signature or link fails: *changed*;
- a chain whose head row is gone while its entries, or its opening in the
  ``deployment`` chain, say it existed: *missing*.

An entry moved from one chain to another breaks both: the one it left misses it, and
the one it entered finds an entry whose signature (over its chain and position) fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from ocrvault.audit.chain import (
    DEPLOYMENT,
    GENESIS,
    ChainSigner,
    entry_hash,
    entry_message,
    point_message,
)
from ocrvault.audit.events import AuditAction
from ocrvault.store.audit import AuditRepository, ChainState, StoredEntry
from ocrvault.store.db import Database

_BATCH = 1000


class TamperKind(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"
    HEAD = "head"
    CHECKPOINT = "checkpoint"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Tamper:
    kind: TamperKind
    pos: int

    def __str__(self) -> str:
        if self.kind is TamperKind.HEAD:
            return f"the signature of the chain head (entry {self.pos}) does not verify"
        if self.kind is TamperKind.CHECKPOINT:
            return f"the signature of the retention checkpoint (entry {self.pos}) does not verify"
        if self.kind is TamperKind.MISSING:
            return "the chain's head row is gone, though the log says the chain existed"
        return f"entry {self.pos} was {self.kind.value}"


@dataclass(frozen=True, slots=True)
class Position:
    """A verified place in a chain: an entry's position and hash."""

    pos: int
    hash: str


@dataclass(frozen=True, slots=True)
class WalkResult:
    end: Position
    entries: int
    tamper: Tamper | None = None


def anchor_tamper(signer: ChainSigner, state: ChainState) -> Tamper | None:
    """A retention checkpoint that is not genesis must bear its signature."""
    if (state.anchor_pos, state.anchor_hash) == (0, GENESIS) or signer.verify(
        point_message("anchor", state.chain, state.anchor_pos, state.anchor_hash),
        state.anchor_mac_version, state.anchor_mac,
    ):
        return None
    return Tamper(TamperKind.CHECKPOINT, state.anchor_pos)


def walk(entries: AuditRepository, signer: ChainSigner, chain: str, start: Position,
         bound: int) -> WalkResult:
    """Check the chain's entries after ``start`` up to position ``bound``."""
    position, count = start, 0
    rows = _rows(entries, chain, start.pos, bound)
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        tamper = _judge(signer, position, current, following)
        if tamper is not None:
            return WalkResult(position, count, tamper)
        position, count = Position(current.pos, entry_hash(current)), count + 1
        current = following
    if position.pos < bound:
        return WalkResult(position, count, Tamper(TamperKind.REMOVED, position.pos + 1))
    return WalkResult(position, count)


def _rows(entries: AuditRepository, chain: str, after: int,
          bound: int) -> Iterator[StoredEntry]:
    while batch := entries.in_chain(chain, after, _BATCH):
        for row in batch:
            if row.pos > bound:
                return
            yield row
        after = batch[-1].pos


def _judge(signer: ChainSigner, previous: Position, current: StoredEntry,
           following: StoredEntry | None) -> Tamper | None:
    if current.pos != previous.pos + 1:
        return Tamper(TamperKind.REMOVED, previous.pos + 1)
    signed = signer.verify(entry_message(entry_hash(current)), current.mac_version, current.mac)
    if signed and current.prev_hash == previous.hash:
        return None
    if following is not None and following.prev_hash == previous.hash:
        return Tamper(TamperKind.INSERTED, current.pos)
    return Tamper(TamperKind.CHANGED, current.pos)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """One chain's verdict: how many retained entries verified, from which position to
    which head, and the first break if there is one."""

    chain: str
    entries: int
    first_pos: int
    head_pos: int
    tamper: Tamper | None

    @property
    def ok(self) -> bool:
        return self.tamper is None

    def __str__(self) -> str:
        if self.tamper is None:
            return (f"{self.chain}: intact, {self.entries} entries, positions "
                    f"{self.first_pos} to {self.head_pos}")
        return (f"{self.chain}: TAMPERED: {self.tamper} "
                f"({self.entries} entries verified before it)")


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Every chain's verdict, in chain-name order."""

    chains: tuple[ChainReport, ...]

    @property
    def ok(self) -> bool:
        return all(chain.ok for chain in self.chains)

    @property
    def entries(self) -> int:
        return sum(chain.entries for chain in self.chains)

    @property
    def broken(self) -> list[ChainReport]:
        return [chain for chain in self.chains if not chain.ok]

    def chain(self, name: str) -> ChainReport:
        for chain in self.chains:
            if chain.chain == name:
                return chain
        raise KeyError(f"no audit chain {name!r} was verified")


def verify_log(db: Database, signer: ChainSigner) -> VerifyReport:
    """Prove every chain: each one with a head row or entries, and each one whose opening
    the ``deployment`` chain holds."""
    with db.transaction() as session:
        entries = AuditRepository(session)
        names = set(entries.chain_names())
        names.update(entries.targets(DEPLOYMENT, AuditAction.CHAIN_OPENED.value))
    return VerifyReport(tuple(verify_chain(db, signer, name) for name in sorted(names)))


def verify_chain(db: Database, signer: ChainSigner, chain: str) -> ChainReport:
    """Walk one retained chain up to its signed head.

    Appends made while the walk runs move the head on; the walk follows it and stops
    at the head it reads last. A retention cut made meanwhile moves the checkpoint;
    the walk then starts again from the new one. Live traffic is no false alarm.
    """
    for _ in range(3):
        report = _verify_once(db, signer, chain)
        with db.transaction() as session:
            state = AuditRepository(session).chain(chain)
        if state is None or state.anchor_pos + 1 == report.first_pos:
            break
    return report


def _verify_once(db: Database, signer: ChainSigner, chain: str) -> ChainReport:
    with db.transaction() as session:
        entries = AuditRepository(session)
        state = entries.chain(chain)
        if state is None:
            return ChainReport(chain, 0, 1, 0, Tamper(TamperKind.MISSING, 0))
        anchor = Position(state.anchor_pos, state.anchor_hash)
        total = 0

        def report(tamper: Tamper | None) -> ChainReport:
            return ChainReport(chain, total, anchor.pos + 1, head_pos, tamper)

        head_pos = state.head_pos
        tamper = anchor_tamper(signer, state)
        if tamper is not None:
            return report(tamper)
        position, bound = anchor, -1
        while state.head_pos != bound:
            bound = state.head_pos
            result = walk(entries, signer, chain, position, bound)
            position, total = result.end, total + result.entries
            if result.tamper is not None:
                return report(result.tamper)
            reread = entries.chain(chain)
            if reread is None:
                return report(Tamper(TamperKind.MISSING, 0))
            state, head_pos = reread, reread.head_pos
        # A chain's head row is created in the transaction of its first entry, so every
        # committed head is signed.
        head = Position(state.head_pos, state.head_hash)
        if head != position or not signer.verify(
            point_message("head", chain, head.pos, head.hash), state.head_mac_version,
            state.head_mac,
        ):
            return report(Tamper(TamperKind.HEAD, head.pos))
        beyond = entries.in_chain(chain, bound, 1)
        return report(Tamper(TamperKind.INSERTED, beyond[0].pos) if beyond else None)
