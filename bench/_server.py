"""A real ``ocrvault serve`` process on a free port, with an admin key, for benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from ocrvault.access.service import AccessService
from ocrvault.audit import AuditLog, ChainSigner
from ocrvault.config import Settings
from ocrvault.crypto import load_keyring
from ocrvault.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import free_port


@contextmanager
def ocrvault_server(data_dir: Path, workers: int, **env: str) -> Iterator[tuple[str, str, int]]:
    """Yields (base url, admin key, server pid) of a server with ``workers`` OCR threads."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # ocrvault refuses a shared one
    db = Database(f"sqlite:///{data_dir / 'ocrvault.db'}")
    db.migrate()
    audit = AuditLog(db, ChainSigner(load_keyring(Settings(data_dir=data_dir))))
    key = AccessService(db, audit).bootstrap_tenant("bench").secret
    db.dispose()
    port = free_port()
    environment = {**os.environ, "OCRVAULT_DATA_DIR": str(data_dir), "OCRVAULT_PORT": str(port),
                   "OCRVAULT_WORKERS": str(workers), **env}
    process = subprocess.Popen([sys.executable, "-m", "ocrvault", "serve"], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("ocrvault serve did not become ready")
            time.sleep(0.1)
        yield url, key, process.pid
    finally:
        process.terminate()
        process.wait(30)


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """Peak resident memory (VmHWM) of the process and the largest of its children, in MB."""
    def hwm(p: psutil.Process) -> float:
        for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    parent = psutil.Process(pid)
    children = [hwm(child) for child in parent.children(recursive=True)]
    return hwm(parent), max(children, default=0.0)
