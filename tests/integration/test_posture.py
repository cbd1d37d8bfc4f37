"""GET /v1/security/posture against a real app: each setting or state flipped, and the
entry that answers for it changes status and evidence; scope, tenancy and formats."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
from fastapi.testclient import TestClient

from ocrvault.cli import serving_transport
from ocrvault.config import Settings
from ocrvault.engines.catalog import EngineCatalog, EngineSpec
from ocrvault.errors import ErrorCode, ProcessingError
from ocrvault.posture.model import Check, shipped_schema
from ocrvault.principal import Role
from tests.conftest import assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine

URL = "/v1/security/posture"


def settings_of(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(**{"data_dir": tmp_path / "data", "workers": 1,
                       "reaper_interval_seconds": 10, **changes})


def app_of(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, engine=FixedEngine())


def posture(client: TestClient, key: str, **params: str) -> dict[str, Any]:
    response = client.get(URL, headers=auth(key), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def entry(report: dict[str, Any], check: Check) -> dict[str, Any]:
    [found] = [e for e in report["entries"] if e["id"] == check.value]
    return found


def test_the_report_answers_every_question_in_order_and_matches_the_shipped_schema(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = app_of(make_client, settings_of(tmp_path))
    report = posture(client, issue(client, "acme"))
    jsonschema.validate(report, shipped_schema())
    assert [e["id"] for e in report["entries"]] == [check.value for check in Check]
    assert report["scope"] == "tenant" and report["tenant"] == "acme"
    assert report["environment"] == "live"
    for item in report["entries"]:
        assert item["answer"].endswith(".") and item["evidence"], item
        assert (item["fix"] is None) == (item["status"] == "ok"), item


def test_only_a_key_with_audit_read_gets_the_report(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = app_of(make_client, settings_of(tmp_path))
    assert_problem(client.get(URL), 401, "unauthorized")
    assert_problem(client.get(URL, headers=auth(issue(client, "acme", Role.DEVELOPER))),
                   403, "insufficient_scope")
    assert posture(client, issue(client, "globex", Role.AUDITOR))["tenant"] == "globex"


def test_tls_on_loopback_is_ok_and_plain_http_there_is_a_warning_naming_the_flags(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    client = app_of(make_client, settings)
    key = issue(client, "acme")
    service = runtime_of(client).posture
    service.transport = serving_transport(settings, "127.0.0.1", 8443, tls=True,
                                          behind_proxy=False)
    with_tls = entry(posture(client, key), Check.TRANSPORT)
    assert with_tls["status"] == "ok"
    assert with_tls["evidence"] == {"mode": "tls", "bind": "127.0.0.1", "port": 8443,
                                    "tls_minimum_version": "TLS 1.2"}
    service.transport = serving_transport(settings, "127.0.0.1", 8080, tls=False,
                                          behind_proxy=False)
    plain = entry(posture(client, key), Check.TRANSPORT)
    assert plain["status"] == "warn" and plain["evidence"]["mode"] == "plain"
    assert "--tls-cert" in plain["fix"] and "--behind-proxy" in plain["fix"]


def test_a_keyring_inside_the_data_dir_is_a_warning_and_one_outside_is_ok(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    inside = app_of(make_client, settings_of(tmp_path / "a"))
    beside = entry(posture(inside, issue(inside, "acme")), Check.MASTER_KEY)
    assert beside["status"] == "warn" and "OCRVAULT_KEYRING_PATH" in beside["fix"]
    assert beside["evidence"]["keyring_inside_data_dir"] is True
    assert beside["evidence"]["keyring"] == str((tmp_path / "a/data/keyring.json").resolve())

    keys = tmp_path / "b" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    outside = app_of(make_client, settings_of(tmp_path / "b",
                                              keyring_path=keys / "keyring.json"))
    apart = entry(posture(outside, issue(outside, "acme")), Check.MASTER_KEY)
    assert apart["status"] == "ok" and apart["fix"] is None
    assert apart["evidence"]["keyring_inside_data_dir"] is False
    assert apart["evidence"]["keyring_file_mode"] == "0600"


def test_a_lengthened_retention_policy_turns_the_retention_entry_to_a_warning(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = app_of(make_client, settings_of(tmp_path))
    key = issue(client, "acme")
    before = entry(posture(client, key), Check.RETENTION)
    assert before["status"] == "ok"
    assert before["evidence"]["live"]["result"] == 86400
    assert before["evidence"]["test"]["result"] == 3600  # test data: one hour at most

    changed = client.patch("/v1/retention", headers=auth(key), json={"result": "P30D"})
    assert changed.status_code == 200, changed.text
    after = entry(posture(client, key), Check.RETENTION)
    assert after["status"] == "warn" and "live.result" in after["answer"]
    assert after["evidence"]["live"]["result"] == 30 * 86400
    assert after["evidence"]["test"]["result"] == 3600
    assert "/v1/retention" in after["fix"]


def test_a_key_override_that_keeps_data_longer_is_named(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = app_of(make_client, settings_of(tmp_path))
    key = issue(client, "acme")
    [listed] = client.get("/v1/keys", headers=auth(key)).json()["keys"]
    longer = client.patch(f"/v1/keys/{listed['id']}/retention", headers=auth(key),
                          json={"outputs": "P7D"})
    assert longer.status_code == 200, longer.text
    after = entry(posture(client, key), Check.RETENTION)
    assert after["status"] == "warn" and after["evidence"]["key_overrides"] == 1
    assert after["evidence"]["longer_than_default"] == [f"key {listed['id']}/live: outputs"]
    assert after["evidence"]["live"]["outputs"] == 86400  # the tenant's own policy is unchanged


def test_a_tampered_audit_row_fails_the_audit_entry_naming_the_entry(
        make_client: Callable[..., TestClient], databases: TestDatabases,
        tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    client = app_of(make_client, settings)
    key = issue(client, "acme")
    intact = entry(posture(client, key), Check.AUDIT_LOG)
    assert intact["status"] == "ok"
    [(chain, state)] = intact["evidence"]["chains"].items()
    assert chain == "tenant:acme" and state.startswith("verified up to entry ")

    databases.execute(settings.data_dir, "UPDATE audit_entries SET actor_name = 'nobody' "
                      "WHERE chain LIKE 'tenant:%' AND pos = 2")
    tampered = entry(posture(client, key), Check.AUDIT_LOG)
    assert tampered["status"] == "fail"
    assert tampered["evidence"]["chains"] == {"tenant:acme": "TAMPERED: entry 2 was changed"}
    assert "ocrvault audit verify" in tampered["fix"]


def test_a_webhook_endpoint_on_plain_http_turns_the_webhook_entry_to_a_warning(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    strict = app_of(make_client, settings_of(tmp_path / "a"))
    default = entry(posture(strict, issue(strict, "acme")), Check.WEBHOOKS)
    assert default["status"] == "ok" and default["evidence"]["allow_http"] is False

    lax = app_of(make_client, settings_of(tmp_path / "b", webhook_allow_http=True,
                                          webhook_allow_cidrs="127.0.0.1/32"))
    key = issue(lax, "acme")
    allowed = entry(posture(lax, key), Check.WEBHOOKS)
    assert allowed["status"] == "warn" and "OCRVAULT_WEBHOOK_ALLOW_HTTP=false" in allowed["fix"]
    assert allowed["evidence"]["allow_cidrs"] == ["127.0.0.1/32"]

    made = lax.post("/v1/webhooks", headers=auth(key), json={
        "url": "http://127.0.0.1:9/hook?token=secret", "events": ["job.succeeded"]})
    assert made.status_code == 201, made.text
    endpoint = made.json()["id"]
    plain = entry(posture(lax, key), Check.WEBHOOKS)
    assert plain["status"] == "warn"
    assert plain["evidence"]["plain_http_endpoints"] == [f"{endpoint} http://127.0.0.1:9 (live)"]
    assert "token" not in str(plain)  # the path and query may carry secrets: never shown
    connections = entry(posture(lax, key), Check.TELEMETRY)["evidence"]["connects_to"]
    assert "webhook: http://127.0.0.1:9" in connections

    other = entry(posture(lax, issue(lax, "globex")), Check.WEBHOOKS)
    assert other["evidence"]["endpoints"] == []  # another tenant's endpoints are not shown


def test_the_reaper_entry_fails_while_expired_data_waits_past_a_minute(
        make_client: Callable[..., TestClient], databases: TestDatabases,
        tmp_path: Path) -> None:
    # The reaper runs hourly here, so the expired job stays for the report to see.
    settings = settings_of(tmp_path, reaper_interval_seconds=3600)
    client = app_of(make_client, settings)
    key = issue(client, "acme")
    slow = entry(posture(client, key), Check.REAPER)
    assert slow["status"] == "warn" and slow["evidence"]["overdue_jobs"] == 0
    assert "OCRVAULT_REAPER_INTERVAL_SECONDS" in slow["fix"]

    submitted = client.post("/v1/read", headers=auth(key), files={"file": (
        "a.png", encode(text_page(["posture"]), "PNG"), "image/png")})
    assert submitted.status_code == 202, submitted.text
    wait_for_job(client, submitted.json()["id"], key)
    databases.execute(settings.data_dir,
                      "UPDATE jobs SET next_expiry_at = '2020-01-01 00:00:00.000000'")
    late = entry(posture(client, key), Check.REAPER)
    assert late["status"] == "fail" and late["evidence"]["overdue_jobs"] == 1
    assert late["evidence"]["oldest_overdue_seconds"] > 60
    assert "--role scheduler" in late["fix"]


def test_the_report_comes_as_markdown_and_as_a_printable_page(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = app_of(make_client, settings_of(tmp_path))
    key = issue(client, "acme")
    markdown = client.get(URL, headers=auth(key), params={"format": "md"})
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith("# ocrvault security posture")
    page = client.get(URL, headers=auth(key), params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "style-src 'unsafe-inline'" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.text.count("<section class=\"entry") == len(Check)


def test_an_engine_that_cannot_be_described_is_named_not_a_server_error(
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    def missing() -> EngineSpec:
        raise ProcessingError(ErrorCode.ENGINE_UNAVAILABLE, "no tessdata")

    engine = FixedEngine()
    catalog = EngineCatalog({"fake-fixed": lambda: engine, "tesseract": lambda: engine},
                            "fake-fixed", {"tesseract": missing})
    client = make_client(settings_of(tmp_path), engines=catalog)
    versions = entry(posture(client, issue(client, "acme")), Check.COMPONENTS)["evidence"]
    assert versions["engines"] == {"fake-fixed": "1",
                                   "tesseract": "unavailable: ProcessingError"}
