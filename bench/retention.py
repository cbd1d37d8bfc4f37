"""The reaper's throughput and lag on many expired jobs, as the service runs it.

    .venv/bin/python bench/retention.py [--jobs 10000]

Builds N finished jobs (real sealed result and output blobs) whose retention has
run out at once, then times Reaper.run_once over them: jobs purged per second, and
the lag of the last job (time from its expiry to its deletion) if the reaper started
the moment they expired. The service's reaper runs every 10 s, so the worst lag is
that plus the figure printed here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ocrvault.config import Settings
from ocrvault.environments import Environment
from ocrvault.runtime import Runtime
from ocrvault.store.documents import JobKey, ObjectKind
from ocrvault.store.tables import JobRow
from tests.clocks import FakeClock
from tests.engine_fakes import FixedEngine

RESULT = b'{"pages": [], "text": "' + b"x" * 4000 + b'"}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime.build(Settings(data_dir=Path(tmp), workers=0), engine=FixedEngine(),
                                clock=clock)
        tenant = runtime.access.bootstrap_tenant("bench", Environment.LIVE).tenant_id
        now = clock()
        start = time.perf_counter()
        # Rows written directly: finished jobs already past expiry, which no repository
        # command makes.
        with runtime.db.transaction() as session:
            for _ in range(args.jobs):
                job_id = str(uuid.uuid4())
                keys = runtime.documents.new_job_keys(tenant, job_id)
                wrapped, version = keys.wrapped_dek, keys.master_key_version
                row = JobRow(
                    id=job_id, tenant_id=tenant, environment="live", status="succeeded",
                    created_at=now, completed_at=now, languages=["eng"], outputs=["text"],
                    attempts=1, wrapped_dek=wrapped, master_key_version=version,
                    stored_objects=[ObjectKind.RESULT.value, ObjectKind.OUTPUT_TEXT.value],
                    expires_at=now, outputs_expires_at=now, metadata_expires_at=now,
                    next_expiry_at=now,
                )
                key = JobKey(tenant, job_id, wrapped)
                runtime.documents.put(key, ObjectKind.RESULT, RESULT)
                runtime.documents.put(key, ObjectKind.OUTPUT_TEXT, RESULT[:1000])
                session.add(row)
        print(f"built {args.jobs} expired jobs with 2 sealed blobs each in "
              f"{time.perf_counter() - start:.1f} s")

        clock.advance(timedelta(seconds=1))
        start = time.perf_counter()
        purged = runtime.reaper.run_once()
        elapsed = time.perf_counter() - start
        left = sum(1 for p in (Path(tmp) / "blobs").rglob("*") if p.is_file())
        print(f"reaper: {purged} jobs purged in {elapsed:.1f} s = {purged / elapsed:,.0f} jobs/s; "
              f"blobs left: {left}")
        interval = runtime.settings.reaper_interval_seconds
        print(f"lag of the last job if the pass began at expiry: {elapsed:.1f} s "
              f"(+ up to the reaper interval, {interval:.0f} s)")
        runtime.stop()


if __name__ == "__main__":
    main()
