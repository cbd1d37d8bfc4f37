"""The engines and languages a deployment offers, described from the engines themselves."""

from __future__ import annotations

from ocrvault.engines.catalog import EngineSpec
from ocrvault.jobs.capabilities import describe_engines, describe_languages
from ocrvault.model import EngineInfo
from tests.engine_fakes import FixedEngine


class OtherEngine(FixedEngine):
    info = EngineInfo(name="other", version="2.1")

    def languages(self) -> frozenset[str]:
        return frozenset({"eng", "chi_sim", "qaa"})


SPECS = [EngineSpec.of(OtherEngine()), EngineSpec.of(FixedEngine())]


def test_every_engine_is_described_and_the_default_marked() -> None:
    described = describe_engines(SPECS, default="other")
    assert [(e.name, e.version, e.languages, e.default) for e in described] == [
        ("fake-fixed", "1", ["deu", "eng"], False),
        ("other", "2.1", ["chi_sim", "eng", "qaa"], True),
    ]


def test_languages_are_named_and_say_which_engines_read_them() -> None:
    described = {d.code: (d.name, d.engines)
                 for d in describe_languages(SPECS)}
    assert described == {
        "chi_sim": ("Chinese (Simplified)", ["other"]),
        "deu": ("German", ["fake-fixed"]),
        "eng": ("English", ["fake-fixed", "other"]),
        "qaa": ("qaa", ["other"]),  # a code the table does not know is named by itself
    }
