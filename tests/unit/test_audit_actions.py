"""The audit actions: a closed enum with a grammar, and every member emitted somewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ocrvault.audit
from ocrvault.audit import AuditAction

SRC = Path(__file__).resolve().parents[2] / "src" / "ocrvault"
DEFINITION = SRC / "audit" / "events.py"

# Actions whose flows do not exist yet. Listed here, they must stay unused; once emitted,
# the test below asks to drop them from here.
AWAITING_THEIR_FEATURE: set[AuditAction] = set()


def emitted_actions() -> set[AuditAction]:
    """Every ``AuditAction.X`` that source code (outside the enum itself) refers to."""
    found: set[AuditAction] = set()
    for path in SRC.rglob("*.py"):
        if path == DEFINITION:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "AuditAction"):
                found.add(AuditAction[node.attr])
    return found


def test_actions_follow_the_domain_object_verb_grammar() -> None:
    for action in AuditAction:
        assert re.fullmatch(r"[a-z]+:[a-z_]+:[a-z_]+", action.value), action


def test_every_action_is_emitted_somewhere() -> None:
    emitted = emitted_actions()
    assert set(AuditAction) - AWAITING_THEIR_FEATURE <= emitted
    assert not AWAITING_THEIR_FEATURE & emitted, "emitted now: remove from AWAITING_THEIR_FEATURE"


def test_the_public_surface_is_pinned() -> None:
    assert sorted(ocrvault.audit.__all__) == [
        "Actor", "AuditAction", "AuditEntry", "AuditEvent", "AuditLog", "AuditPage",
        "AuditQuery", "AuditService", "AuditSink", "ChainReport", "ChainSigner", "Outcome",
        "Tamper", "TamperKind", "VerifyReport", "verify_chain", "verify_log",
    ]


def test_entries_of_the_retired_suppression_marker_still_read() -> None:
    # Logs written before refusals were aggregated hold this action; they must stay readable.
    assert AuditAction("auth:request:suppressed") is AuditAction.AUTH_REFUSALS_AGGREGATED
