"""The dispatcher: sends what the outbox holds, from the scheduler, never from a request.

Each run takes the due deliveries, claims each under a lease (one conditional UPDATE, see
store/webhooks.py), sends the claimed ones a few at a time, and records each outcome
while the lease is still its own. Several dispatchers (a standby scheduler, role ``all``
beside a scheduler) may run at once: a delivery claimed by one is invisible to the others
until its lease runs out, so no two send the same attempt. A dispatcher that dies
mid-attempt leaves the lease to run out; the delivery is then sent again (at-least-once;
receivers dedupe on ``webhook-id``).

Every attempt checks the endpoint's URL again with the SSRF guard (DNS can change since
registration) and signs with every secret in use: the current one and, for 24 hours after
a rotation, the previous one.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from ocrvault.clock import Clock
from ocrvault.crypto import DekWrapper
from ocrvault.errors import OcrVaultError
from ocrvault.store.commands import AttemptOutcome
from ocrvault.store.db import Database
from ocrvault.store.records import ClaimedDelivery, WebhookEndpointRecord
from ocrvault.store.webhooks import WebhookRepository
from ocrvault.webhooks.delivery import AttemptResult, Sender, retry_delay
from ocrvault.webhooks.secrets import open_secret
from ocrvault.webhooks.ssrf import AddressGuard

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # above a run's budget plus an attempt's 10 s timeout
RUN_BUDGET_SECONDS = 20.0  # no new batch after this: the scheduler's other tasks wait on a run
FAILING_AFTER = 10  # failed attempts in a row that mark an endpoint failing
LOG_RETENTION = timedelta(days=30)  # finished deliveries and their log are kept this long


class Dispatcher:
    def __init__(self, db: Database, keyring: DekWrapper, guard: AddressGuard, clock: Clock,
                 *, owner: str, sender: Sender | None = None, batch: int = 32,
                 concurrency: int = 16, rng: random.Random | None = None,
                 budget_seconds: float = RUN_BUDGET_SECONDS) -> None:
        self.db = db
        self.keyring = keyring
        self.guard = guard
        self.clock = clock
        self.owner = owner
        self.sender = sender or Sender()
        self.batch = batch
        self.concurrency = concurrency
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.budget_seconds = budget_seconds

    def run_once(self) -> int:
        """Send the deliveries due now, batch after batch until none is left or the run's
        budget is spent (the rest wait for the next run); how many attempts were made. A
        batch of slow receivers takes at most one 10 s timeout per ``concurrency`` of them."""
        made, started = 0, time.monotonic()
        with ThreadPoolExecutor(self.concurrency, "webhook-send") as pool:
            while True:
                due, claimed = self._claim_due()
                made += sum(pool.map(self._attempt, claimed))
                # Not len(claimed): other dispatchers may have claimed the rest.
                if due < self.batch or time.monotonic() - started > self.budget_seconds:
                    break
        with self.db.transaction() as session:
            WebhookRepository(session).purge_finished(self.clock() - LOG_RETENTION)
        return made

    def _claim_due(self) -> tuple[int, list[ClaimedDelivery]]:
        """How many deliveries were due, and those this dispatcher claimed of them."""
        now = self.clock()
        with self.db.transaction() as session:
            due = WebhookRepository(session).due_ids(now, self.batch)
        claimed = []
        for delivery_id in due:  # one transaction each: a claim is held from its commit on
            with self.db.transaction() as session:
                delivery = WebhookRepository(session).claim(delivery_id, self.owner, now, LEASE)
            if delivery is not None:
                claimed.append(delivery)
        return len(due), claimed

    def _attempt(self, delivery: ClaimedDelivery) -> int:
        now = self.clock()
        try:
            result = self._send(delivery, int(now.timestamp()))
        except OcrVaultError as error:  # the guard refused the address, or a secret is lost
            result = AttemptResult(None, 0, error.code.value)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", delivery.id)
            result = AttemptResult(None, 0, "internal_error")
        retry_in = None if result.succeeded else retry_delay(delivery.attempt, self.rng)
        with self.db.transaction() as session:
            recorded = WebhookRepository(session).record_attempt(AttemptOutcome(
                delivery_id=delivery.id, owner=self.owner, attempt=delivery.attempt,
                endpoint_id=delivery.endpoint.id, message_id=delivery.message_id,
                event_type=delivery.event_type, at=now, succeeded=result.succeeded,
                status_code=result.status_code, latency_ms=result.latency_ms,
                error=result.error, retry_at=None if retry_in is None else now + retry_in,
                failing_after=FAILING_AFTER))
        if not recorded:
            log.warning("webhook delivery %s: lease lost before its outcome was recorded",
                        delivery.id)
        elif not result.succeeded:
            log.info("webhook delivery %s attempt %d failed (%s%s)%s", delivery.id,
                     delivery.attempt, result.error,
                     f" {result.status_code}" if result.status_code else "",
                     "" if retry_in else "; given up")
        return 1

    def _send(self, delivery: ClaimedDelivery, timestamp: int) -> AttemptResult:
        target = self.guard.check(delivery.endpoint.url)
        return self.sender.send(target, delivery.message_id, delivery.body.encode("utf-8"),
                                self._secrets(delivery.endpoint), timestamp)

    def _secrets(self, endpoint: WebhookEndpointRecord) -> list[bytes]:
        """The current secret, and the previous one while its grace period runs."""
        sealed = [endpoint.sealed_secret]
        if (endpoint.previous_sealed_secret is not None
                and endpoint.previous_expires_at is not None
                and endpoint.previous_expires_at > self.clock()):
            sealed.append(endpoint.previous_sealed_secret)
        return [open_secret(self.keyring, s, endpoint.tenant_id, endpoint.id) for s in sealed]
