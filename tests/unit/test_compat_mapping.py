"""The pure parts of the vendor doors: signed result links, vendors' language names and
Azure's page ranges."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from ocrvault.api.compat.common import VendorError, azure_pages
from ocrvault.api.compat.languages import from_abbyy, from_bcp47
from ocrvault.crypto import Keyring
from ocrvault.crypto.providers import EnvKeyringProvider
from ocrvault.environments import Environment
from ocrvault.errors import ErrorCode, ResourceError
from ocrvault.ingest.pages import MAX_PAGE_NUMBER
from ocrvault.jobs.links import ResultLinks
from ocrvault.principal import Principal, Scope
from tests.clocks import FakeClock

KEYRING = Keyring(EnvKeyringProvider(f"1:{base64.b64encode(bytes(32)).decode()}"))
OTHER_KEYRING = Keyring(EnvKeyringProvider(f"1:{base64.b64encode(bytes([7]) * 32).decode()}"))
CALLER = Principal(tenant_id="t1", key_id="k1", scopes=frozenset({Scope.JOBS_READ}),
                   environment=Environment.LIVE)


def test_a_link_names_its_key_job_and_output_until_it_expires() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    links = ResultLinks(KEYRING, clock, 3600)
    token = links.sign(CALLER, "job-1", "txt")
    link = links.open(token)
    assert (link.tenant_id, link.key_id, link.environment, link.job_id, link.output) == (
        "t1", "k1", Environment.LIVE, "job-1", "txt")
    clock.advance(timedelta(seconds=3600))
    with pytest.raises(ResourceError) as expired:
        links.open(token)
    assert expired.value.code is ErrorCode.NOT_FOUND


def test_a_link_changed_in_any_part_or_signed_elsewhere_opens_nothing() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    token = ResultLinks(KEYRING, clock, 60).sign(CALLER, "job-1", "txt")
    payload, version, tag = token.split(".")
    other_job = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b"job-1", b"job-2")).decode()
    forged = [f"{other_job.rstrip('=')}.{version}.{tag}", f"{payload}.2.{tag}",
              f"{payload}.{version}.{tag[:-2]}AA", "nonsense", "a.b.c",
              ResultLinks(OTHER_KEYRING, clock, 60).sign(CALLER, "job-1", "txt")]
    for candidate in forged:
        with pytest.raises(ResourceError):
            ResultLinks(KEYRING, clock, 60).open(candidate)


@pytest.mark.parametrize(("tag", "code"), [
    ("en", "eng"), ("en-US", "eng"), ("DE", "deu"), ("zh-Hans", "chi_sim"), (None, None)])
def test_bcp47_tags_map_to_tesseract_codes(tag: str | None, code: str | None) -> None:
    assert from_bcp47(tag) == code


@pytest.mark.parametrize("tag", ["xx", "zh", "klingon"])
def test_unknown_bcp47_tags_are_not_supported_language(tag: str) -> None:
    with pytest.raises(VendorError) as refused:
        from_bcp47(tag)
    assert refused.value.vendor_code == "NotSupportedLanguage"


def test_abbyy_language_names_map_in_order_without_repeats() -> None:
    assert from_abbyy("English, German,english") == "eng,deu"
    with pytest.raises(VendorError):
        from_abbyy("English,Elvish")


@pytest.mark.parametrize(("spec", "pages"), [
    ("1", "1"), ("1,3-5", "1,3-5"), ("8-", f"8-{MAX_PAGE_NUMBER}"),
    ("1, 3-, 9", f"1,3-{MAX_PAGE_NUMBER},9"), (None, None)])
def test_azure_page_ranges_become_v1_selections(spec: str | None, pages: str | None) -> None:
    assert azure_pages(spec) == pages


@pytest.mark.parametrize("spec", ["-3", "1,,2", "a", "1-2-3", "1;2"])
def test_malformed_azure_page_ranges_are_invalid_page_range(spec: str) -> None:
    with pytest.raises(VendorError) as refused:
        azure_pages(spec)
    assert refused.value.vendor_code == "InvalidPageRange"
