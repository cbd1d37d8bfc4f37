"""Cluster figures against the embedded default, in one run (issue 13).

    python bench/cluster.py [--rounds 3] [--pages 8] [--clients 50] [--submits 4]

Needs the machine's PostgreSQL and Redis (scripts/cluster.py starts the rest: moto S3, a
scheduler, 2 API nodes and the workers, each its own process). Tesseract is pinned
(OCRVAULT_DEFAULT_ENGINE=tesseract) everywhere, one OCR thread per worker process.

1. Throughput: the same corpus pages through the embedded default (``ocrvault serve``,
   SQLite, local queue, blobs on disk) with 1 and 2 worker threads, and through the
   cluster (submitted round-robin to both API nodes, over Celery on Redis, blobs in S3,
   state in PostgreSQL) with 1 and 2 worker processes. Each round measures all four,
   interleaved, on warm nodes; the table shows medians of rounds and the median of each
   round's own cluster/embedded ratio of the cost per page: wall seconds per page, and CPU
   seconds per page of ocrvault's own processes (the cluster's: API nodes, workers, the
   scheduler, their sandbox children and the moto server; not PostgreSQL's or Redis's,
   shared services this benchmark cannot tell apart from other users of the machine).
   A step between them shows where the extra cost goes: one process (role all, the local
   queue) on PostgreSQL and S3 (a schema, a bucket and a moto server of its own): the
   backends without the queue and the split into roles.
2. Recovery: a worker is killed with SIGKILL inside a 6-page job; the time from the kill
   to the job's completion by the other worker (the lease is 10 s, reclaimed every 5 s,
   so the target is at most lease + 10 s). A new worker replaces the killed one.
3. Submit latency: 50 clients at once, each submitting ``--submits`` one-page jobs in a
   row, spread over the 2 API nodes; p50 and p99 of POST /v1/read. The workers are
   stopped first: on this machine they would share the API nodes' two cores, where in a
   deployment they run elsewhere.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import ocrvault_server
from bench.throughput import _wait, corpus_pages
from ocrvault.store.db import Database
from scripts.cluster import Cluster, Node
from tests.docgen import encode, pdf_of, text_page
from tests.jobrows import job_row

TESSERACT = {"OCRVAULT_DEFAULT_ENGINE": "tesseract"}
WORKERS = (1, 2)
LEASE_SECONDS = 10.0
RECLAIM_SECONDS = 5.0
WAIT = 300.0  # a bound on waiting for a job, never a pause


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of ``pids`` and every child they have (decode sandbox children)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in family:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:  # a sandbox child that ended since
                continue
            total += times.user + times.system
    return total


@dataclass(frozen=True)
class Measured:
    pages_per_second: float
    cpu_per_page: float
    parts: dict[str, float]  # CPU seconds per page by kind of process


@dataclass
class Target:
    """Where pages go: API clients to submit to in turn, and the processes whose CPU
    the pages cost, by kind (api, worker, scheduler, s3; "server" for the embedded one)."""

    clients: list[httpx.Client]
    pids: Callable[[], dict[str, list[int]]]

    def cpu(self, parts: dict[str, list[int]]) -> dict[str, float]:
        return {part: cpu_seconds(pids) for part, pids in parts.items()}

    def run(self, pages: list[bytes]) -> Measured:
        parts = self.pids()
        cpu, start = self.cpu(parts), time.perf_counter()
        ids = [self.clients[n % len(self.clients)].post("/v1/read", content=page).json()["id"]
               for n, page in enumerate(pages)]
        results = _wait(self.clients[-1], ids)  # read through the last: any node answers
        elapsed = time.perf_counter() - start
        spent = {part: (used - cpu[part]) / len(pages) for part, used in self.cpu(parts).items()}
        assert all(result["pages"] for result in results), "a page came back empty"
        return Measured(len(pages) / elapsed, sum(spent.values()), spent)

    def idle(self, seconds: float) -> float:
        """CPU seconds a second that these processes use with nothing to do."""
        parts = self.pids()
        before = sum(self.cpu(parts).values())
        time.sleep(seconds)  # the measurement itself: idle time
        return (sum(self.cpu(parts).values()) - before) / seconds


def client(stack: ExitStack, url: str, key: str) -> httpx.Client:
    return stack.enter_context(httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300))


def cluster_target(stack: ExitStack, cluster: Cluster) -> Target:
    clients = [client(stack, url, cluster.admin_key) for url in cluster.api_urls]

    def parts() -> dict[str, list[int]]:
        kinds: dict[str, list[int]] = {"s3": [cluster.s3_pid]}
        for node in cluster.nodes:
            kinds.setdefault(node.role, []).append(node.pid)
        return kinds

    return Target(clients, parts)


def embedded_targets(stack: ExitStack, data_dir: Path) -> dict[str, Target]:
    """One warm embedded server per worker count, kept for every round."""
    targets = {}
    for workers in WORKERS:
        url, key, pid = stack.enter_context(ocrvault_server(
            data_dir / f"embedded-{workers}", workers, **TESSERACT))
        targets[f"embedded {workers}"] = Target([client(stack, url, key)],
                                                lambda pid=pid: {"server": [pid]})
    return targets


# Where the cluster's extra cost per page goes: one process (role all, local queue, one
# worker thread) on PostgreSQL and S3: the backends without the queue and the role split.
STEP = "all on PostgreSQL + S3"


def step_target(stack: ExitStack, root: Path) -> Target:
    """The step's node, in a schema and a bucket of its own: a local queue's node takes
    itself for its database's only worker (docs/queue.md), so it must not share the
    cluster's."""
    backends = stack.enter_context(Cluster(root, api_nodes=0, workers=0, env=TESSERACT))
    node = backends.start_api("all", OCRVAULT_QUEUE="local", OCRVAULT_WORKERS="1")
    assert node.url is not None
    return Target([client(stack, node.url, backends.admin_key)],
                  lambda: {"server": [node.pid], "s3": [backends.s3_pid]})


