"""Standard Webhooks signatures as the reference verifier checks them, the retry schedule,
and the secret sealed under the keyring."""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from ocrvault.client import SeenIds, verify_webhook
from ocrvault.client import WebhookVerificationError as SdkRefusal
from ocrvault.crypto import EnvKeyringProvider, Keyring
from ocrvault.errors import IntegrityError
from ocrvault.webhooks import signing
from ocrvault.webhooks.delivery import MAX_ATTEMPTS, RETRY_SCHEDULE, retry_delay
from ocrvault.webhooks.secrets import open_secret, seal_secret

BODY = json.dumps({"type": "webhook.test", "timestamp": "now", "data": {}}).encode()


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert len(first) == 32 and first != second
    shown = signing.encode_secret(first)
    assert shown.startswith("whsec_") and Webhook(shown)._whsecret == first


def test_the_reference_verifier_accepts_each_secret_in_use_and_no_other() -> None:
    old, new, stranger = (signing.encode_secret(signing.new_secret()) for _ in range(3))
    headers = signing.headers([Webhook(new)._whsecret, Webhook(old)._whsecret], "msg_1",
                              int(time.time()), BODY)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(BODY, headers)["type"] == "webhook.test"
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(BODY, headers)


def test_the_sdk_helper_checks_signature_window_and_replay() -> None:
    secret = signing.encode_secret(signing.new_secret())
    now = time.time()
    headers = signing.headers([Webhook(secret)._whsecret], "msg_2", int(now), BODY)
    seen = SeenIds(clock=lambda: now)
    assert verify_webhook(BODY, headers, [secret], seen=seen, now=lambda: now)["data"] == {}
    with pytest.raises(SdkRefusal, match="replay"):
        verify_webhook(BODY, headers, secret, seen=seen, now=lambda: now)
    with pytest.raises(SdkRefusal, match="window"):
        verify_webhook(BODY, headers, secret, seen=SeenIds(), now=lambda: now + 301)
    with pytest.raises(SdkRefusal, match="signature"):
        verify_webhook(BODY + b" ", headers, secret, seen=SeenIds(), now=lambda: now)
    # Once the window has passed, the id is forgotten (the timestamp check refuses it then).
    later = SeenIds(clock=lambda: now)
    assert later.first_time("msg_3")
    later.clock = lambda: now + 601
    assert later.first_time("msg_3")


def test_retries_back_off_exponentially_with_jitter_then_give_up() -> None:
    rng = random.Random(7)
    waits = [retry_delay(attempt, rng) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert waits[-1] is None
    for wait, base in zip(waits[:-1], RETRY_SCHEDULE, strict=True):
        assert wait is not None and 0.8 * base <= wait.total_seconds() <= 1.2 * base
    spread = {retry_delay(1, rng) for _ in range(20)}
    assert len(spread) > 10  # jitter: deliveries that failed together do not retry together
    assert all(timedelta(seconds=4) <= w <= timedelta(seconds=6) for w in spread if w)


def test_a_sealed_secret_opens_only_for_its_own_tenant_and_endpoint() -> None:
    keyring = Keyring(EnvKeyringProvider("1:" + "A" * 43 + "="))
    secret = signing.new_secret()
    sealed = seal_secret(keyring, secret, "tenant-a", "endpoint-1")
    assert secret not in sealed
    assert open_secret(keyring, sealed, "tenant-a", "endpoint-1") == secret
    for tenant, endpoint in (("tenant-b", "endpoint-1"), ("tenant-a", "endpoint-2")):
        with pytest.raises(IntegrityError):
            open_secret(keyring, sealed, tenant, endpoint)
    # Nor as a job's data key: the endpoint's name is outside the space of job ids.
    with pytest.raises(IntegrityError):
        keyring.unwrap_dek(sealed, "tenant-a", "endpoint-1")
