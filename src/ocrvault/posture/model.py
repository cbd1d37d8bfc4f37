"""The posture report's JSON model: stable, documented, and shipped as a JSON schema.

A report is one :class:`Entry` per checklist question (:class:`Check`, in a fixed order),
each with a ``status``, a one-sentence ``answer``, the ``evidence`` read from the running
configuration and state, and, for ``warn`` and ``fail``, the ``fix``: the setting or
command that would make it ``ok``. ``posture.schema.json`` beside this module is this
model's JSON schema (``ocrvault.posture.model.json_schema()``), checked by a golden test;
a change to it is a change of ``FORMAT``.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT: Literal["ocrvault-posture/1"] = "ocrvault-posture/1"
SCHEMA_FILE = Path(__file__).with_name("posture.schema.json")


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Check(StrEnum):
    """The checklist, in report order; each value is an entry's stable ``id``."""

    TRANSPORT = "transport"
    ENCRYPTION_AT_REST = "encryption_at_rest"
    MASTER_KEY = "master_key"
    TENANT_KEYS = "tenant_keys"
    ACCESS = "access"
    RETENTION = "retention"
    AUDIT_LOG = "audit_log"
    REAPER = "reaper"
    WEBHOOKS = "webhooks"
    FILE_LIMITS = "file_limits"
    SANDBOX = "sandbox"
    METADATA = "metadata"
    RESIDENCY = "residency"
    BACKUPS = "backups"
    ENVIRONMENTS = "environments"
    TELEMETRY = "telemetry"
    TRAINING = "training"
    COMPONENTS = "components"


QUESTIONS: dict[Check, str] = {
    Check.TRANSPORT: "Is data encrypted in transit?",
    Check.ENCRYPTION_AT_REST: "Is data encrypted at rest, temporary copies included?",
    Check.MASTER_KEY: "Where do the master keys live?",
    Check.TENANT_KEYS: "Are encryption keys scoped per tenant?",
    Check.ACCESS: "Are API keys scoped, with roles?",
    Check.RETENTION: "How long are files, extracted text and job records kept?",
    Check.AUDIT_LOG: "Is there a tamper-evident audit log, and is it intact?",
    Check.REAPER: "Is expired data deleted on time?",
    Check.WEBHOOKS: "Are webhooks signed, and where may they be sent?",
    Check.FILE_LIMITS: "What limits apply to uploaded files?",
    Check.SANDBOX: "How are malicious files handled?",
    Check.METADATA: "Is EXIF and other document metadata stripped?",
    Check.RESIDENCY: "Where is data processed and stored?",
    Check.BACKUPS: "How long can a backup still open deleted data?",
    Check.ENVIRONMENTS: "Are test and production separated?",
    Check.TELEMETRY: "Does the service send telemetry, and what does it connect to?",
    Check.TRAINING: "Is customer data used for training?",
    Check.COMPONENTS: "Which components read documents, at which versions?",
}

Scalar = str | int | float | bool | None
EvidenceValue = Scalar | list[str] | dict[str, Scalar]


# Every field is always written, so the schema requires each (defaults included).
_STRICT = ConfigDict(frozen=True, extra="forbid", json_schema_serialization_defaults_required=True)


class Entry(BaseModel):
    """One checklist question, answered from the running deployment."""

    model_config = _STRICT

    id: Check = Field(description="Stable identifier of the question")
    question: str
    status: Status = Field(description="ok, warn or fail")
    answer: str = Field(description="The answer, in one sentence")
    fix: str | None = Field(
        default=None, description="For warn and fail: the setting or command that fixes it")
    evidence: dict[str, EvidenceValue] = Field(
        default_factory=dict,
        description="What the answer was read from: settings in force, stored state, "
        "verification results; never a secret")

    @model_validator(mode="after")
    def _a_warning_names_its_fix(self) -> Entry:
        if self.status is not Status.OK and not self.fix:
            raise ValueError(f"entry {self.id}: a {self.status} must name its fix")
        return self


class Summary(BaseModel):
    model_config = _STRICT

    ok: int
    warn: int
    fail: int


class Report(BaseModel):
    """The whole report: one entry per :class:`Check`, in its order."""

    model_config = _STRICT

    format: Literal["ocrvault-posture/1"] = Field(
        default=FORMAT, description="This document's format; changes only with the schema")
    generated_at: datetime = Field(description="When the evidence was read (UTC)")
    scope: Literal["tenant", "deployment"] = Field(
        description="tenant: one tenant's policies (GET /v1/security/posture); deployment: "
        "the operator's view of every tenant (ocrvault posture)")
    tenant: str | None = Field(description="The tenant's name (scope tenant), else null")
    environment: str | None = Field(
        description="The environment of the key that asked (scope tenant), else null")
    ocrvault_version: str
    region: str | None = Field(description="OCRVAULT_REGION of the deployment, or null")
    status: Status = Field(description="The worst status of any entry")
    summary: Summary
    entries: list[Entry]

    @classmethod
    def of(cls, entries: list[Entry], **fields: Any) -> Report:
        """A report of ``entries`` with its overall status and counts."""
        counts = {status: sum(1 for e in entries if e.status is status) for status in Status}
        worst = (Status.FAIL if counts[Status.FAIL] else
                 Status.WARN if counts[Status.WARN] else Status.OK)
        return cls(status=worst, summary=Summary(ok=counts[Status.OK],
                                                 warn=counts[Status.WARN],
                                                 fail=counts[Status.FAIL]),
                   entries=entries, **fields)

    def entry(self, check: Check) -> Entry:
        return next(entry for entry in self.entries if entry.id is check)

    @model_validator(mode="after")
    def _one_entry_per_check(self) -> Report:
        if [entry.id for entry in self.entries] != list(Check):
            raise ValueError("a report has one entry per check, in the checklist's order")
        return self


def json_schema() -> dict[str, Any]:
    """The JSON schema of :class:`Report`, as ``posture.schema.json`` ships it."""
    schema = Report.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://ocrvault.invalid/schemas/posture-1.json",
            **schema}


def shipped_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded
