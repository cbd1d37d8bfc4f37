"""Choosing the engine: ``engine=`` per request (API and CLI), the deployment default,
``auto`` per page by language, and refusals that name the engine that can read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL.Image import Image
from typer.testing import CliRunner

from ocrvault.config import Settings
from ocrvault.engines import registry
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.catalog import AUTO, RAPIDOCR, TESSERACT, AutoEngine, EngineCatalog
from ocrvault.errors import InputRejected
from ocrvault.model import EngineInfo, Page
from tests.conftest import assert_problem, auth, runtime_of, wait_for_job
from tests.docgen import encode, text_page
from tests.engine_fakes import FixedEngine, fixed_page

PNG = encode(text_page(["Invoice 42"], size=(600, 120)), "PNG")


class FakeTesseract(FixedEngine):
    info = EngineInfo(name=TESSERACT, version="5")

    def languages(self) -> frozenset[str]:
        return frozenset({"eng", "deu", "fra", "spa"})

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        return fixed_page(image, options).model_copy(update={"engine": TESSERACT})


class FakeRapid(FakeTesseract):
    info = EngineInfo(name=RAPIDOCR, version="3")

    def languages(self) -> frozenset[str]:
        return frozenset({"eng", "chi_sim"})

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        return fixed_page(image, options).model_copy(update={"engine": RAPIDOCR})


def fake_catalog(default: str = AUTO) -> EngineCatalog:
    return EngineCatalog({TESSERACT: FakeTesseract, RAPIDOCR: FakeRapid}, default)


@pytest.fixture
def two_engines(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings, engines=fake_catalog())


def key_of(client: TestClient) -> str:
    return runtime_of(client).access.bootstrap_tenant("acme").secret


def sync_read(client: TestClient, **params: str) -> dict[str, object]:
    response = client.post("/v1/read:sync", content=PNG, headers=auth(key_of(client)),
                           params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def engines_of(result: dict[str, object]) -> list[object]:
    pages = result["pages"]
    assert isinstance(pages, list)
    return [page["engine"] for page in pages]


@pytest.mark.parametrize(("params", "read_by", "document_engine"), [
    ({}, RAPIDOCR, AUTO),  # the default, auto, picks RapidOCR for English
    ({"engine": AUTO, "languages": "deu"}, TESSERACT, AUTO),
    ({"engine": AUTO, "languages": "eng+chi_sim"}, RAPIDOCR, AUTO),
    ({"engine": TESSERACT}, TESSERACT, TESSERACT),
    ({"engine": RAPIDOCR}, RAPIDOCR, RAPIDOCR),
])
def test_each_page_says_which_engine_read_it(two_engines: TestClient, params: dict[str, str],
                                             read_by: str, document_engine: str) -> None:
    result = sync_read(two_engines, **params)
    assert engines_of(result) == [read_by]
    engine = result["engine"]
    assert isinstance(engine, dict)
    assert engine["name"] == document_engine


def test_an_async_job_reads_with_the_engine_its_request_named(two_engines: TestClient) -> None:
    key = key_of(two_engines)
    response = two_engines.post("/v1/read", content=PNG, headers=auth(key),
                                params={"engine": TESSERACT})
    assert response.status_code == 202, response.text
    job = wait_for_job(two_engines, response.json()["id"], key)
    assert engines_of(job["result"]) == [TESSERACT]


def test_rapidocr_refuses_german_and_says_to_use_tesseract(two_engines: TestClient) -> None:
    key = key_of(two_engines)
    for path in ("/v1/read", "/v1/read:sync"):
        response = two_engines.post(path, content=PNG, headers=auth(key),
                                    params={"engine": RAPIDOCR, "languages": "eng+deu"})
        problem = assert_problem(response, 400, "invalid_parameter")
        assert problem["detail"] == ("engine rapidocr reads: chi_sim, eng; "
                                     "use engine=tesseract for deu.")


def test_an_unknown_engine_is_refused(two_engines: TestClient) -> None:
    response = two_engines.post("/v1/read:sync", content=PNG, headers=auth(key_of(two_engines)),
                                params={"engine": "easyocr"})
    problem = assert_problem(response, 400, "invalid_parameter")
    assert problem["detail"] == ("Unknown engine 'easyocr'; choose one of: "
                                 "auto, rapidocr, tesseract.")


def test_the_deployment_default_engine_reads_when_the_request_names_none(
        make_client: Callable[..., TestClient], settings: Settings) -> None:
    client = make_client(settings, engines=fake_catalog(default=TESSERACT))
    assert engines_of(sync_read(client)) == [TESSERACT]


def test_a_default_engine_that_does_not_exist_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="default engine 'paddle'"):
        fake_catalog(default="paddle")


def test_auto_reads_languages_outside_rapidocrs_set_with_tesseract() -> None:
    auto = AutoEngine(FakeTesseract(), FakeRapid())
    assert auto.languages() == {"eng", "deu", "fra", "spa", "chi_sim"}
    for languages, chosen in [(("eng",), RAPIDOCR), (("chi_sim", "eng"), RAPIDOCR),
                              (("eng", "deu"), TESSERACT), (("spa",), TESSERACT)]:
        assert auto.choose(RecognizeOptions(languages=languages)).info.name == chosen


def test_the_catalog_creates_each_engine_once_and_closes_them() -> None:
    made: list[str] = []
    closed: list[str] = []

    class Counted(FakeTesseract):
        def __init__(self) -> None:
            made.append("t")

        def close(self) -> None:
            closed.append("t")

    catalog = EngineCatalog({TESSERACT: Counted, RAPIDOCR: FakeRapid}, AUTO)
    for name in (TESSERACT, AUTO, TESSERACT, None):
        catalog.get(name)
    assert made == ["t"]
    catalog.close()
    assert closed == ["t"]


def test_the_registry_offers_both_engines_and_auto(settings: Settings) -> None:
    assert {TESSERACT, RAPIDOCR} <= registry.available()
    assert {AUTO, RAPIDOCR, TESSERACT} <= set(registry.catalog(settings).names)
    assert registry.catalog(settings).default == AUTO
    with pytest.raises(InputRejected):
        registry.catalog(settings).resolve("nope")


def test_the_cli_reads_with_the_engine_it_is_told(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrvault.cli import app

    monkeypatch.setenv("OCRVAULT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "catalog", lambda settings: fake_catalog())
    image = tmp_path / "page.png"
    image.write_bytes(PNG)
    result = CliRunner().invoke(app, ["read", str(image), "--format", "json",
                                      "--engine", TESSERACT])
    assert result.exit_code == 0, result.output
    assert '"engine": "tesseract"' in result.output.replace('"engine":"', '"engine": "')
    refused = CliRunner().invoke(app, ["read", str(image), "--engine", RAPIDOCR,
                                       "--languages", "deu"])
    assert refused.exit_code != 0
    assert "use engine=tesseract for deu" in " ".join(refused.output.split())


class TurnedRapid(FakeRapid):
    """What RapidOCR makes of a page turned by 90 degrees: tall lines."""

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        page = super().recognize(image, options)
        turned = [line.model_copy(update={"polygon": [10.0, 10.0, 50.0, 10.0, 50.0, 300.0,
                                                      10.0, 300.0]}) for line in page.lines]
        return page.model_copy(update={"lines": turned})


class DoubtfulRapid(FakeRapid):
    """What RapidOCR makes of an upside-down page: wide lines read with low confidence."""

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        page = super().recognize(image, options)
        return page.model_copy(update={"lines": [line.model_copy(update={"confidence": 0.7})
                                                 for line in page.lines]})


@pytest.mark.parametrize("rapid", [TurnedRapid, DoubtfulRapid])
def test_auto_reads_a_page_rapidocr_sees_as_not_upright_with_tesseract(
        rapid: type[FakeRapid]) -> None:
    auto = AutoEngine(FakeTesseract(), rapid())
    image = text_page(["x"], size=(400, 100))
    assert auto.recognize(image, RecognizeOptions()).engine == TESSERACT
    # Told not to look for orientation, auto keeps RapidOCR's reading.
    kept = auto.recognize(image, RecognizeOptions(detect_orientation=False))
    assert kept.engine == RAPIDOCR


def test_auto_keeps_rapidocrs_reading_of_an_upright_page() -> None:
    page = AutoEngine(FakeTesseract(), FakeRapid()).recognize(text_page(["x"]),
                                                              RecognizeOptions())
    assert page.engine == RAPIDOCR


def test_a_default_engine_setting_that_names_no_engine_is_refused_at_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCRVAULT_DEFAULT_ENGINE", "paddle")
    with pytest.raises(ValueError, match="default_engine"):
        Settings()
    monkeypatch.setenv("OCRVAULT_DEFAULT_ENGINE", "tesseract")
    assert Settings().default_engine == TESSERACT
