"""A real ocrvault cluster on this machine, from the machine's PostgreSQL and Redis.

    python scripts/cluster.py [--api-nodes 2] [--workers 2] [--threads 1]   (or: make cluster)

It starts a moto S3 server and makes a bucket, creates a PostgreSQL schema of its own
(``cluster_<random>`` in the database of OCRVAULT_CLUSTER_POSTGRES_URL, default
``postgresql://postgres@127.0.0.1:5432/test``) and a broker queue of its own on Redis
database 13 (OCRVAULT_CLUSTER_REDIS_URL), runs ``ocrvault migrate``, makes an admin key
with ``ocrvault admin bootstrap``, then starts one scheduler, the API nodes (plain HTTP on
loopback, each on a free port) and the workers, each an ``ocrvault serve --role ...``
process with a data dir of its own: nothing is shared on disk, as between machines. It
prints how to call it and runs until Ctrl-C, then stops the nodes (API nodes first, the
scheduler last) and drops the schema, the queue and the bucket: every run starts empty.

The embedded default (``make run``: SQLite in ./ocrvault-data, the local queue) is not
touched: the cluster lives in a temporary folder, on ports of its own.

Tests and benchmarks use :class:`Cluster` (a context manager) directly.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ocrvault.access.keys import KEY_PATTERN
from tests.s3server import REGION, TEST_AWS_ENV, moto_server
from tests.servers import free_port
from tests.services import BrokerSpace

POSTGRES_URL = os.environ.get("OCRVAULT_CLUSTER_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
# Database 13 (this cluster's issue): tests' brokers use 5, the embedded default none.
REDIS_URL = os.environ.get("OCRVAULT_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/13")
OCRVAULT = [sys.executable, "-m", "ocrvault"]
S3_PREFIX = "ocrvault"
START_SECONDS = 120.0  # a bound on a node's start (engines load, a loaded machine), not a pause
STOP_SECONDS = 60.0  # how long a node may take to finish its jobs on SIGTERM


class ServiceMissing(RuntimeError):
    """PostgreSQL or Redis does not answer; the message says which and where."""


def unreachable(name: str, url: str) -> str | None:
    """Why ``url`` cannot be reached, or None when something listens there."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2).close()
    except OSError as error:
        return f"{name} is not reachable at {parts.hostname}:{parts.port} ({error})"
    return None


