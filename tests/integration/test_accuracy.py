"""Accuracy per engine and for ``auto``, through the API: the mean character error rate
(and, for receipts, word F1) of each kind of document, against the issue's targets.

The corpus is the shared one plus a rendered two-column page (tests/accuracy.py). The
thresholds are per-kind means, not single files: one receipt can swing on its reading
order, a kind's mean is the regression check. Run ``bench/engines.py`` for the table.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ocrvault.config import Settings
from ocrvault.engines.catalog import AUTO, RAPIDOCR, TESSERACT, EngineCatalog
from ocrvault.engines.rapidocr import RapidOcrEngine
from ocrvault.engines.tesseract import TesseractEngine
from tests.accuracy import (
    RECEIPT_MAX_CER,
    RECEIPT_MIN_WORD_F1,
    TWO_COLUMN,
    Sample,
    cer,
    corpus,
    word_f1,
    words,
)
from tests.conftest import auth, runtime_of, wait_for_job
from tests.databases import ON_POSTGRES
from tests.docgen import encode, text_page

# Minutes of OCR that measure the engines, whatever stores the jobs: the SQLite run has them.
pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="measures the engines, not the store: "
                                "the SQLite run covers it")

# Measured 2026-11 (bench/engines.py; tesseract 5.5, rapidocr 3.10 PP-OCRv6 small at
# this engine's defaults): receipts CER 0.108, word F1 0.714 split on whitespace, 0.770
# with punctuation apart (tesseract); CER 0.032, F1 0.8821 / 0.930 (rapidocr, auto);
# every other kind 0.000. The targets are the (tests/accuracy.py): receipts
# CER <= 0.04 and word F1 >= 0.88 as the issue measured it (words split on whitespace),
# two-column pages <= 0.08, clean text <= 0.01. The punctuation-aware F1 (the spacing
# around symbols that the receipts' transcripts add does not count, misreads do) is held
# to what is measured. Tesseract's receipts keep today's figures with a little headroom.
MAX_MEAN_CER = {
    TESSERACT: {"receipt": 0.12, "text-page": 0.01, "text-line": 0.01, TWO_COLUMN: 0.08},
    RAPIDOCR: {"receipt": RECEIPT_MAX_CER, "text-page": 0.01, "text-line": 0.01,
               TWO_COLUMN: 0.08},
}
MAX_MEAN_CER[AUTO] = MAX_MEAN_CER[RAPIDOCR]
SPACED, PUNCTUATED = "whitespace", "punctuation apart"
MIN_RECEIPT_WORD_F1 = {
    SPACED: {TESSERACT: 0.70, RAPIDOCR: RECEIPT_MIN_WORD_F1, AUTO: RECEIPT_MIN_WORD_F1},
    PUNCTUATED: {TESSERACT: 0.75, RAPIDOCR: 0.92, AUTO: 0.92},
}
# Which engine ``auto`` must have read each kind with (all of them are English).
AUTO_READS = {kind: RAPIDOCR for kind in MAX_MEAN_CER[AUTO]}


@pytest.fixture(scope="module")
def rapidocr() -> Iterator[RapidOcrEngine]:
    engine = RapidOcrEngine()
    yield engine
    engine.close()


@pytest.fixture
def every_engine(make_client: Callable[..., TestClient], settings: Settings,
                 engine: TesseractEngine, rapidocr: RapidOcrEngine) -> TestClient:
    """An app whose catalog holds both engines (shared with the other tests) and auto."""
    catalog = EngineCatalog({TESSERACT: lambda: engine, RAPIDOCR: lambda: rapidocr}, AUTO)
    return make_client(settings, engines=catalog)


def read_all(client: TestClient, key: str, samples: list[Sample], engine: str,
             languages: str = "eng") -> list[dict[str, Any]]:
    jobs = []
    for sample in samples:
        response = client.post("/v1/read", content=sample.data, headers=auth(key),
                               params={"engine": engine, "languages": languages})
        assert response.status_code == 202, (sample.name, response.text)
        jobs.append(response.json()["id"])
    results = []
    for sample, job_id in zip(samples, jobs, strict=True):
        job = wait_for_job(client, job_id, key)
        assert job["status"] == "succeeded", (sample.name, job["error"])
        results.append(job["result"])
    return results


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", [TESSERACT, RAPIDOCR, AUTO])
def test_each_kinds_mean_accuracy_meets_the_engines_target(every_engine: TestClient,
                                                           engine_name: str) -> None:
    client = every_engine
    key = runtime_of(client).access.bootstrap_tenant("acme").secret
    samples = corpus()
    results = read_all(client, key, samples, engine_name)

    rates: dict[str, list[float]] = {}
    f1s: dict[str, list[float]] = {SPACED: [], PUNCTUATED: []}
    failures = []
    print()
    for sample, result in zip(samples, results, strict=True):
        rate = cer(result["text"], sample.truth)
        rates.setdefault(sample.kind, []).append(rate)
        if sample.kind == "receipt":
            f1s[SPACED].append(word_f1(result["text"], sample.truth))
            f1s[PUNCTUATED].append(word_f1(result["text"], sample.truth, words))
        print(f"{engine_name:9} {sample.name:20} {sample.kind:10} CER {rate:6.3f}")
        read_by = {page["engine"] for page in result["pages"]}
        expected = AUTO_READS[sample.kind] if engine_name == AUTO else engine_name
        if read_by != {expected}:
            failures.append(f"{sample.name} read by {read_by}, not {expected}")
    for kind, values in rates.items():
        mean, limit = statistics.fmean(values), MAX_MEAN_CER[engine_name][kind]
        print(f"{engine_name:9} {kind:10} mean CER {mean:.3f} over {len(values)} (max {limit})")
        if mean > limit:
            failures.append(f"{kind} mean CER {mean:.3f} > {limit}")
    for split, values in f1s.items():
        f1, least = statistics.fmean(values), MIN_RECEIPT_WORD_F1[split][engine_name]
        print(f"{engine_name:9} receipt    mean word F1 ({split}) {f1:.4f} (min {least})")
        if f1 < least:
            failures.append(f"receipt word F1 ({split}) {f1:.4f} < {least}")
    assert not failures, failures


ACCENTED = {
    "deu": ["Grüße aus München: Straße, Bäcker", "Öffnungszeiten für Kühe und Löwen"],
    "fra": ["Où est la bibliothèque ? À côté", "Il était une fois un garçon très âgé"],
    "spa": ["¿Dónde está el niño? Mañana sí", "La canción del pingüino en el año"],
}


@pytest.mark.slow
@pytest.mark.parametrize("language", sorted(ACCENTED))
def test_auto_reads_accented_languages_with_tesseract_as_well_as_tesseract(
        every_engine: TestClient, language: str) -> None:
    client = every_engine
    key = runtime_of(client).access.bootstrap_tenant("acme").secret
    lines = ACCENTED[language]
    sample = Sample(language, "text-page", encode(text_page(lines, size=(1700, 400)), "PNG"),
                    "\n".join(lines))
    tesseract, auto = (read_all(client, key, [sample], name, language)[0]
                       for name in (TESSERACT, AUTO))
    assert [page["engine"] for page in auto["pages"]] == [TESSERACT]
    assert cer(auto["text"], sample.truth) <= cer(tesseract["text"], sample.truth) <= 0.02


@pytest.mark.slow
@pytest.mark.parametrize("angle", [90, 180, 270])
def test_auto_reads_a_turned_page_with_tesseract_which_turns_it_back(
        every_engine: TestClient, angle: int) -> None:
    client = every_engine
    key = runtime_of(client).access.bootstrap_tenant("acme").secret
    page = next(s for s in corpus() if s.kind == "text-page")
    with Image.open(io.BytesIO(page.data)) as image:
        turned = encode(image.rotate(angle, expand=True), "PNG")
    result = read_all(client, key, [Sample(page.name, page.kind, turned, page.truth)], AUTO)[0]
    assert [p["engine"] for p in result["pages"]] == [TESSERACT]
    assert cer(result["text"], page.truth) <= MAX_MEAN_CER[TESSERACT]["text-page"]
