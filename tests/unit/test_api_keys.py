"""The API key format: recognisable, self-checking, environment-tagged."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ocrvault.access.keys import BASE62, digest_of, generate_key, hint_of, parse_key
from ocrvault.environments import Environment


def test_generated_keys_have_prefix_environment_and_enough_entropy() -> None:
    for environment in Environment:
        key = generate_key(environment)
        assert re.fullmatch(rf"ocv_{environment.value}_[0-9A-Za-z]{{36}}", key)
        parsed = parse_key(key)
        assert parsed is not None and parsed.environment is environment
        assert parsed.digest == digest_of(key) != key
    assert len({generate_key(Environment.LIVE) for _ in range(1000)}) == 1000
    assert 30 * 5.95 >= 160  # 30 base62 characters carry at least 160 bits


@given(st.data())
def test_checksum_catches_every_single_character_change(data: st.DataObject) -> None:
    key = generate_key(data.draw(st.sampled_from(list(Environment))))
    position = data.draw(st.integers(min_value=0, max_value=len(key) - 1))
    replacement = data.draw(st.sampled_from(BASE62 + "_-"))
    if replacement == key[position]:
        return
    mutated = key[:position] + replacement + key[position + 1:]
    assert parse_key(mutated) is None


@given(st.text(max_size=80))
def test_arbitrary_text_is_never_accepted(text: str) -> None:
    assert parse_key(text) is None


def test_hint_reveals_only_prefix_and_last_four() -> None:
    key = generate_key(Environment.TEST)
    hint = hint_of(key)
    assert hint.startswith("ocv_test") and hint.endswith(key[-4:])
    assert key[12:-4] not in hint
