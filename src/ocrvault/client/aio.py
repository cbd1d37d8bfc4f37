"""``AsyncClient``: the asyncio flavour, a thin driver of :mod:`ocrvault.client.core`.

Files given by path are read with blocking I/O before the request is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
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


class AsyncClient:
    """The v1 API over ``httpx.AsyncClient``; the same methods as ``Client``, awaited."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 120.0,
                 retry: Retry | None = None, poll_interval: float = 0.5,
                 transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.core = Core(base_url, api_key, retry=retry, poll_interval=poll_interval)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, exchange: Exchange[T]) -> T:
        """Drive one operation of the core to its result."""
        outcome: Outcome = None
        while True:
            try:
                step = exchange.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Sleep):
                await self._sleep(step.seconds)
                outcome = None
                continue
            try:
                outcome = await self._http.send(step)
            except httpx.TransportError as error:
                outcome = error

    async def submit(self, file: Upload, **options: Unpack[SubmitOptions]) -> JobCreated:
        return await self.run(self.core.submit(file, **options))

    async def read_sync(self, file: Upload, **options: Unpack[ReadOptions]) -> Document:
        return await self.run(self.core.read_sync(file, **options))

    async def languages(self) -> list[Language]:
        return await self.run(self.core.languages())

    async def engines(self) -> list[Engine]:
        return await self.run(self.core.engines())

    async def get_job(self, job_id: str, *, customer_key: CustomerKey | None = None) -> Job:
        return await self.run(self.core.get_job(job_id, customer_key))

    async def wait(self, job_id: str, *, timeout: float = 600.0,
                   progress: Progress | None = None,
                   customer_key: CustomerKey | None = None) -> Job:
        return await self.run(self.core.wait(job_id, timeout=timeout, progress=progress,
                                             customer_key=customer_key))

    async def output(self, job_id: str, fmt: str = "text", *,
                     customer_key: CustomerKey | None = None) -> bytes:
        return await self.run(self.core.output(job_id, fmt, customer_key))

    async def delete_job(self, job_id: str) -> DeletionReceipt:
        return await self.run(self.core.delete_job(job_id))

    async def delete_jobs(self, before: datetime, *,
                          status: str | Iterable[str] | None = None) -> BulkDeletion:
        return await self.run(self.core.delete_jobs(before, status))

    async def list_jobs(self, **filters: Unpack[JobFilters]) -> JobPage:
        return await self.run(self.core.list_jobs(filters))

    async def get_retention(self, *, environment: str | None = None,
                            key_id: str | None = None) -> RetentionPolicy:
        return await self.run(self.core.get_retention(environment, key_id))

    async def put_retention(self, *, environment: str | None = None, key_id: str | None = None,
                            **fields: Unpack[RetentionFields]) -> RetentionPolicy:
        return await self.run(self.core.put_retention(fields, environment, key_id))

    async def create_key(self, name: str, **options: Unpack[KeyOptions]) -> KeyCreated:
        return await self.run(self.core.create_key(name, options))

    async def list_keys(self) -> list[Key]:
        return await self.run(self.core.list_keys())

    async def get_key(self, key_id: str) -> Key:
        return await self.run(self.core.get_key(key_id))

    async def rotate_key(self, key_id: str, *, grace: Duration | None = None) -> KeyCreated:
        return await self.run(self.core.rotate_key(key_id, grace))

    async def revoke_key(self, key_id: str) -> Key:
        return await self.run(self.core.revoke_key(key_id))

    async def list_audit(self, **filters: Unpack[AuditFilters]) -> AuditPage:
        return await self.run(self.core.list_audit(filters))

    async def get_audit_entry(self, entry_id: str) -> AuditEntry:
        return await self.run(self.core.get_audit_entry(entry_id))