@contextmanager
def second_worker(cluster: Cluster, warm: Target, pages: list[bytes]) -> Iterator[Node]:
    """A second worker process for the block, its engine loaded by untimed pages."""
    node = cluster.start_worker()
    warm.run(pages[:4])
    try:
        yield node
    finally:
        cluster.stop_node(node)


IDLE_SECONDS = 5.0


def throughput(cluster: Cluster, pages: list[bytes], rounds: int,
               data_dir: Path) -> tuple[list[dict[str, Measured]], dict[str, float]]:
    """Each round's runs by name, and CPU seconds a second used idle (1 worker each)."""
    measured = []
    with ExitStack() as stack:
        embedded = embedded_targets(stack, data_dir)
        step = step_target(stack, data_dir / "step")
        clustered = cluster_target(stack, cluster)
        for target in (*embedded.values(), step, clustered):
            target.run(pages[:2])  # load the engines, untimed
        idle = {"embedded": embedded["embedded 1"].idle(IDLE_SECONDS),
                "cluster": clustered.idle(IDLE_SECONDS)}
        for number in range(1, rounds + 1):
            runs = {"embedded 1": embedded["embedded 1"].run(pages),
                    STEP: step.run(pages),
                    "cluster 1": clustered.run(pages)}
            with second_worker(cluster, clustered, pages):
                runs["cluster 2"] = clustered.run(pages)
            runs["embedded 2"] = embedded["embedded 2"].run(pages)
            print(f"round {number}/{rounds}: " + ", ".join(
                f"{name} {run.pages_per_second:.2f} p/s {run.cpu_per_page:.2f} cpu-s/p"
                for name, run in runs.items()), flush=True)
            measured.append(runs)
    return measured, idle


def recovery(cluster: Cluster, rounds: int) -> list[float]:
    """Seconds from a worker's SIGKILL inside a job to that job's completion elsewhere."""
    document = pdf_of([text_page([f"Page {n} of the recovery test"], size=(900, 160),
                                 font_px=40) for n in range(1, 7)])
    seconds = []
    db = Database(cluster.database_url)
    try:
        with httpx.Client(base_url=cluster.api_urls[0], timeout=60, headers={
                "Authorization": f"Bearer {cluster.admin_key}"}) as api:
            for number in range(1, rounds + 1):
                job_id = api.post("/v1/read", content=document).json()["id"]
                victim = worker_inside(cluster, db, job_id)
                cluster.kill(victim)
                killed_at = datetime.now(UTC)
                row = finished(db, job_id)
                assert row["status"] == "succeeded" and row["attempts"] == 2, row
                seconds.append((row["completed_at"] - killed_at).total_seconds())
                print(f"recovery {number}/{rounds}: {seconds[-1]:.1f} s", flush=True)
                cluster.start_worker()
    finally:
        db.dispose()
    return seconds


