"""``Client``: the blocking flavour, a thin driver of :mod:`ocrvault.client.core`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import TypeVar, Unpack

import httpx

from ocrvault.client.core import (
    AuditFilters,
    Core,
    CustomerKey,
    Duration,
    Exchange,
    JobFilters,
    KeyOptions,
    Outcome,
    Progress,
    ReadOptions,
    RetentionFields,
    Retry,
    Sleep,
    SubmitOptions,
    Upload,
)
from ocrvault.client.models import (
    AuditEntry,
    AuditPage,
    BulkDeletion,
    DeletionReceipt,
    Document,
    Engine,
    Job,
    JobCreated,
    JobPage,
    Key,
    KeyCreated,
    Language,
    RetentionPolicy,
)

T = TypeVar("T")


class Client:
    """The v1 API over ``httpx.Client``; ``transport`` is injectable (``httpx.MockTransport``,
    a guarded transport). Each method's parameters are those of the route it calls."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 120.0,
                 retry: Retry | None = None, poll_interval: float = 0.5,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.core = Core(base_url, api_key, retry=retry, poll_interval=poll_interval)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def run(self, exchange: Exchange[T]) -> T:
        """Drive one operation of the core to its result."""
        outcome: Outcome = None
        while True:
            try:
                step = exchange.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Sleep):
                self._sleep(step.seconds)
                outcome = None
                continue
            try:
                outcome = self._http.send(step)
            except httpx.TransportError as error:
                outcome = error

    def submit(self, file: Upload, **options: Unpack[SubmitOptions]) -> JobCreated:
        return self.run(self.core.submit(file, **options))

    def read_sync(self, file: Upload, **options: Unpack[ReadOptions]) -> Document:
        return self.run(self.core.read_sync(file, **options))

    def languages(self) -> list[Language]:
        return self.run(self.core.languages())

    def engines(self) -> list[Engine]:
        return self.run(self.core.engines())

    def get_job(self, job_id: str, *, customer_key: CustomerKey | None = None) -> Job:
        return self.run(self.core.get_job(job_id, customer_key))

    def wait(self, job_id: str, *, timeout: float = 600.0, progress: Progress | None = None,
             customer_key: CustomerKey | None = None) -> Job:
        return self.run(self.core.wait(job_id, timeout=timeout, progress=progress,
                                       customer_key=customer_key))

    def output(self, job_id: str, fmt: str = "text", *,
               customer_key: CustomerKey | None = None) -> bytes:
        return self.run(self.core.output(job_id, fmt, customer_key))

    def delete_job(self, job_id: str) -> DeletionReceipt:
        return self.run(self.core.delete_job(job_id))

    def delete_jobs(self, before: datetime, *,
                    status: str | Iterable[str] | None = None) -> BulkDeletion:
        return self.run(self.core.delete_jobs(before, status))

    def list_jobs(self, **filters: Unpack[JobFilters]) -> JobPage:
        return self.run(self.core.list_jobs(filters))

    def get_retention(self, *, environment: str | None = None,
                      key_id: str | None = None) -> RetentionPolicy:
        return self.run(self.core.get_retention(environment, key_id))

    def put_retention(self, *, environment: str | None = None, key_id: str | None = None,
                      **fields: Unpack[RetentionFields]) -> RetentionPolicy:
        return self.run(self.core.put_retention(fields, environment, key_id))

    def create_key(self, name: str, **options: Unpack[KeyOptions]) -> KeyCreated:
        return self.run(self.core.create_key(name, options))

    def list_keys(self) -> list[Key]:
        return self.run(self.core.list_keys())

    def get_key(self, key_id: str) -> Key:
        return self.run(self.core.get_key(key_id))

    def rotate_key(self, key_id: str, *, grace: Duration | None = None) -> KeyCreated:
        return self.run(self.core.rotate_key(key_id, grace))

    def revoke_key(self, key_id: str) -> Key:
        return self.run(self.core.revoke_key(key_id))

    def list_audit(self, **filters: Unpack[AuditFilters]) -> AuditPage:
        return self.run(self.core.list_audit(filters))

    def get_audit_entry(self, entry_id: str) -> AuditEntry:
        return self.run(self.core.get_audit_entry(entry_id))
