"""Each posture check on its own: the facts flipped one at a time, and the entry's status,
evidence and fix follow (the integration tests do the same through the running app)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ocrvault.config import Settings
from ocrvault.posture import checks
from ocrvault.posture.facts import (
    AuditFacts,
    ChainFacts,
    EndpointFacts,
    MasterKeyFacts,
    ReaperFacts,
    Transport,
    WebhookFacts,
    origin,
)
from ocrvault.posture.model import Status

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def served(host: str, *, tls: bool = False, proxy: bool = False,
           trusted: str = "127.0.0.1") -> Transport:
    return Transport.of(host, 8080, tls_minimum_version="TLS 1.2" if tls else None,
                        behind_proxy=proxy, trusted_proxies=trusted)


def test_transport_by_mode() -> None:
    assert checks.transport(served("0.0.0.0", tls=True)).status is Status.OK
    assert checks.transport(served("127.0.0.1")).status is Status.WARN
    off_loopback = checks.transport(served("10.0.0.5"))
    assert off_loopback.status is Status.FAIL and "--tls-cert" in (off_loopback.fix or "")
    proxied = checks.transport(served("10.0.0.5", proxy=True, trusted="10.0.0.1, 10.0.0.2"))
    assert proxied.status is Status.OK
    assert proxied.evidence["trusted_proxies"] == ["10.0.0.1", "10.0.0.2"]
    anyone = checks.transport(served("10.0.0.5", proxy=True, trusted="*"))
    assert anyone.status is Status.WARN and "OCRVAULT_TRUSTED_PROXIES" in (anyone.fix or "")
    unknown = checks.transport(None)
    assert unknown.status is Status.WARN and unknown.evidence == {"mode": "unknown"}


def keyring(**changes: object) -> MasterKeyFacts:
    facts = {"provider": "keyring", "keyring_source": "/etc/ocrvault/keyring.json",
             "keyring_beside_data": False, "keyring_file_mode": "0600",
             "keyring_versions": (1, 2), "keyring_primary": 2, **changes}
    return MasterKeyFacts(**facts)  # type: ignore[arg-type]


def test_master_key_location_mode_and_reachability() -> None:
    assert checks.master_key(keyring()).status is Status.OK
    assert checks.master_key(keyring(keyring_beside_data=True)).status is Status.WARN
    readable = checks.master_key(keyring(keyring_file_mode="0644"))
    assert readable.status is Status.FAIL and readable.fix == "chmod 600 /etc/ocrvault/keyring.json"
    down = checks.master_key(keyring(provider="aws-kms", unavailable="key_service_unavailable"))
    assert down.status is Status.FAIL and "OCRVAULT_KMS_" in (down.fix or "")
    hsm = checks.master_key(keyring(provider="pkcs11"))
    assert hsm.status is Status.OK
    assert "audit log's MAC key still derives from the keyring at /etc/ocrvault/keyring.json" \
        in hsm.answer
    assert "whatever the provider" in str(hsm.evidence["keyring_protects"])


def test_audit_log_names_the_first_broken_chain() -> None:
    intact = ChainFacts("tenant:acme", 5, 1, 5, None)
    broken = ChainFacts("tenant:globex", 1, 1, 3, "entry 2 was changed")
    ok = checks.audit_log(AuditFacts(AT, (intact,), 400))
    assert ok.status is Status.OK and "tenant:acme up to entry 5" in ok.answer
    assert ok.evidence["chains"] == {"tenant:acme":
                                     "verified up to entry 5 at 2026-11-30T12:00:00Z"}
    failed = checks.audit_log(AuditFacts(AT, (intact, broken), 400))
    assert failed.status is Status.FAIL and "tenant:globex" in failed.answer


def test_reaper_lag_and_interval() -> None:
    def reaper(interval: float, lag: float | None) -> Status:
        return checks.reaper(ReaperFacts(interval, 0 if lag is None else 1, lag, None,
                                         None)).status

    assert reaper(10, None) is Status.OK
    assert reaper(10, 30) is Status.OK
    assert reaper(120, None) is Status.WARN
    assert reaper(10, 61) is Status.FAIL


def test_webhooks_plain_http_allowed_or_used() -> None:
    https = EndpointFacts("we_1", "live", "https://hooks.example.com", "active")
    http = EndpointFacts("we_2", "test", "http://10.1.2.3:8080", "active")
    assert checks.webhooks(WebhookFacts(False, (), (https,))).status is Status.OK
    assert checks.webhooks(WebhookFacts(True, (), (https,))).status is Status.WARN
    used = checks.webhooks(WebhookFacts(True, ("10.1.2.0/24",), (https, http)))
    assert used.status is Status.WARN
    assert used.evidence["plain_http_endpoints"] == ["we_2 http://10.1.2.3:8080 (test)"]


def test_origin_drops_credentials_paths_and_queries() -> None:
    assert origin("amqp://guest:secret@rabbit:5672/vhost") == "amqp://rabbit:5672"
    assert origin("https://h.example/p?token=x#f") == "https://h.example"
    assert origin("http://[::1]:9/x") == "http://[::1]:9"


def test_sandbox_and_residency_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert checks.sandbox(settings).status is Status.OK
    slow = checks.sandbox(Settings(data_dir=tmp_path, decode_timeout_seconds=900))
    assert slow.status is Status.WARN and "OCRVAULT_DECODE_TIMEOUT_SECONDS" in (slow.fix or "")
    assert checks.residency(settings, []).status is Status.WARN
    placed = checks.residency(Settings(data_dir=tmp_path, region="eu-central"), [])
    assert placed.status is Status.OK and placed.evidence["region"] == "eu-central"
