"""Pages per second through the whole API path against the raw engine, in one run.

    .venv/bin/python bench/throughput.py [--repeat N]

Raw: Pillow decode + tesserocr SetImage/Recognize/GetUTF8Text on one loaded API per
thread, the fastest honest use of the same engine. Engine: ocrvault's TesseractEngine
alone (it adds orientation and skew handling, upscaling of small text and word
polygons), so the table separates what the engine does more from what the service
path (HTTP, auth, audit, sandboxed decode, sealing, storage) costs. Service: a real `ocrvault serve`
process; submit every page, poll until done, fetch each result. Both on the corpus
pages, with 1 and 2 workers (threads), printed side by side as ratios. Then the peak
RSS of the server and of its decode sandbox children on a 50-page PDF.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import httpx
import tesserocr
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import ocrvault_server, peak_rss_mb
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine, find_tessdata

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ocr"


def corpus_pages(repeat: int) -> list[bytes]:
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in {".jpg", ".png", ".tif"})
    return [p.read_bytes() for p in files] * repeat


def raw_engine(pages: list[bytes], threads: int) -> float:
    """Pages per second of plain tesserocr with one loaded API per thread."""
    local = threading.local()
    tessdata = str(find_tessdata(None))

    def ocr(data: bytes) -> str:
        if not hasattr(local, "api"):
            local.api = tesserocr.PyTessBaseAPI(path=tessdata, lang="eng")
        image = Image.open(io.BytesIO(data))
        image.load()
        local.api.SetImage(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
        local.api.Recognize()
        text: str = local.api.GetUTF8Text()
        return text

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(ocr, pages[:threads]))  # load the APIs untimed, as the service does
        start = time.perf_counter()
        list(pool.map(ocr, pages))
        return len(pages) / (time.perf_counter() - start)


def service(pages: list[bytes], workers: int, data_dir: Path) -> float:
    with ocrvault_server(data_dir, workers) as (url, key, _pid), \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=300) as client:
        warm = client.post("/v1/read", content=pages[0]).json()["id"]
        _wait(client, [warm])
        start = time.perf_counter()
        ids = [client.post("/v1/read", content=page).json()["id"] for page in pages]
        _wait(client, ids)
        for job_id in ids:
            client.get(f"/v1/jobs/{job_id}").raise_for_status()
        return len(pages) / (time.perf_counter() - start)


def _wait(client: httpx.Client, ids: list[str]) -> None:
    """Poll as a client would: the oldest unfinished job, ten times a second.

    Polling every job every few milliseconds would measure the poller: each poll is an
    authenticated request that competes with OCR for the same two cores.
    """
    pending = list(ids)
    while pending:
        status = client.get(f"/v1/jobs/{pending[0]}").json()["status"]
        if status == "failed":
            raise RuntimeError(f"job {pending[0]} failed")
        if status == "succeeded":
            pending.pop(0)
            continue
        time.sleep(0.1)


def engine_only(pages: list[bytes], threads: int) -> float:
    """Pages per second of ocrvault's engine alone (orientation, deskew, word boxes)."""
    engine = TesseractEngine()
    images = [Image.open(io.BytesIO(data)) for data in pages]
    for image in images:
        image.load()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda im: engine.recognize(im, RecognizeOptions()), images[:threads]))
        start = time.perf_counter()
        list(pool.map(lambda im: engine.recognize(im, RecognizeOptions()), images))
        elapsed = time.perf_counter() - start
    engine.close()
    return len(pages) / elapsed


def fifty_page_pdf() -> bytes:
    images = [Image.open(CORPUS / name).convert("RGB") for name in
              ("sroie_082.jpg", "sroie_122.jpg", "tess_phototest.tif")]
    buffer = io.BytesIO()
    pages = [images[n % len(images)] for n in range(50)]
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    return buffer.getvalue()


def peak_memory(data_dir: Path) -> tuple[float, float, float]:
    pdf = fifty_page_pdf()
    with ocrvault_server(data_dir, 1) as (url, key, pid), \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                         timeout=600) as client:
        idle, _ = peak_rss_mb(pid)
        job_id = client.post("/v1/read", content=pdf).json()["id"]
        start = time.perf_counter()
        _wait(client, [job_id])
        elapsed = time.perf_counter() - start
        server, sandbox = peak_rss_mb(pid)
        print(f"50-page PDF ({len(pdf) / 1e6:.1f} MB): {50 / elapsed:.2f} pages/s; "
              f"server idle {idle:.0f} MB")
        return server, sandbox, idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="times to repeat the corpus")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    pages = corpus_pages(args.repeat)
    print(f"{len(pages)} pages from {CORPUS}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        raw1, raw2 = raw_engine(pages, 1), raw_engine(pages, 2)
        eng1, eng2 = engine_only(pages, 1), engine_only(pages, 2)
        svc1 = service(pages, 1, Path(tmp) / "w1")
        svc2 = service(pages, 2, Path(tmp) / "w2")
        print(f"{'pages/s':10}{'raw':>8}{'engine':>8}{'service':>9}"
              f"{'engine/raw':>12}{'service/engine':>16}{'service/raw':>13}")
        for label, raw, eng, svc in (("1 worker", raw1, eng1, svc1),
                                     ("2 workers", raw2, eng2, svc2)):
            print(f"{label:10}{raw:>8.2f}{eng:>8.2f}{svc:>9.2f}"
                  f"{eng / raw:>12.2f}{svc / eng:>16.2f}{svc / raw:>13.2f}")
        print(f"scaling 2 vs 1 worker: raw {raw2 / raw1:.2f}x, engine {eng2 / eng1:.2f}x, "
              f"service {svc2 / svc1:.2f}x")
        if not args.skip_memory:
            server, sandbox, idle = peak_memory(Path(tmp) / "mem")
            print(f"peak RSS on a 50-page PDF: server {server:.0f} MB (idle {idle:.0f} MB), "
                  f"largest decode sandbox child {sandbox:.0f} MB")


if __name__ == "__main__":
    main()
