"""The environments that keys, jobs, retention policies and audit entries each live in.

A ``test`` key never reaches ``live`` data; it lives below every package that names it,
so that none of them has to import another for the word.
"""

from __future__ import annotations

from enum import StrEnum


class Environment(StrEnum):
    LIVE = "live"
    TEST = "test"
