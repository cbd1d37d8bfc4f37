"""Pages per second through the whole API path against the raw engine, in one run.

    .venv/bin/python bench/throughput.py [--repeat N] [--rounds R]

Raw: Pillow decode + tesserocr SetImage/Recognize/GetUTF8Text on one loaded API per
thread, the page handed over as decoded (the issue's "raw tesserocr call"); "raw grey"
is the same call given the page in grey, which is what ocrvault's engine hands
Tesseract. Engine: ocrvault's TesseractEngine alone (grey, orientation and skew
handling, upscaling of small text, word polygons). Service: a real `ocrvault serve`
process; submit every page, poll each job until it is done, the answer to the last
poll being the fetched result (as a client reads it). 1 and 2 workers (threads).

This VM's speed drifts by 15-20% from minute to minute, so every path is measured
once per round, the rounds interleaved, and the table shows medians: ratios are the
median of each round's own ratio. CPU seconds per page (the service's counting its
sandbox children, not the benchmark's client) are steadier than wall time and show
where the time goes. Then the peak RSS of the server and of its decode sandbox
children on a 50-page PDF.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import httpx
import psutil
import tesserocr
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import ocrvault_server, peak_rss_mb
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine, find_tessdata

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ocr"
WORKERS = (1, 2)
PATHS = ("raw", "raw grey", "engine", "service")


@dataclass(frozen=True)
class Run:
    pages_per_second: float
    cpu_per_page: float


def corpus_pages(repeat: int) -> list[bytes]:
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in {".jpg", ".png", ".tif"})
    return [p.read_bytes() for p in files] * repeat


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _in_process(pages: list[bytes], threads: int, ocr: Callable[[bytes], object]) -> Run:
    """``ocr`` over ``pages`` on ``threads`` threads, after one untimed page per thread
    (loading the engine, as the service does before its first job)."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(ocr, pages[:threads]))
        cpu, start = _own_cpu(), time.perf_counter()
        list(pool.map(ocr, pages))
        elapsed, cpu = time.perf_counter() - start, _own_cpu() - cpu
    return Run(len(pages) / elapsed, cpu / len(pages))


def raw_engine(pages: list[bytes], threads: int, *, grey: bool = False) -> Run:
    """Plain tesserocr with one loaded API per thread."""
    local = threading.local()
    tessdata = str(find_tessdata(None))

    def ocr(data: bytes) -> str:
        if not hasattr(local, "api"):
            local.api = tesserocr.PyTessBaseAPI(path=tessdata, lang="eng")
        image: Image.Image = Image.open(io.BytesIO(data))
        image.load()
        if grey:
            image = image.convert("L")
        elif image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        local.api.SetImage(image)
        local.api.Recognize()
        text: str = local.api.GetUTF8Text()
        return text

    return _in_process(pages, threads, ocr)


def engine_only(engine: TesseractEngine, pages: list[bytes], threads: int) -> Run:
    """ocrvault's engine alone: the page decoded in-process, then ``recognize``."""
    def ocr(data: bytes) -> object:
        image = Image.open(io.BytesIO(data))
        image.load()
        return engine.recognize(image, RecognizeOptions())

    return _in_process(pages, threads, ocr)


@dataclass
class Service:
    client: httpx.Client
    pid: int

    def run(self, pages: list[bytes]) -> Run:
        cpu, start = self._cpu(), time.perf_counter()
        ids = [self.client.post("/v1/read", content=page).json()["id"] for page in pages]
        results = _wait(self.client, ids)
        elapsed, cpu = time.perf_counter() - start, self._cpu() - cpu
        assert all(result["pages"] for result in results), "a page came back empty"
        return Run(len(pages) / elapsed, cpu / len(pages))

    def _cpu(self) -> float:
        """CPU seconds of the server and every child it has (decode sandbox children)."""
        server = psutil.Process(self.pid)
        total = 0.0
        for process in (server, *server.children(recursive=True)):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:  # a sandbox child that ended since
                continue
            total += times.user + times.system
        return total


