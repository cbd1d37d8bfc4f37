"""Pages as the unit of work, measured side by side in one run (issue 18's targets).

    PYTHONPATH=src .venv/bin/python -m bench.pages [--rounds R] [--pages N]

One "scanned" PDF of N pages (the shared corpus's images, repeated, at 150 dpi) is the
page set of every path, so every path reads the same pixels:

- raw: pypdfium2 renders each page (at the scale the service renders it) and tesserocr
  reads it (SetImage, Recognize, GetUTF8Text) on one loaded API per thread, 2 threads;
- engine: the same rendered pages through ocrvault's TesseractEngine alone, 2 threads;
- service 1 / 2: the PDF submitted as one job to a real ``ocrvault serve`` with 1 and 2
  workers (the engine pinned to tesseract), polled every 0.5 s as ocrvault's client
  does; its time is the job's own, from accepted to completed (``created_at``,
  ``completed_at``), so that the poll interval does not round it.

Each round measures every path once, interleaved, and the table shows medians (ratios
are medians of each round's own ratio): this VM's speed drifts, and other work shares
its two cores. CPU seconds per page count every process of a path: the benchmark's own
threads for raw and engine, the server and its children for the service.

Then memory, at 2 workers (and at 1, for the cost of a worker): the peak of the summed
RSS of the server's whole process tree (server, forkserver, decode children; sampled)
while it takes a burst of 20 submissions, reads the shared corpus as one job per page and
then a 50-page PDF. ``--rapidocr`` repeats the memory run with RapidOCR (the ``auto``
engine for English) for its own line.

Last, the first burst after start, on ``--starts`` fresh servers (2 workers): 20
submissions sent at once as soon as the server is ready, then three later, steady-state
bursts. A burst's slowest submission is in effect the time the server takes for all 20,
which varies from burst to burst by a tenth either way; one start's first burst against
the p99 of its own 60 later submissions would miss about one run in three with no
first-burst cost at all. So the row is the median over the starts of each first burst's
slowest submission, against the p99 of every later submission of every start; each
start's figure is printed too. The row under it pairs each first burst with its own
start's later bursts (its slowest submission minus the median of theirs), which cancels
the VM's drift between starts: the first burst's own cost, near zero when it has none.
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import httpx
import psutil
import pypdfium2 as pdfium
import tesserocr
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import ocrvault_server
from ocrvault.config import Settings
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine, find_tessdata
from ocrvault.ingest.inspect import pdf_page_rendering
from ocrvault.ingest.types import Limits

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ocr"
MB = 1024 * 1024
TESSERACT = {"OCRVAULT_DEFAULT_ENGINE": "tesseract"}
STEADY_BURSTS = 3  # later bursts whose submissions make the steady state's p99
POLL_SECONDS = 0.5


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in {".jpg", ".png", ".tif"})


def scanned_pdf(pages: int) -> bytes:
    """The corpus's images, repeated to ``pages``, as a PDF of one image a page."""
    images = [Image.open(path).convert("RGB") for path in corpus_files()]
    sequence = [images[n % len(images)] for n in range(pages)]
    buffer = io.BytesIO()
    sequence[0].save(buffer, format="PDF", save_all=True, append_images=sequence[1:],
                     resolution=150)
    return buffer.getvalue()


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float
    pages: int

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_per_page(self) -> float:
        return self.cpu / self.pages


class Rendered:
    """Renders page k of the PDF as the service does (its scale), one document per thread."""

    def __init__(self, pdf: bytes) -> None:
        self.pdf = pdf
        self.limits = Limits.from_settings(Settings(data_dir=Path(tempfile.gettempdir())))
        self.local = threading.local()

    def page(self, index: int) -> Image.Image:
        if not hasattr(self.local, "doc"):
            self.local.doc = pdfium.PdfDocument(self.pdf)
        doc = self.local.doc
        scale = pdf_page_rendering(doc, index + 1, self.limits).scale
        page = doc[index]
        try:
            image: Image.Image = page.render(scale=scale, rev_byteorder=True).to_pil()
        finally:
            page.close()
        return image


