"""One delivery attempt over HTTP, and when to try again.

An attempt connects to the address the SSRF guard checked (the URL's host replaced by it)
and names the host in the Host header and, for HTTPS, in TLS SNI and the certificate
check: no second DNS resolution happens between the check and the connect. Redirects
are not followed (a 3xx is a failed attempt: following one would reach an unchecked
address), proxies from the environment are ignored, the timeout is 10 s, and the response
body is never read, let alone stored: only the status code and the latency are kept.

Retries: at-least-once, with exponential backoff and jitter (about 5 s, 30 s, 2 min,
10 min, 1 h and 6 h after the failures), then the delivery is given up.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ocrvault import __version__
from ocrvault.webhooks import signing
from ocrvault.webhooks.ssrf import Target

TIMEOUT_SECONDS = 10.0
RETRY_SCHEDULE = (5, 30, 120, 600, 3600, 21600)  # seconds after attempts 1, 2, ...
JITTER = 0.2  # each wait is drawn from within +/- 20 % of the schedule's
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1


def retry_delay(attempt: int, rng: random.Random) -> timedelta | None:
    """How long after failed attempt number ``attempt`` (from 1) to try again; None once
    the schedule is spent. Jitter spreads the retries of many deliveries that failed
    together (a receiver's outage) instead of sending them back in one burst."""
    if attempt >= MAX_ATTEMPTS:
        return None
    base = RETRY_SCHEDULE[attempt - 1]
    return timedelta(seconds=base * rng.uniform(1 - JITTER, 1 + JITTER))


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    error: str | None  # None, or why no 2xx came: http_status, timeout, connect_failed, ...

    @property
    def succeeded(self) -> bool:
        return self.error is None


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


def pinned_url(target: Target) -> str:
    """The URL with its host replaced by the checked address."""
    address = f"[{target.address}]" if ":" in target.address else target.address
    return f"{target.scheme}://{address}:{target.port}{target.path}"


class Sender:
    """Sends one signed POST. ``verify`` is the TLS trust (a CA bundle's SSLContext in tests)."""

    def __init__(self, verify: ssl.SSLContext | bool = True,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self.verify = verify
        self.timeout = timeout

    def send(self, target: Target, message_id: str, body: bytes,
             secrets_in_use: Sequence[bytes], timestamp: int) -> AttemptResult:
        headers = {
            **signing.headers(secrets_in_use, message_id, timestamp, body),
            "content-type": "application/json",
            "user-agent": f"ocrvault-webhooks/{__version__}",
            "host": _host_header(target),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        import httpx  # here: a deployment without webhooks does not pay its memory

        started = time.monotonic()
        try:
            with httpx.Client(verify=self.verify, timeout=self.timeout, follow_redirects=False,
                              trust_env=False) as client, client.stream(
                    "POST", pinned_url(target), content=body, headers=headers,
                    extensions=extensions) as response:
                status = response.status_code  # the body is never read
        except httpx.TimeoutException:
            return AttemptResult(None, _since(started), "timeout")
        except httpx.ConnectError:
            return AttemptResult(None, _since(started), "connect_failed")
        except httpx.HTTPError:
            return AttemptResult(None, _since(started), "http_error")
        error = None if 200 <= status < 300 else "http_status"
        return AttemptResult(status, _since(started), error)


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
