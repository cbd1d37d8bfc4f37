"""The append-only, hash-chained audit log: record, read, verify, export, retain.

Every audited flow calls :meth:`AuditLog.record` with an :class:`AuditEvent`; it goes
to its tenant's hash chain. The chains' format is in ``chain.py``, the walk that finds
tampering in each chain in ``verify.py``.
"""

from ocrvault.audit.chain import ChainSigner
from ocrvault.audit.events import Actor, AuditAction, AuditEntry, AuditEvent, Outcome
from ocrvault.audit.log import AuditLog, AuditSink
from ocrvault.audit.service import AuditPage, AuditQuery, AuditService
from ocrvault.audit.verify import (
    ChainReport,
    Tamper,
    TamperKind,
    VerifyReport,
    verify_chain,
    verify_log,
)

__all__ = [
    "Actor",
    "AuditAction",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "AuditPage",
    "AuditQuery",
    "AuditService",
    "AuditSink",
    "ChainReport",
    "ChainSigner",
    "Outcome",
    "Tamper",
    "TamperKind",
    "VerifyReport",
    "verify_chain",
    "verify_log",
]