def in_process(count: int, threads: int, read: Callable[[int], object]) -> Run:
    """``read`` of every page on ``threads`` threads, after one untimed page per thread."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(read, range(threads)))
        cpu, start = _own_cpu(), time.perf_counter()
        list(pool.map(read, range(count)))
        return Run(time.perf_counter() - start, _own_cpu() - cpu, count)


def raw(rendered: Rendered, count: int, threads: int) -> Run:
    local = threading.local()
    tessdata = str(find_tessdata(None))

    def read(index: int) -> str:
        if not hasattr(local, "api"):
            local.api = tesserocr.PyTessBaseAPI(path=tessdata, lang="eng")
        local.api.SetImage(rendered.page(index))
        local.api.Recognize()
        text: str = local.api.GetUTF8Text()
        return text

    return in_process(count, threads, read)


def engine_only(engine: TesseractEngine, rendered: Rendered, count: int, threads: int) -> Run:
    return in_process(count, threads,
                      lambda index: engine.recognize(rendered.page(index), RecognizeOptions()))


def tree(pid: int) -> list[psutil.Process]:
    server = psutil.Process(pid)
    return [server, *server.children(recursive=True)]


def tree_cpu(pid: int) -> float:
    total = 0.0
    for process in tree(pid):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def tree_rss(pid: int) -> float:
    total = 0
    for process in tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / MB


@contextmanager
def rss_peak(pid: int, every: float = 0.05) -> Iterator[list[float]]:
    """Samples the tree's summed RSS until the block ends; yields [peak] (filled at exit)."""
    peak = [tree_rss(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            peak[0] = max(peak[0], tree_rss(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], tree_rss(pid))


@dataclass
class Service:
    client: httpx.Client
    pid: int

    def submit(self, data: bytes) -> str:
        response = self.client.post("/v1/read", content=data)
        response.raise_for_status()
        job_id: str = response.json()["id"]
        return job_id

    def wait(self, ids: list[str]) -> list[dict[str, Any]]:
        """The jobs once finished, polled as ocrvault's own client first polls (every
        0.5 s): each poll is an authenticated request that the server's tree spends CPU
        on, and a poller ten times as eager measured the poller in the service's CPU."""
        finished = []
        for job_id in ids:
            while (job := self.client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
                    "succeeded", "failed"):
                time.sleep(POLL_SECONDS)
            if job["status"] == "failed":
                raise RuntimeError(f"job {job_id} failed: {job['error']}")
            finished.append(job)
        return finished

    def read(self, data: bytes, pages: int) -> Run:
        """One job of ``data``: its time from the job's own record (accepted to completed,
        so that the poll interval does not round it), the tree's CPU meanwhile."""
        cpu = tree_cpu(self.pid)
        [job] = self.wait([self.submit(data)])
        seconds = (datetime.fromisoformat(job["completed_at"])
                   - datetime.fromisoformat(job["created_at"])).total_seconds()
        return Run(seconds, tree_cpu(self.pid) - cpu, pages)


@contextmanager
def service(stack: ExitStack, data_dir: Path, workers: int, **env: str) -> Iterator[Service]:
    url, key, pid = stack.enter_context(ocrvault_server(data_dir, workers, **env))
    client = stack.enter_context(httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600))
    yield Service(client, pid)


def rounds(pdf: bytes, pages: int, count: int, data_dir: Path) -> list[dict[str, Run]]:
    measured = []
    rendered = Rendered(pdf)
    with ExitStack() as stack:
        engine = TesseractEngine()
        stack.callback(engine.close)
        servers = {w: stack.enter_context(service(stack, data_dir / f"w{w}", w, **TESSERACT))
                   for w in (1, 2)}
        for server in servers.values():
            server.read(scanned_pdf(2), 2)  # load every worker's engine, untimed
        for number in range(1, count + 1):
            runs = {"raw 2": raw(rendered, pages, 2),
                    "engine 2": engine_only(engine, rendered, pages, 2),
                    "service 1": servers[1].read(pdf, pages),
                    "service 2": servers[2].read(pdf, pages)}
            print(f"round {number}/{count}: " + ", ".join(
                f"{name} {run.seconds:.1f} s" for name, run in runs.items()), flush=True)
            measured.append(runs)
    return measured


@dataclass
class Memory:
    peak_mb: float
    idle_mb: float


def memory(data_dir: Path, pdf50: bytes, workers: int = 2, **env: str) -> Memory:
    """The tree's peak while it takes a burst, the corpus (a job a page), a 50-page PDF."""
    corpus = [path.read_bytes() for path in corpus_files()]
    with ExitStack() as stack:
        server = stack.enter_context(service(stack, data_dir, workers, **env))
        idle = tree_rss(server.pid)
        with rss_peak(server.pid) as peak:
            server.wait(submit_burst(server, burst_of(corpus))[1])
            server.wait([server.submit(page) for page in corpus])
            server.wait([server.submit(pdf50)])
        return Memory(peak[0], idle)


@dataclass
class FirstBursts:
    slowest: list[float]  # each start's first burst: its slowest submission, s
    steady_p99: float  # of every later submission of every start
    # Each start's first burst's slowest submission minus the median of its later bursts'
    # slowest: the first burst's own cost, paired within the start so that the VM's
    # drift between starts cancels out.
    excess: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.slowest)


