"""The append-only, hash-chained audit log: record, read, verify, export, retain.

Every audited flow calls :meth:`AuditLog.record` with an :class:`AuditEvent`; the
chain's format is in ``chain.py``, the walk that finds tampering in ``verify.py``.
"""

from ocrvault.audit.chain import ChainSigner
from ocrvault.audit.events import Actor, AuditAction, AuditEntry, AuditEvent, Outcome
from ocrvault.audit.log import AuditLog, AuditSink
from ocrvault.audit.service import AuditPage, AuditQuery, AuditService
from ocrvault.audit.verify import Tamper, TamperKind, VerifyReport, verify_chain

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
    "ChainSigner",
    "Outcome",
    "Tamper",
    "TamperKind",
    "VerifyReport",
    "verify_chain",
]