def worker_inside(cluster: Cluster, db: Database, job_id: str) -> Node:
    """The worker holding ``job_id`` once it has a page done."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        row = job_row(db, job_id)
        if row["status"] == "running" and row["pages_done"] and row["lease_owner"]:
            node = cluster.node_by_pid(int(row["lease_owner"].split(":")[1]))
            if node is not None:
                return node
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} was not seen running")


def finished(db: Database, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + WAIT
    while (row := job_row(db, job_id))["status"] not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not finish")
        time.sleep(0.02)
    return row


def submit_latency(cluster: Cluster, clients: int, submits: int) -> list[float]:
    """Seconds per POST /v1/read, ``clients`` at once, each ``submits`` in a row."""
    page = encode(text_page(["one page to submit"], size=(900, 160), font_px=40), "PNG")
    urls = cluster.api_urls
    start = threading.Barrier(clients)
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def one_client(number: int) -> None:
        with httpx.Client(base_url=urls[number % len(urls)], timeout=120, headers={
                "Authorization": f"Bearer {cluster.admin_key}"}) as api:
            start.wait()
            for _ in range(submits):
                began = time.perf_counter()
                response = api.post("/v1/read", content=page)
                took = time.perf_counter() - began
                with lock:
                    latencies.append(took)
                    if response.status_code != 202:
                        failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(measured: list[dict[str, Measured]], idle: dict[str, float],
           recovered: list[float], latency_rounds: list[list[float]], clients: int) -> None:
    def median(name: str, what: Callable[[Measured], float]) -> float:
        return statistics.median(what(runs[name]) for runs in measured)

    def ratio(workers: int, what: Callable[[Measured], float]) -> float:
        """The median of each round's own cluster/embedded ratio."""
        return statistics.median(what(runs[f"cluster {workers}"]) /
                                 what(runs[f"embedded {workers}"]) for runs in measured)

    def wall(run: Measured) -> float:
        return 1 / run.pages_per_second

    def cpu(run: Measured) -> float:
        return run.cpu_per_page

    def rate(run: Measured) -> float:
        return run.pages_per_second

    print(f"\nmedians of {len(measured)} rounds (load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print("| workers | embedded pages/s | cluster pages/s | cluster/embedded wall s per page "
          "| embedded CPU s/page | cluster CPU s/page | cluster/embedded CPU per page |")
    print("|---|---|---|---|---|---|---|")
    for w in WORKERS:
        print(f"| {w} | {median(f'embedded {w}', rate):.2f} | {median(f'cluster {w}', rate):.2f} "
              f"| {ratio(w, wall):.3f} | {median(f'embedded {w}', cpu):.3f} "
              f"| {median(f'cluster {w}', cpu):.3f} | {ratio(w, cpu):.3f} |")
    print("where the extra CPU per page goes, 1 worker thread (median of rounds, s/page; "
          "each step's ratio to embedded 1):")
    for name in ("embedded 1", STEP, "cluster 1"):
        parts = ", ".join(f"{part} {statistics.median(r[name].parts[part] for r in measured):.3f}"
                          for part in sorted(measured[0][name].parts))
        print(f"  {name}: {median(name, cpu):.3f} ({parts}); x"
              f"{statistics.median(r[name].cpu_per_page / r['embedded 1'].cpu_per_page for r in measured):.3f}")  # noqa: E501
    for w in WORKERS:
        parts = {part: statistics.median(runs[f"cluster {w}"].parts[part] for runs in measured)
                 for part in measured[0][f"cluster {w}"].parts}
        print(f"cluster CPU s/page by process, {w} worker{'s' * (w > 1)}: " + ", ".join(
            f"{part} {seconds:.3f}" for part, seconds in sorted(parts.items())))
    print(f"idle CPU s per s (nothing submitted): embedded {idle['embedded']:.3f}, "
          f"cluster {idle['cluster']:.3f}")
    print(f"cluster scaling 2 vs 1 worker process: "
          f"{statistics.median(r['cluster 2'].pages_per_second / r['cluster 1'].pages_per_second for r in measured):.2f}x")  # noqa: E501
    print(f"SIGKILL to job finished elsewhere (lease {LEASE_SECONDS:.0f} s, reclaim every "
          f"{RECLAIM_SECONDS:.0f} s): median {statistics.median(recovered):.1f} s, "
          f"max {max(recovered):.1f} s over {len(recovered)} kills "
          f"(target <= {LEASE_SECONDS + 10:.0f} s)")
    p50 = statistics.median(percentile(r, 0.50) for r in latency_rounds)
    p99 = statistics.median(percentile(r, 0.99) for r in latency_rounds)
    print(f"submit latency, {clients} clients on 2 API nodes "
          f"({len(latency_rounds[0])} submits a round): p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (odd: a median)")
    parser.add_argument("--pages", type=int, default=8, help="corpus pages per measurement")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--submits", type=int, default=4, help="submits per client a round")
    args = parser.parse_args()
    pages = corpus_pages(1)[:args.pages]
    print(f"{len(pages)} pages, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}: figures taken on a shared machine, under load", flush=True)
    with tempfile.TemporaryDirectory() as tmp, \
            Cluster(Path(tmp) / "cluster", workers=1, lease_seconds=LEASE_SECONDS,
                    reclaim_seconds=RECLAIM_SECONDS, env=TESSERACT) as cluster:
        measured, idle = throughput(cluster, pages, args.rounds, Path(tmp))
        cluster.start_worker()
        recovered = recovery(cluster, args.rounds)
        for node in cluster.workers_running():
            cluster.stop_node(node)
        latency_rounds = []
        for number in range(1, args.rounds + 1):
            latency_rounds.append(submit_latency(cluster, args.clients, args.submits))
            print(f"latency {number}/{args.rounds}: p50 "
                  f"{percentile(latency_rounds[-1], 0.5) * 1000:.0f} ms, p99 "
                  f"{percentile(latency_rounds[-1], 0.99) * 1000:.0f} ms", flush=True)
        report(measured, idle, recovered, latency_rounds, args.clients)


if __name__ == "__main__":
    main()
