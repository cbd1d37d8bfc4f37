"""One live ocrvault (real uvicorn on loopback, real Tesseract) for the vendor clients,
two tenants on it, and the /v1 answer to compare each vendor's answer with."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ocrvault.api.app import create_app
from ocrvault.audit import AuditAction
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.runtime import Runtime
from tests.databases import TestDatabases
from tests.docgen import encode, mixed_pdf, pdf_of, text_page
from tests.servers import serving

PNG = encode(text_page(["Quarterly report ready", "Signed by Ada"], size=(1200, 260)), "PNG")
PDF = pdf_of([text_page([f"Minutes page {n}"], size=(900, 200)) for n in (1, 2, 3)])
# US Letter (8.5 x 11 in): a born-digital page whose first line starts 1 in from the left
# edge and 1 in below the top (its baseline), then a scan covering the whole page.
LETTER = mixed_pdf([("text", ["Budget approved today"]),
                    ("scan", text_page(["Scanned minutes"], size=(1275, 1650), font_px=40))])


@dataclass
class Live:
    url: str
    runtime: Runtime
    key: str  # tenant A's admin key
    other_key: str  # tenant B's admin key

    def v1_text(self, data: bytes, **params: str) -> str:
        """The text /v1 reads from ``data`` (job, polled to the end)."""
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as http:
            job = http.post("/v1/read", content=data, params=params).json()
            deadline = time.monotonic() + 60
            while (got := http.get(f"/v1/jobs/{job['id']}").json())["status"] in (
                    "queued", "running"):
                assert time.monotonic() < deadline, got
                time.sleep(0.05)
        assert got["status"] == "succeeded", got
        text: str = got["result"]["text"]
        return text

    def audited(self, action: AuditAction, job_id: str | None = None) -> int:
        """How many entries of ``action`` (on ``job_id``, if given) the audit log holds."""
        with httpx.Client(base_url=self.url, timeout=30,
                          headers={"Authorization": f"Bearer {self.key}"}) as http:
            params: dict[str, str | int] = {"action": action.value, "limit": 500}
            if job_id is not None:
                params["target"] = job_id
            return len(http.get("/v1/audit", params=params).json()["entries"])


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory, engine: TesseractEngine,
         package_databases: TestDatabases) -> Iterator[Live]:
    settings = package_databases.settings(tmp_path_factory.mktemp("compat") / "data",
                                          workers=2, reaper_interval_seconds=3600)
    runtime = Runtime.build(settings, engine=engine)
    with serving(create_app(runtime)) as port:
        yield Live(f"http://127.0.0.1:{port}", runtime,
                   runtime.access.bootstrap_tenant("compat-a").secret,
                   runtime.access.bootstrap_tenant("compat-b").secret)