@dataclass
class Node:
    """One ``ocrvault serve --role ...`` process and where its output goes."""

    name: str
    role: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str | None = None  # an API node's base URL

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_SECONDS,
               node: Node | None = None) -> None:
    """Poll ``condition`` until it holds; raise saying ``what`` (and ``node``'s output, if
    it ended) when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if node is not None and not node.alive():
            raise RuntimeError(f"{node.name} exited with {node.process.returncode} before "
                               f"{what}:\n{node.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Cluster:
    """Start with ``with Cluster(root) as cluster:``; see the module's docstring.

    ``lease_seconds`` is each job's lease, ``threads`` each worker's OCR threads, ``env``
    more OCRVAULT_* settings for every node (e.g. OCRVAULT_DEFAULT_ENGINE). With
    ``versioned_bucket`` the bucket keeps every version of an object, so a test can count
    how many times each was written.
    """

    root: Path
    api_nodes: int = 2
    workers: int = 2
    threads: int = 1
    lease_seconds: float = 60.0
    reclaim_seconds: float = 1.0
    versioned_bucket: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    postgres_url: str = POSTGRES_URL
    redis_url: str = REDIS_URL

    nodes: list[Node] = field(default_factory=list, init=False)
    admin_key: str = field(default="", init=False)
    database_url: str = field(default="", init=False)
    s3_endpoint: str = field(default="", init=False)
    bucket: str = field(default="", init=False)
    broker: BrokerSpace | None = field(default=None, init=False)
    _settings: dict[str, str] = field(default_factory=dict, init=False)
    _stack: ExitStack = field(default_factory=ExitStack, init=False)
    _names: dict[str, int] = field(default_factory=dict, init=False)

    # -- starting and stopping --------------------------------------------------------

    def __enter__(self) -> Cluster:
        for name, url in (("postgresql", self.postgres_url), ("redis", self.redis_url)):
            if reason := unreachable(name, url):
                raise ServiceMissing(reason)
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tag = uuid.uuid4().hex[:10]
        self.database_url = self._stack.enter_context(_postgres_schema(self.postgres_url, tag))
        self.broker = broker = BrokerSpace("redis", self.redis_url, f"ocrvault-cluster-{tag}")
        self._stack.callback(broker.delete_queue, self.root / "broker")
        self.s3_endpoint = self._stack.enter_context(moto_server())
        self.bucket = f"ocrvault-cluster-{tag}"
        self.s3().create_bucket(Bucket=self.bucket)
        if self.versioned_bucket:
            self.s3().put_bucket_versioning(Bucket=self.bucket,
                                            VersioningConfiguration={"Status": "Enabled"})
        self._settings = {
            "OCRVAULT_DATABASE_URL": self.database_url,
            # One master key for every node: API nodes seal, workers open and seal.
            "OCRVAULT_MASTER_KEY": f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
            # Tenant and epoch keys (wrapped) live outside the database and its backups: one
            # directory every node reads, as a shared volume would be (docs/deploy.md).
            "OCRVAULT_KEY_STORE_DIR": str(self.root / "keys"),
            "OCRVAULT_QUEUE": "celery", "OCRVAULT_BROKER_URL": broker.url,
            "OCRVAULT_QUEUE_NAME": broker.queue_name,
            "OCRVAULT_BLOB_STORE": "s3", "OCRVAULT_S3_BUCKET": self.bucket,
            "OCRVAULT_S3_PREFIX": S3_PREFIX, "OCRVAULT_S3_ENDPOINT_URL": self.s3_endpoint,
            "OCRVAULT_S3_REGION": REGION,
            "OCRVAULT_JOB_LEASE_SECONDS": str(self.lease_seconds),
            "OCRVAULT_LEASE_RECLAIM_INTERVAL_SECONDS": str(self.reclaim_seconds),
            **TEST_AWS_ENV, **self.env,
        }
        # Stopped in the reverse order: API nodes, workers, then the scheduler, while the
        # database, the broker and the bucket are still there.
        self._stack.callback(self.stop)
        self._run_once("migrate", ["migrate"])
        self.admin_key = self._admin_key()
        self.start_scheduler()
        for _ in range(self.workers):
            self.start_worker()
        for _ in range(self.api_nodes):
            self.start_api()

    def node_env(self, name: str, **settings: str) -> dict[str, str]:
        """The environment of node ``name``: this machine's, less any OCRVAULT_* of the
        caller's (a developer's settings would change the cluster), plus the cluster's."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("OCRVAULT_")}
        return {**inherited, **self._settings, **settings,
                "OCRVAULT_DATA_DIR": str(self.root / "nodes" / name)}

    def _run_once(self, name: str, command: list[str]) -> str:
        done = subprocess.run([*OCRVAULT, *command], env=self.node_env(name),
                              capture_output=True, text=True, timeout=START_SECONDS, check=False)
        if done.returncode:
            raise RuntimeError(f"ocrvault {' '.join(command)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")
        return done.stdout

    def _admin_key(self) -> str:
        shown = self._run_once("admin", ["admin", "bootstrap", "--tenant", "cluster",
                                         "--print", "--create"])
        match = KEY_PATTERN.search(shown)
        if match is None:
            raise RuntimeError(f"no key in the output of ocrvault admin bootstrap:\n{shown}")
        return match.group(0)

    def _spawn(self, role: str, *args: str, **settings: str) -> Node:
        number = self._names.get(role, 0) + 1
        self._names[role] = number
        name = f"{role}-{number}"
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True, mode=0o700)
        with log.open("wb") as sink:
            # A session of its own: Ctrl-C on the terminal reaches the script alone, which
            # stops the nodes in order.
            process = subprocess.Popen([*OCRVAULT, "serve", "--role", role, *args],
                                       env=self.node_env(name, **settings), stdout=sink,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        node = Node(name, role, process, log)
        self.nodes.append(node)
        return node

    def start_scheduler(self) -> Node:
        node = self._spawn("scheduler")
        wait_until(lambda: "ocrvault scheduler" in node.output(), "the scheduler to run",
                   node=node)
        return node

    def start_worker(self, threads: int | None = None) -> Node:
        node = self._spawn("worker", OCRVAULT_WORKERS=str(threads or self.threads))
        wait_until(lambda: "consuming" in node.output(), f"{node.name} to consume", node=node)
        return node

    def start_api(self, role: str = "api", **settings: str) -> Node:
        """An API node; with ``role="all"`` (and OCRVAULT_QUEUE=local in ``settings``) an
        embedded node on this cluster's database and bucket, as benchmarks compare: on a
        cluster of its own (no workers), since it takes itself for the only worker."""
        port = free_port()
        node = self._spawn(role, "--host", "127.0.0.1", "--port", str(port), **settings)
        node.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(f"{node.url}/readyz"), f"{node.name} to be ready", node=node)
        return node

    def stop_node(self, node: Node, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM (a worker finishes its jobs), a second one after ``timeout`` (a worker
        leaves them), then SIGKILL; returns the exit status."""
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            if not node.alive():
                break
            node.process.send_signal(sig)
            try:
                node.process.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        code = node.process.wait()
        if node in self.nodes:
            self.nodes.remove(node)
        return code

    def kill(self, node: Node) -> None:
        """SIGKILL ``node`` and reap it: a crash, with no chance to clean up."""
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()
        self.nodes.remove(node)

    def stop(self) -> None:
        order = {"api": 0, "all": 0, "worker": 1, "scheduler": 2}
        for node in sorted(self.nodes, key=lambda n: order[n.role]):
            self.stop_node(node)

    # -- looking at it ----------------------------------------------------------------

    @property
    def api_urls(self) -> list[str]:
        return [node.url for node in self.nodes if node.url is not None]

    def workers_running(self) -> list[Node]:
        return [node for node in self.nodes if node.role == "worker"]

    @property
    def s3_pid(self) -> int:
        """The moto server's process (this process's child listening at the endpoint)."""
        port = str(urlsplit(self.s3_endpoint).port)
        return next(child.pid for child in psutil.Process().children()
                    if "moto.server" in child.cmdline() and port in child.cmdline())

    def node_by_pid(self, pid: int) -> Node | None:
        return next((node for node in self.nodes if node.pid == pid), None)

    def s3(self) -> Any:
        """A boto3 client on the cluster's S3 server, with the nodes' credentials (given
        here, not taken from this process's environment)."""
        return boto3.session.Session(
            aws_access_key_id=TEST_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        ).client("s3", endpoint_url=self.s3_endpoint, region_name=REGION)

    def object_versions(self) -> dict[str, list[bytes]]:
        """Every object in the bucket, by key, with the bytes of each version stored
        (only the latest unless the bucket is versioned)."""
        client = self.s3()
        versions: dict[str, list[bytes]] = {}
        for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for entry in page.get("Versions", []):
                body = client.get_object(Bucket=self.bucket, Key=entry["Key"],
                                         VersionId=entry["VersionId"])["Body"].read()
                versions.setdefault(entry["Key"], []).append(body)
        return versions

    def describe(self) -> str:
        """How to call the cluster and start more nodes, for a person at a terminal."""
        urls = self.api_urls
        lines = [
            "ocrvault cluster running "
            f"({len(urls)} API nodes, {len(self.workers_running())} workers, 1 scheduler)",
            *(f"  API {n}: {url}" for n, url in enumerate(urls, 1)),
            f"  admin key (tenant cluster): {self.admin_key}",
            f"  PostgreSQL: {self.database_url}",
            f"  broker: {self._settings['OCRVAULT_BROKER_URL']} "
            f"queue {self._settings['OCRVAULT_QUEUE_NAME']}",
            f"  S3: {self.s3_endpoint} bucket {self.bucket} prefix {S3_PREFIX}/",
            f"  logs: {self.root / 'logs'}",
            "",
            "Try it:",
            f"  export KEY={self.admin_key}",
            f'  curl -s "{urls[0]}/v1/sample.png" -H "Authorization: Bearer $KEY" -o sample.png',
            f'  curl -s -X POST "{urls[0]}/v1/read" -H "Authorization: Bearer $KEY" '
            "-F file=@sample.png        # -> {\"id\": ...}",
            f'  curl -s "{urls[-1]}/v1/jobs/<id>" -H "Authorization: Bearer $KEY"'
            "   # from the other node",
            "",
            "Ctrl-C stops every node and removes the schema, the queue and the bucket.",
        ]
        return "\n".join(lines)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _postgres_schema(server_url: str, tag: str) -> Iterator[str]:
    """A new schema ``cluster_<tag>`` on ``server_url``'s database, dropped afterwards;
    yields a SQLAlchemy URL whose connections use it."""
    schema = f"cluster_{tag}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (server_url.replace("postgresql://", "postgresql+psycopg://", 1)
               + f"{'&' if '?' in server_url else '?'}options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-nodes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=1, help="OCR threads per worker")
    parser.add_argument("--lease", type=float, default=60.0, help="job lease, seconds")
    args = parser.parse_args()
    stopping = threading.Event()

    def stop(_sig: int, _frame: object) -> None:
        stopping.set()

    root = Path(tempfile.mkdtemp(prefix="ocrvault-cluster-"))
    try:
        print("starting: PostgreSQL schema, Redis queue, moto S3, migrate, nodes ...",
              flush=True)
        with Cluster(root, api_nodes=args.api_nodes, workers=args.workers,
                     threads=args.threads, lease_seconds=args.lease) as cluster:
            signal.signal(signal.SIGINT, stop)
            signal.signal(signal.SIGTERM, stop)
            print(cluster.describe(), flush=True)
            reported: set[str] = set()
            while not stopping.wait(1.0):
                for node in cluster.nodes:
                    if not node.alive() and node.name not in reported:
                        reported.add(node.name)
                        print(f"{node.name} exited with {node.process.returncode}; see "
                              f"{node.log}", flush=True)
            print("stopping ...", flush=True)
    except ServiceMissing as error:
        print(f"error: {error}. make cluster needs the machine's PostgreSQL and Redis "
              "(OCRVAULT_CLUSTER_POSTGRES_URL, OCRVAULT_CLUSTER_REDIS_URL).", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("stopped; nothing left behind", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
