"""Request bodies: bounded in size and time, and held in memory within a budget.

:class:`BodyLimitMiddleware` (pure ASGI, see ``asgi.py``) wraps each request's ``receive``:

- a body may have ``max_json_body_bytes`` unless the code that reads it allowed more
  (:func:`allow_body`, as the upload reader does); a declared ``Content-Length`` over
  that is refused before a byte is read, a chunked body as soon as it passes it (413);
- a body that pauses longer than ``body_timeout_seconds``, or takes longer in all than
  ``body_deadline_seconds``, is cut off (408);
- a response sent before its request's body was read in full closes the connection, so
  that an unauthenticated client cannot go on sending (uvicorn would read and discard it).

Nothing is read before a route asks for it, and routes authenticate first
(``deps.AuthFirstRoute``), so a caller without a key costs a head and no body.

:class:`UploadBudget` bounds the upload bytes held in memory across the process; one
tenant may hold half of it at most, so that one tenant's flood leaves room for others.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocrvault.api.problems import problem_response
from ocrvault.config import Settings
from ocrvault.errors import ErrorCode, InputRejected, Throttled

_BODY_LIMIT = "ocrvault.body_limit"


def allow_body(scope: Scope, limit: int) -> None:
    """Let this request's body have up to ``limit`` bytes; call before reading it."""
    scope[_BODY_LIMIT] = limit


@dataclass(frozen=True, slots=True)
class BodyLimits:
    default_bytes: int
    max_headers: int
    pause_seconds: float
    total_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> BodyLimits:
        return cls(settings.max_json_body_bytes, settings.max_headers,
                   settings.body_timeout_seconds, settings.body_deadline_seconds)


def declared_length(value: str) -> int | None:
    """A Content-Length value as a number, or None if it is none. Digits are counted before
    int(), which refuses over 4,300 of them: 20 digits exceed any cap, so they count as the
    largest size."""
    if not (value.isascii() and value.isdigit()):
        return None
    return int(value) if len(value) <= 19 else sys.maxsize


class _Body:
    """One request's body as the app receives it, checked message by message."""

    def __init__(self, scope: Scope, receive: Receive, limits: BodyLimits) -> None:
        self.scope = scope
        self._receive = receive
        self.limits = limits
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        self.declared = declared_length(length)
        self.complete = not (self.declared or "transfer-encoding" in headers)
        self.received = 0
        self.started: float | None = None

    def _too_large(self, limit: int) -> InputRejected:
        return InputRejected(ErrorCode.BODY_TOO_LARGE,
                             f"Send a request body of at most {limit} bytes.")

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()
        limit: int = self.scope.get(_BODY_LIMIT, self.limits.default_bytes)
        if self.started is None:
            self.started = time.monotonic()
            if self.declared is not None and self.declared > limit:
                raise self._too_large(limit)
        left = self.limits.total_seconds - (time.monotonic() - self.started)
        try:
            message = await asyncio.wait_for(self._receive(),
                                             min(self.limits.pause_seconds, left))
        except TimeoutError:
            raise InputRejected(
                ErrorCode.REQUEST_TIMEOUT,
                f"Send the request body without pausing for {self.limits.pause_seconds:g} s, "
                f"within {self.limits.total_seconds:g} s in all.") from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > limit:
                raise self._too_large(limit)
            self.complete = not message.get("more_body", False)
        else:  # http.disconnect: nothing more will come
            self.complete = True
        return message


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope["headers"]) > self.limits.max_headers:  # servers other than ours
            response = problem_response(ErrorCode.HEADERS_TOO_LARGE,
                                        f"Send at most {self.limits.max_headers} header fields.",
                                        headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        body = _Body(scope, receive, self.limits)

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not body.complete:
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, body.receive, send_closing)


class UploadBudget:
    """Upload bytes in memory across the process: at most ``total``, and half of it for
    any one tenant. Used from the event loop only."""

    def __init__(self, total: int, wait_seconds: float) -> None:
        self.total = total
        self.per_tenant = max(1, total // 2)
        self.wait_seconds = wait_seconds
        self._held = 0
        self._by_tenant: dict[str, int] = {}
        self._freed = asyncio.Condition()

    @classmethod
    def of(cls, settings: Settings) -> UploadBudget:
        return cls(settings.inflight_upload_bytes, settings.upload_wait_seconds)

    @property
    def held(self) -> int:
        return self._held

    def _fits(self, tenant: str, size: int) -> bool:
        return (self._held + size <= self.total
                and self._by_tenant.get(tenant, 0) + size <= self.per_tenant)

    @asynccontextmanager
    async def hold(self, tenant: str) -> AsyncIterator[Reservation]:
        """A reservation for one upload of ``tenant``, returned in full when the block ends."""
        reservation = Reservation(self, tenant)
        try:
            yield reservation
        finally:
            await self._release(tenant, reservation.size)

    async def _take(self, tenant: str, size: int) -> None:
        if size > self.per_tenant:
            raise _busy(f"An upload may hold at most {self.per_tenant} bytes in memory here.",
                        None)
        async with self._freed:
            try:
                await asyncio.wait_for(self._freed.wait_for(lambda: self._fits(tenant, size)),
                                       self.wait_seconds)
            except TimeoutError:
                raise _busy("The server is receiving as many uploads as it can hold; "
                            "retry shortly.", max(1, math.ceil(self.wait_seconds))) from None
            self._held += size
            self._by_tenant[tenant] = self._by_tenant.get(tenant, 0) + size

    async def _release(self, tenant: str, size: int) -> None:
        if not size:
            return
        async with self._freed:
            self._held -= size
            left = self._by_tenant[tenant] - size
            if left:
                self._by_tenant[tenant] = left
            else:
                del self._by_tenant[tenant]
            self._freed.notify_all()


class Reservation:
    """What one upload holds of the budget; it grows as the upload does."""

    def __init__(self, budget: UploadBudget, tenant: str) -> None:
        self.budget = budget
        self.tenant = tenant
        self.size = 0

    async def cover(self, size: int) -> None:
        """Hold at least ``size`` bytes, waiting a little for room, else 503 server_busy."""
        if size > self.size:
            await self.budget._take(self.tenant, size - self.size)
            self.size = size


def _busy(detail: str, retry_after: int | None) -> Throttled:
    return Throttled(ErrorCode.SERVER_BUSY, detail, retry_after)
