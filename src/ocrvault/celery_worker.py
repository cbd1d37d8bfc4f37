"""A worker process on the Celery queue: ``python -m ocrvault.celery_worker``.

It builds the composition from the environment (``OCRVAULT_*``, with
``OCRVAULT_QUEUE=celery``) and runs jobs from the broker until SIGTERM or SIGINT; a
second signal stops waiting for the jobs in progress, whose leases then run out and
whose jobs another worker finishes. ``ocrvault serve --role worker`` is to run this.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from ocrvault.config import Settings
from ocrvault.jobs.celery_queue import run_celery_worker
from ocrvault.jobs.queue import QueueUnavailable
from ocrvault.logs import install_key_redaction
from ocrvault.runtime import Runtime

log = logging.getLogger("ocrvault.worker")


def main() -> int:
    """Run until told to stop; the exit status: 0 stopped cleanly, 1 left jobs running,
    2 could not start (the broker is unreachable, or the queue is not Celery)."""
    install_key_redaction()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    if settings.queue != "celery":
        print("ocrvault worker: set OCRVAULT_QUEUE=celery and OCRVAULT_BROKER_URL; the local "
              "queue's workers run inside `ocrvault serve`", file=sys.stderr)
        return 2
    stop, give_up = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        (give_up if stop.is_set() else stop).set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runtime = Runtime.build(settings)
    try:
        left = run_celery_worker(settings, runtime.worker.process, max(1, settings.workers),
                                 stop, give_up)
    except QueueUnavailable as error:
        print(f"ocrvault worker: {error}", file=sys.stderr)
        runtime.stop()
        return 2
    if left:
        log.warning("stopping with %d jobs unfinished; their leases run out and another "
                    "worker finishes them", left)
        return 1
    runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