def _wait(client: httpx.Client, ids: list[str]) -> list[dict[str, object]]:
    """Poll as a client would: the oldest unfinished job, ten times a second; the answer
    that says "succeeded" carries the result, so it is the fetch too.

    Polling every job every few milliseconds would measure the poller: each poll is an
    authenticated request that competes with OCR for the same two cores.
    """
    results = []
    for job_id in ids:
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
                "succeeded", "failed"):
            time.sleep(0.1)
        if job["status"] == "failed":
            raise RuntimeError(f"job {job_id} failed: {job['error']}")
        results.append(job["result"])
    return results


def services(stack: ExitStack, pages: list[bytes], data_dir: Path) -> dict[int, Service]:
    """One warmed-up server per worker count, kept for every round (idle ones cost nothing)."""
    running = {}
    for workers in WORKERS:
        # Tesseract, the engine the raw columns call: this measures what the service adds
        # around an engine; bench/engines.py compares the engines (and auto) themselves.
        url, key, pid = stack.enter_context(ocrvault_server(
            data_dir / f"w{workers}", workers, OCRVAULT_DEFAULT_ENGINE="tesseract"))
        client = stack.enter_context(httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300))
        running[workers] = Service(client, pid)
        running[workers].run(pages[:workers])  # load each worker's engine, untimed
    return running


def measure_rounds(pages: list[bytes], rounds: int, data_dir: Path) -> list[dict[str, Run]]:
    """Every path at each worker count once per round, keyed "<path> <workers>"."""
    measured: list[dict[str, Run]] = []
    with ExitStack() as stack:
        engine = TesseractEngine()
        stack.callback(engine.close)
        running = services(stack, pages, data_dir)
        for number in range(1, rounds + 1):
            runs = {}
            for workers in WORKERS:
                runs[f"raw {workers}"] = raw_engine(pages, workers)
                runs[f"raw grey {workers}"] = raw_engine(pages, workers, grey=True)
                runs[f"engine {workers}"] = engine_only(engine, pages, workers)
                runs[f"service {workers}"] = running[workers].run(pages)
            print(f"round {number}/{rounds}: " + ", ".join(
                f"{name} {run.pages_per_second:.2f}" for name, run in runs.items()), flush=True)
            measured.append(runs)
    return measured


def report(measured: list[dict[str, Run]]) -> None:
    def rates(path: str, workers: int) -> list[float]:
        return [runs[f"{path} {workers}"].pages_per_second for runs in measured]

    def ratio(over: list[float], under: list[float]) -> float:
        """The median of each round's own ratio."""
        return statistics.median(a / b for a, b in zip(over, under, strict=True))

    print(f"\nmedians of {len(measured)} rounds, pages/s")
    print(f"{'':10}" + "".join(f"{path:>10}" for path in PATHS)
          + "".join(f"{'service/' + path:>17}" for path in PATHS[:-1]))
    for w in WORKERS:
        service = rates("service", w)
        print(f"{f'{w} worker' + 's' * (w > 1):10}"
              + "".join(f"{statistics.median(rates(path, w)):>10.2f}" for path in PATHS)
              + "".join(f"{ratio(service, rates(path, w)):>17.2f}" for path in PATHS[:-1]))
    print("scaling 2 vs 1 worker: " + ", ".join(
        f"{path} {ratio(rates(path, 2), rates(path, 1)):.2f}x" for path in PATHS))
    print("CPU s/page at 2 workers: " + ", ".join(
        f"{path} {statistics.median(runs[f'{path} 2'].cpu_per_page for runs in measured):.3f}"
        for path in PATHS))


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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (odd: a median)")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    pages = corpus_pages(args.repeat)
    print(f"{len(pages)} pages from {CORPUS}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        report(measure_rounds(pages, args.rounds, Path(tmp)))
        if not args.skip_memory:
            server, sandbox, idle = peak_memory(Path(tmp) / "mem")
            print(f"peak RSS on a 50-page PDF: server {server:.0f} MB (idle {idle:.0f} MB), "
                  f"largest decode sandbox child {sandbox:.0f} MB")


if __name__ == "__main__":
    main()
