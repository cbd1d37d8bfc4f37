"""Checking a webhook from ocrvault on the receiving side: signature, age, and replay.

ocrvault signs per Standard Webhooks, so any of its verifiers works (``standardwebhooks``
on PyPI among them). A signature and a timestamp window alone do not stop an attacker who
captured one delivery from sending it again within the window; :func:`verify_webhook`
also remembers each ``webhook-id`` it accepted for the window and refuses it a second
time::

    from ocrvault.client import WebhookVerificationError, verify_webhook

    try:
        event = verify_webhook(request.body, request.headers, os.environ["WHSEC"])
    except WebhookVerificationError:
        return 400

ocrvault retries a delivery with the same ``webhook-id`` when the receiver did not answer
2xx, so verify only when about to accept (or :meth:`SeenIds.forget` the id after a
failure); a repeat of an id already accepted is what the check refuses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

TOLERANCE_SECONDS = 300  # the Standard Webhooks window: 5 minutes either way


class WebhookVerificationError(Exception):
    """Not a valid, fresh, first delivery of an ocrvault webhook; the message says why."""


class SeenIds:
    """``webhook-id``s accepted within the window, each forgotten once it has passed (a
    delivery that old fails the timestamp check anyway). Safe to share between threads."""

    def __init__(self, window: float = TOLERANCE_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, message_id: str) -> bool:
        """Remember ``message_id``; whether it was new."""
        now = self.clock()
        with self._lock:
            self._until = {m: t for m, t in self._until.items() if t > now}
            if message_id in self._until:
                return False
            self._until[message_id] = now + 2 * self.window
            return True

    def forget(self, message_id: str) -> None:
        """Accept ``message_id`` again (the receiver failed to process it)."""
        with self._lock:
            self._until.pop(message_id, None)


_SEEN = SeenIds()  # the process's memory, for callers that pass none


def _secret_bytes(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError as error:
        raise WebhookVerificationError("the secret is not a whsec_ secret") from error


def _signature(secret: bytes, message_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest())


def verify_webhook(body: bytes, headers: Mapping[str, str], secret: str | Sequence[str], *,
                   seen: SeenIds | None = None,
                   now: Callable[[], float] = time.time) -> Any:
    """The JSON event of a delivery signed with ``secret`` (or any of several, while you
    rotate), at most 5 minutes old or ahead, whose ``webhook-id`` ``seen`` (default: this
    process's memory) has not accepted before; WebhookVerificationError otherwise."""
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    offered = lowered.get("webhook-signature", "")
    if not (message_id and timestamp and offered):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or "
                                       "webhook-signature")
    if not timestamp.isdigit() or abs(now() - int(timestamp)) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("the timestamp is outside the 5-minute window")
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [_signature(_secret_bytes(s), message_id, timestamp, body) for s in secrets]
    candidates = [part.split(",", 1)[1].encode() for part in offered.split()
                  if part.startswith("v1,")]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise WebhookVerificationError("no valid signature")
    if not (seen or _SEEN).first_time(message_id):
        raise WebhookVerificationError("a replay: this webhook-id was accepted already")
    return json.loads(body)