def first_bursts(data_dir: Path, starts: int, **env: str) -> FirstBursts:
    """On ``starts`` fresh servers at 2 workers: the first burst, then steady bursts."""
    burst = burst_of([path.read_bytes() for path in corpus_files()])
    slowest: list[float] = []
    steady: list[float] = []
    excess: list[float] = []
    for start in range(starts):
        with ExitStack() as stack:
            server = stack.enter_context(service(stack, data_dir / str(start), 2, **env))
            maxima = []
            for number in range(1 + STEADY_BURSTS):
                latencies, ids = submit_burst(server, burst)
                server.wait(ids)
                maxima.append(max(latencies))
                if number:
                    steady += latencies
        slowest.append(maxima[0])
        excess.append(maxima[0] - statistics.median(maxima[1:]))
        print(f"start {start + 1}/{starts}: first burst's slowest submit {maxima[0]:.3f} s, "
              f"later bursts' {', '.join(f'{m:.3f}' for m in maxima[1:])}", flush=True)
    return FirstBursts(slowest, statistics.quantiles(steady, n=100, method="inclusive")[98],
                       excess)


def burst_of(corpus: list[bytes]) -> list[bytes]:
    return (corpus * 2)[:20]


def submit_burst(server: Service, pages: list[bytes]) -> tuple[list[float], list[str]]:
    """Every page submitted at once (one thread each); each submission's latency. Each
    burst opens its connections anew, as new clients do, so that a later burst does not
    gain from connections the first one left open."""
    with httpx.Client(base_url=server.client.base_url, headers=server.client.headers,
                      timeout=600) as client:
        fresh = Service(client, server.pid)

        def timed(page: bytes) -> tuple[float, str]:
            start = time.perf_counter()
            job_id = fresh.submit(page)
            return time.perf_counter() - start, job_id

        with ThreadPoolExecutor(len(pages)) as pool:
            results = list(pool.map(timed, pages))
    return [latency for latency, _ in results], [job_id for _, job_id in results]


