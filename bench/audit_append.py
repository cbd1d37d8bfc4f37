"""Audit appends per second on PostgreSQL: 1 process, 4 processes on 4 tenants, 4 processes
on one tenant, measured side by side in one run (median of rounds).

Each append locks its own tenant's chain only, so 4 processes on 4 tenants should scale
past 1 process, while 4 on one tenant queue on that tenant's chain head. Processes are
started and connected before the clock starts (a barrier), and each round uses fresh
tenants in a fresh schema. Needs the PostgreSQL server at 127.0.0.1:5432 (database
``test``). Run: python bench/audit_append.py [--appends 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditLog, ChainSigner
from ocrvault.crypto import FileKeyringProvider, Keyring
from ocrvault.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.audit_backends import database_url

SCENARIOS = {"1 process": 1, "4 processes, 4 tenants": 4, "4 processes, 1 tenant": 4}


def writer(url: str, keyring_path: str, tenant: str, count: int, ready: Any, go: Any) -> None:
    database = Database(url)
    audit = AuditLog(database, ChainSigner(Keyring(FileKeyringProvider(Path(keyring_path)))))
    database.ping()  # connected before the clock starts
    ready.wait()
    go.wait()
    for n in range(count):
        audit.record(AuditEvent(AuditAction.JOB_RESULT_READ,
                                Actor(name="bench", tenant_id=tenant), target_id=f"job-{n}"))
    database.dispose()


def appends_per_second(url: str, keyring_path: Path, scenario: str, appends: int) -> float:
    processes = SCENARIOS[scenario]
    shared = str(uuid.uuid4())
    tenants = [shared if "1 tenant" in scenario else str(uuid.uuid4())
               for _ in range(processes)]
    spawn = multiprocessing.get_context("spawn")
    ready, go = spawn.Barrier(processes + 1), spawn.Barrier(processes + 1)
    workers = [spawn.Process(target=writer,
                             args=(url, str(keyring_path), tenant, appends, ready, go))
               for tenant in tenants]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.perf_counter()
    go.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError(f"{scenario}: a writer failed")
    return processes * appends / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=300, help="appends per process")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {scenario: [] for scenario in SCENARIOS}
    with tempfile.TemporaryDirectory() as tmp:
        keyring_path = Path(tmp) / "keyring.json"
        Keyring(FileKeyringProvider(keyring_path))  # one key for every writer
        for _ in range(args.rounds):
            with database_url("postgresql", Path(tmp)) as url:
                database = Database(url)
                database.migrate()
                database.dispose()
                for scenario in SCENARIOS:  # interleaved, so drift hits each alike
                    rates[scenario].append(appends_per_second(url, keyring_path, scenario,
                                                              args.appends))
    single = statistics.median(rates["1 process"])
    for scenario, measured in rates.items():
        median = statistics.median(measured)
        print(f"{scenario:24} {median:8.0f} appends/s  ({median / single:4.2f}x 1 process)")


if __name__ == "__main__":
    main()
