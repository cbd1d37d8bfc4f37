"""Request ids: taken from ``X-Request-Id`` when the client sent a sane one, else made,
and echoed on every response, so a client's log line and our audit entry meet.

Only ids of up to 128 characters from a safe alphabet are taken over: the id goes into
the audit log and logs, where a client must not be able to inject text.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import Scope

from ocrvault.api.asgi import ResponseHeadersMiddleware

HEADER = "X-Request-Id"
_SANE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


class RequestIdMiddleware(ResponseHeadersMiddleware):
    def headers_for(self, scope: Scope) -> dict[str, str]:
        sent = dict(scope["headers"]).get(HEADER.lower().encode(), b"").decode("latin-1")
        request_id = sent if _SANE.fullmatch(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        return {HEADER: request_id}
