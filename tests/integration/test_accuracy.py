"""Accuracy on the shared corpus, through the API: character error rate per file.

Thresholds are per kind of document, set from measured figures with some headroom
(see the table this test prints); a drop below them is a regression.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rapidfuzz.distance import Levenshtein

from tests.conftest import CORPUS, auth, wait_for_job

# Measured 2026-11 (tesseract 5.5.4, Debian tessdata): receipts 0.04-0.26 (mean 0.11),
# text-page 0.00, text-line 0.00. Per-file limits are loose (receipt reading order
# swings single files); the per-kind mean is the tighter regression check.
MAX_CER = {"receipt": 0.30, "text-page": 0.05, "text-line": 0.10}
MAX_MEAN_CER = {"receipt": 0.15, "text-page": 0.05, "text-line": 0.10}


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def cer(predicted: str, truth: str) -> float:
    truth = normalise(truth)
    return Levenshtein.distance(normalise(predicted), truth) / max(1, len(truth))


def corpus() -> list[tuple[Path, str]]:
    manifest = (CORPUS / "ocr" / "manifest.tsv").read_text().splitlines()[1:]
    rows = [line.split("\t") for line in manifest if line.strip()]
    return [(CORPUS / "ocr" / row[0], row[3]) for row in rows]


@pytest.mark.slow
def test_character_error_rate_per_kind_is_within_threshold(
    client: TestClient, admin_key: str
) -> None:
    jobs = {}
    for path, kind in corpus():
        response = client.post("/v1/read", content=path.read_bytes(), headers=auth(admin_key))
        assert response.status_code == 202, (path.name, response.text)
        jobs[path] = (kind, response.json()["id"])

    rates: dict[str, list[float]] = {kind: [] for kind in MAX_CER}
    failures = []
    print()
    for path, (kind, job_id) in jobs.items():
        job = wait_for_job(client, job_id, admin_key)
        assert job["status"] == "succeeded", (path.name, job["error"])
        rate = cer(job["result"]["text"], path.with_suffix(".gt.txt").read_text("utf-8"))
        rates[kind].append(rate)
        print(f"{path.name:24} {kind:10} CER {rate:6.3f}  (max {MAX_CER[kind]:.2f})")
        if rate > MAX_CER[kind]:
            failures.append(path.name)
    for kind, values in rates.items():
        mean = sum(values) / len(values)
        print(f"{kind:10} mean CER {mean:.3f} over {len(values)} files "
              f"(max {MAX_MEAN_CER[kind]:.2f})")
        if mean > MAX_MEAN_CER[kind]:
            failures.append(f"mean of {kind}")
    assert not failures, f"CER above threshold: {failures}"
