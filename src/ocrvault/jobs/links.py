"""Signed result links: a URL that fetches one output of one job without a key header, as
ABBYY's ``resultUrl`` does.

A link names the key it was made for, the job, the output and its expiry, and carries an
HMAC over them (keyring, purpose ``result-link``). It grants nothing by itself: whoever
uses it acts as that key, checked anew (revoked, expired, IP allow-list, scope), through
the same JobService call as /v1, so a deleted or expired job, or a revoked key, ends
every link to it, and each use is audited as that key's read.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ocrvault.clock import Clock
from ocrvault.crypto import Keyring, MacPurpose
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode, ResourceError
from ocrvault.principal import Principal

MAX_LINK_CHARS = 600


@dataclass(frozen=True, slots=True)
class ResultLink:
    tenant_id: str
    key_id: str
    environment: Environment
    job_id: str
    output: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid() -> ResourceError:
    # One answer for forged, altered, expired and malformed: no oracle.
    return ResourceError(ErrorCode.NOT_FOUND, "This result link is invalid or has expired.")


class ResultLinks:
    def __init__(self, keyring: Keyring, clock: Clock, lifetime_seconds: int) -> None:
        self.keyring = keyring
        self.clock = clock
        self.lifetime = timedelta(seconds=lifetime_seconds)

    def sign(self, principal: Principal, job_id: str, output: str) -> str:
        """A token for ``output`` of ``job_id``, usable as ``principal``'s key until the
        lifetime ends."""
        expires = int((self.clock() + self.lifetime).timestamp())
        payload = "|".join((principal.tenant_id, principal.key_id, principal.environment.value,
                            job_id, output, str(expires))).encode()
        version, tag = self.keyring.mac(MacPurpose.RESULT_LINK, payload)
        return f"{_b64(payload)}.{version}.{_b64(tag)}"

    def open(self, token: str) -> ResultLink:
        """What a token of :meth:`sign` grants; ``not_found`` for any other string."""
        try:
            encoded, version, tag = token.split(".")
            payload = _unb64(encoded)
            if len(token) > MAX_LINK_CHARS or not self.keyring.verify_mac(
                    MacPurpose.RESULT_LINK, payload, int(version), _unb64(tag)):
                raise _invalid()
            tenant, key, environment, job, output, expires = payload.decode().split("|")
            link = ResultLink(tenant, key, Environment(environment), job, output,
                              datetime.fromtimestamp(int(expires), UTC))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid() from None
        if link.expires_at <= self.clock():
            raise _invalid()
        return link
