"""Evidence values as text, the same in every human-readable form."""

from __future__ import annotations

from ocrvault.posture.model import EvidenceValue, Status

LABELS = {Status.OK: "OK", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def scalar(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def evidence_lines(value: EvidenceValue) -> list[str]:
    """One line per item of a list or mapping; one line for a plain value."""
    if isinstance(value, list):
        return [scalar(item) for item in value] or ["none"]
    if isinstance(value, dict):
        return [f"{key}: {scalar(item)}" for key, item in value.items()] or ["none"]
    return [scalar(value)]
