"""Retention policies: how long each kind of data lives, and when each part of a job goes.

Kinds: ``input`` (the uploaded file), ``result`` (text and JSON), ``outputs``
(rendered formats), ``job_metadata`` (the content-free job row) and
``failed_inputs`` (the file of a job that failed). Durations count from the job's
completion. A tenant has a policy, a key may override it, a request may only
shorten it, and test-mode data never lives longer than one hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode, InputRejected

HOUR = 3600
DAY = 24 * HOUR
TEST_MODE_CEILING = HOUR
MAX_SECONDS = 10 * 365 * DAY
MAX_RETENTION_CHARS = 32  # ample for any duration up to MAX_SECONDS; int() never sees more

_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?$",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    input: int = 0
    result: int = DAY
    outputs: int = DAY
    job_metadata: int = 30 * DAY
    failed_inputs: int = 0

    def __post_init__(self) -> None:
        for kind in fields(self):
            value = getattr(self, kind.name)
            if not 0 <= value <= MAX_SECONDS:
                raise InputRejected(ErrorCode.INVALID_PARAMETER,
                                    f"Retention '{kind.name}' must be 0 to {MAX_SECONDS} seconds.")
        longest_part = max(self.input, self.result, self.outputs, self.failed_inputs)
        if self.job_metadata < longest_part:
            raise InputRejected(
                ErrorCode.INVALID_PARAMETER,
                "Retention 'job_metadata' must be at least as long as every other kind: the "
                "job row is what finds and deletes the other parts.",
            )

    def as_dict(self) -> dict[str, int]:
        return {kind.name: getattr(self, kind.name) for kind in fields(self)}

    def for_environment(self, environment: Environment) -> RetentionPolicy:
        if environment is not Environment.TEST:
            return self
        return RetentionPolicy(**{k: min(v, TEST_MODE_CEILING) for k, v in self.as_dict().items()})

    def shortened_to(self, requested: int | None) -> RetentionPolicy:
        """The policy with result and outputs capped at a request's own, shorter, retention."""
        if requested is None:
            return self
        if requested > min(self.result, self.outputs):
            raise InputRejected(
                ErrorCode.RETENTION_EXCEEDS_POLICY,
                f"retention={requested}s is longer than the policy allows "
                f"({min(self.result, self.outputs)}s); a request may only shorten it.",
            )
        return replace(self, result=requested, outputs=requested)


def parse_retention(value: str | None) -> int | None:
    """Seconds from '3600' or an ISO 8601 duration such as 'PT1H' or 'P1DT30M', at most
    MAX_SECONDS (a longer one is refused here as a bad value, not compared with the policy)."""
    if value is None or not value.strip():
        return None
    text = value.strip().upper()
    if len(text) > MAX_RETENTION_CHARS:  # before int(): Python refuses over 4,300 digits
        raise _bad_retention(f"is at most {MAX_RETENTION_CHARS} characters")
    if text.isascii() and text.isdigit():
        seconds = int(text)
    elif match := _ISO_DURATION.fullmatch(text):
        parts = {k: int(v or 0) for k, v in match.groupdict().items()}
        seconds = (parts["days"] * DAY + parts["hours"] * HOUR + parts["minutes"] * 60
                   + parts["seconds"])
    else:
        raise _bad_retention("is seconds or an ISO 8601 duration such as 'PT1H'")
    if seconds > MAX_SECONDS:
        raise _bad_retention(f"is at most {MAX_SECONDS} seconds (10 years)")
    return seconds


def _bad_retention(reason: str) -> InputRejected:
    return InputRejected(ErrorCode.INVALID_PARAMETER, f"retention {reason}.")


@dataclass(frozen=True, slots=True)
class Expiries:
    """When each part of a finished job goes (None: never stored, or already gone)."""

    input: datetime | None
    result: datetime | None
    outputs: datetime | None
    job_metadata: datetime

    @classmethod
    def at_completion(cls, policy: RetentionPolicy, completed_at: datetime,
                      succeeded: bool) -> Expiries:
        def after(seconds: int) -> datetime:
            return completed_at + timedelta(seconds=seconds)

        return cls(
            input=after(policy.input if succeeded else policy.failed_inputs),
            result=after(policy.result) if succeeded else None,
            outputs=after(policy.outputs) if succeeded else None,
            job_metadata=after(policy.job_metadata),
        )

    def capped_at(self, deadline: datetime | None) -> Expiries:
        """These expiries, none later than ``deadline`` (the test-mode ceiling)."""
        if deadline is None:
            return self

        def cap(at: datetime | None) -> datetime | None:
            return None if at is None else min(at, deadline)

        return Expiries(input=cap(self.input), result=cap(self.result),
                        outputs=cap(self.outputs), job_metadata=min(self.job_metadata, deadline))


def ceiling_for(environment: Environment, created_at: datetime) -> datetime | None:
    """Test-mode data goes one hour after submission, whatever any policy says."""
    if environment is Environment.TEST:
        return created_at + timedelta(seconds=TEST_MODE_CEILING)
    return None
