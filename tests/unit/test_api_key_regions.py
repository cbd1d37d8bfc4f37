"""API keys that name their tenant's home region (access/keys.py)."""

from __future__ import annotations

import pytest

from ocrvault.access.keys import KEY_PATTERN, generate_key, parse_key
from ocrvault.environments import Environment


def test_a_regional_key_names_its_region_and_the_checksum_covers_it() -> None:
    key = generate_key(Environment.LIVE, "eu-central")
    assert key.startswith("ocv_live_eu-central_") and KEY_PATTERN.fullmatch(key)
    parsed = parse_key(key)
    assert parsed is not None and parsed.region == "eu-central"
    assert parse_key(key.replace("eu-central", "us-central")) is None  # moved: checksum fails


def test_keys_without_a_region_parse_as_before() -> None:
    parsed = parse_key(generate_key(Environment.TEST))
    assert parsed is not None and parsed.region is None


@pytest.mark.parametrize("region", ["EU", "-eu", "eu-", "e_u", "x" * 33, ""])
def test_a_malformed_region_is_not_a_key(region: str) -> None:
    body = generate_key(Environment.LIVE, "eu").replace("_eu_", f"_{region}_")
    assert parse_key(body) is None