def report(measured: list[dict[str, Run]], two: Memory, one: Memory, rapid: Memory | None,
           bursts: FirstBursts, pages: int) -> None:
    def median(name: str, of: Callable[[Run], float]) -> float:
        return statistics.median(of(runs[name]) for runs in measured)

    def ratio(over: Callable[[dict[str, Run]], float]) -> float:
        return statistics.median(over(runs) for runs in measured)

    def cores(run: Run) -> float:
        return run.cpu / run.seconds

    speedup = ratio(lambda r: r["service 1"].seconds / r["service 2"].seconds)
    vs_raw = ratio(lambda r: r["service 2"].pages_per_second / r["raw 2"].pages_per_second)
    cpu_vs_engine = ratio(lambda r: r["service 2"].cpu_per_page / r["engine 2"].cpu_per_page)
    rows = [
        (f"{pages}-page PDF, 1 worker, s", f"{median('service 1', lambda r: r.seconds):.2f}",
         ""),
        (f"{pages}-page PDF, 2 workers, s", f"{median('service 2', lambda r: r.seconds):.2f}",
         ""),
        ("speed-up 2 vs 1 worker", f"{speedup:.2f}x", ">= 1.8x"),
        # CPU seconds per wall second: what the machine gave each path (others share it).
        ("cores used: service 1 / 2", f"{median('service 1', cores):.2f} / "
         f"{median('service 2', cores):.2f}", ""),
        ("cores used: raw tesserocr 2", f"{median('raw 2', cores):.2f}", ""),
        ("pages/s at 2: service", f"{median('service 2', lambda r: r.pages_per_second):.2f}",
         ""),
        ("pages/s at 2: raw tesserocr", f"{median('raw 2', lambda r: r.pages_per_second):.2f}",
         ""),
        ("service / raw pages/s", f"{vs_raw:.2f}x", ">= 0.95x"),
        ("CPU s/page: service (tree)", f"{median('service 2', lambda r: r.cpu_per_page):.3f}",
         ""),
        ("CPU s/page: engine alone", f"{median('engine 2', lambda r: r.cpu_per_page):.3f}", ""),
        ("CPU s/page: raw tesserocr", f"{median('raw 2', lambda r: r.cpu_per_page):.3f}", ""),
        ("service CPU / engine CPU", f"{cpu_vs_engine:.2f}x", "<= 1.10x"),
        ("peak RSS, tree, 2 workers, MB", f"{two.peak_mb:.0f}", "<= 400"),
        ("peak RSS, tree, 1 worker, MB", f"{one.peak_mb:.0f}", ""),
        ("RSS idle after start, 2 workers, MB", f"{two.idle_mb:.0f}", ""),
        (f"first burst: slowest submit, s (median of {len(bursts.slowest)} starts)",
         f"{bursts.median:.3f}", f"<= p99 {bursts.steady_p99:.3f} (steady)"),
        ("first burst above its start's later ones, ms (median)",
         f"{statistics.median(bursts.excess) * 1000:+.0f}", ""),
    ]
    if rapid is not None:
        rows.append(("peak RSS, tree, RapidOCR, MB", f"{rapid.peak_mb:.0f}", "(noted)"))
    print(f"\nmedians of {len(measured)} rounds, {os.cpu_count()} cores (shared)")
    width = max(len(name) for name, _, _ in rows)
    print(f"{'':{width}}  {'measured':>11}  target")
    for name, value, target in rows:
        print(f"{name:{width}}  {value:>11}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (odd: a median)")
    parser.add_argument("--pages", type=int, default=20, help="pages of the scanned PDF")
    parser.add_argument("--rapidocr", action="store_true", help="also RapidOCR's memory")
    parser.add_argument("--starts", type=int, default=9,
                        help="fresh servers whose first burst is measured (odd: a median)")
    args = parser.parse_args()
    pdf = scanned_pdf(args.pages)
    print(f"{args.pages}-page PDF ({len(pdf) / 1e6:.1f} MB) of {len(corpus_files())} corpus "
          f"images, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        measured = rounds(pdf, args.pages, args.rounds, Path(tmp))
        pdf50 = scanned_pdf(50)
        two = memory(Path(tmp) / "mem", pdf50, 2, **TESSERACT)
        one = memory(Path(tmp) / "mem1", pdf50, 1, **TESSERACT)
        rapid = (memory(Path(tmp) / "rapid", pdf50, 2, OCRVAULT_DEFAULT_ENGINE="rapidocr")
                 if args.rapidocr else None)
        bursts = first_bursts(Path(tmp) / "bursts", args.starts, **TESSERACT)
        report(measured, two, one, rapid, bursts, args.pages)


if __name__ == "__main__":
    main()
