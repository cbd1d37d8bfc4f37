"""Celery on Redis or RabbitMQ as the job queue (``OCRVAULT_QUEUE=celery``).

A message is a job id (a page task: a job id and the claim whose pages it helps read,
jobs/spread.py) and Celery's envelope, serialised as JSON (pickle is refused both ways):
the worker loads everything else from the database and the blob store.
Messages are acknowledged after the job ends (``task_acks_late``), one at a time per
worker thread (``worker_prefetch_multiplier=1``), and a message whose worker was lost
is returned to the broker (``task_reject_on_worker_lost``). None of that makes a job
run once: the job's lease does (jobs/leases.py), so a message delivered twice, or
redelivered after its job finished elsewhere, finds nothing to claim.

Workers run inside the ocrvault process: a Celery ``WorkController`` with a thread
pool, started on a thread of its own, so the threads share the process's loaded
engines and database pool the way the local queue's threads do. Celery's worker keeps
its stop flags in process-wide state, so a process consumes through one CeleryQueue at
a time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from celery import Celery
from celery.exceptions import Reject
from celery.worker import WorkController
from celery.worker import state as worker_state
from kombu.utils.url import maybe_sanitize_url

from ocrvault.config import Settings
from ocrvault.jobs.queue import JobHandler, PageHandler, QueueUnavailable

log = logging.getLogger(__name__)

TASK_NAME = "ocrvault.process_job"
# A page task: help read the pages of a job another worker claimed (jobs/spread.py).
PAGE_TASK_NAME = "ocrvault.read_page"
_HOLDER_CHARS = 64  # a lease holder token is at most this long (store/tables.py)
# How long start() waits for the consumer to be ready, and how often a stop that waits
# for running jobs looks at give_up (set by a signal handler, which cannot notify).
_READY_SECONDS = 30.0
_POLL_SECONDS = 0.2

_consuming = threading.Lock()  # held by the one CeleryQueue of this process that consumes


def celery_app(settings: Settings) -> Celery:
    """A Celery app for ``settings``' broker and queue: JSON only, late acks."""
    if settings.broker_url is None:
        raise QueueUnavailable("OCRVAULT_QUEUE=celery needs OCRVAULT_BROKER_URL")
    app = Celery("ocrvault", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        # JSON only: a pickled message would run code chosen by whoever can write to the
        # broker, and the body stays readable for an operator checking what it carries.
        task_serializer="json", accept_content=["json"], result_accept_content=["json"],
        event_serializer="json", result_serializer="json",
        task_ignore_result=True, result_backend=None,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=settings.queue_name,
        task_queues={settings.queue_name: {"exchange": settings.queue_name,
                                           "routing_key": settings.queue_name}},
        task_create_missing_queues=False,
        # No remote control, events or gossip: nothing on the broker but the job queue.
        worker_enable_remote_control=False, worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False, worker_redirect_stdouts=False,
        # A broker that is down at start is reported at once (see start()); one that goes
        # away later is reconnected to.
        broker_connection_retry_on_startup=False,
        broker_connection_timeout=5.0,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 1},
    )
    return app


def _unreachable(broker: str, error: BaseException) -> QueueUnavailable:
    return QueueUnavailable(
        f"cannot reach the Celery broker at {broker} ({type(error).__name__}: {error}); "
        "start it, or point OCRVAULT_BROKER_URL at a running Redis or RabbitMQ")


class _Controller(WorkController):  # type: ignore[misc]
    """A WorkController that says when its consumer is ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


class CeleryQueue:
    """A JobQueue on a Celery broker; see the module's docstring and jobs/queue.py."""

    durable = True
    fair = False  # the broker serves ids in the order they came

    def __init__(self, settings: Settings, workers: int) -> None:
        self.workers = workers
        self.queue_name = settings.queue_name
        self.app = celery_app(settings)
        self.broker = str(maybe_sanitize_url(settings.broker_url))
        # shared=False: by default Celery adds a task to every app, and the first wins.
        self.app.task(name=TASK_NAME, shared=False, ignore_result=True, acks_late=True,
                      reject_on_worker_lost=True)(self._run)
        self.app.task(name=PAGE_TASK_NAME, shared=False, ignore_result=True, acks_late=True,
                      reject_on_worker_lost=True)(self._help)
        self._handler: JobHandler | None = None
        self._helper: PageHandler | None = None
        self._busy = 0
        self._lock = threading.Lock()
        self._worker: _Controller | None = None
        self._thread: threading.Thread | None = None
        #: Set when the consumer's thread ends: asked to stop, or the broker was lost for
        #: longer than Celery's reconnection attempts last.
        self.ended = threading.Event()

    def enqueue(self, job_id: str, tenant_id: str) -> None:
        """Publish ``job_id`` alone (``tenant_id`` never leaves the process)."""
        try:
            self.app.send_task(TASK_NAME, args=[job_id], queue=self.queue_name)
        except Exception as error:  # kombu raises the transport's own errors
            raise _unreachable(self.broker, error) from error

    def publish_pages(self, job_id: str, holder: str, count: int) -> None:
        """``count`` page tasks, each the job id and the lease holder alone."""
        try:
            for _ in range(count):
                self.app.send_task(PAGE_TASK_NAME, args=[job_id, holder],
                                   queue=self.queue_name)
        except Exception as error:
            raise _unreachable(self.broker, error) from error

    def take_pages(self, helper: PageHandler) -> None:
        self._helper = helper

    def check(self) -> None:
        """Connect to the broker once; raises QueueUnavailable if it cannot."""
        try:
            with self.app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1)
        except Exception as error:
            raise _unreachable(self.broker, error) from error

    def start(self, handler: JobHandler) -> None:
        """Consume on ``workers`` threads; with no workers (an API node) only enqueue."""
        self._handler = handler
        if self.workers == 0:
            return
        self.check()
        if not _consuming.acquire(blocking=False):
            raise RuntimeError("this process already consumes from a Celery queue")
        try:
            self._worker, self._thread = self._start_consumer()
        except BaseException:
            _consuming.release()
            raise
        log.info("consuming %s on %s with %d threads", self.queue_name, self.broker,
                 self.workers)

    def _start_consumer(self) -> tuple[_Controller, threading.Thread]:
        worker_state.should_stop = worker_state.should_terminate = None
        # The pool's threads look tasks up in the process's default app, not in ours.
        self.app.set_default()
        worker = _Controller(
            app=self.app, hostname=f"ocrvault-{os.getpid()}-{uuid.uuid4().hex[:8]}@"
            f"{socket.gethostname()}", pool_cls="threads", concurrency=self.workers,
            queues=[self.queue_name], without_heartbeat=True, without_mingle=True,
            without_gossip=True, loglevel="WARNING",
        )
        self.ended.clear()

        def consume() -> None:
            try:
                worker.start()
            finally:
                self.ended.set()

        thread = threading.Thread(target=consume, name="celery-consumer", daemon=True)
        thread.start()
        deadline = time.monotonic() + _READY_SECONDS
        while not worker.ready.wait(_POLL_SECONDS):
            if not thread.is_alive() or time.monotonic() > deadline:
                self.check()  # the likeliest cause, said plainly
                raise QueueUnavailable(f"the Celery worker on {self.broker} did not start")
        return worker, thread

    def _run(self, job_id: object) -> None:
        """The task: hand one job id to the handler. What the handler raises is logged,
        never retried: the job's lease decides what happens to it."""
        if not isinstance(job_id, str) or self._handler is None:
            raise Reject("not a job id", requeue=False)
        with self._lock:
            self._busy += 1
        try:
            self._handler(job_id)
        except Exception:
            log.exception("worker crashed on job %s", job_id)
        finally:
            with self._lock:
                self._busy -= 1

    def _help(self, job_id: object, holder: object) -> None:
        """The page task: hand a job id and its holder to the helper; like :meth:`_run`,
        what it raises is logged, never retried (the job's owner reads a page left)."""
        if (not isinstance(job_id, str) or not isinstance(holder, str)
                or len(holder) > _HOLDER_CHARS or self._helper is None):
            raise Reject("not a page task", requeue=False)
        try:
            self._helper(job_id, holder)
        except Exception:
            log.exception("worker crashed helping with the pages of job %s", job_id)

    def running(self) -> int:
        with self._lock:
            return self._busy

    def stop(self, give_up: threading.Event | None = None,
             timeout: float | None = None) -> int:
        """Celery's warm shutdown: stop consuming, let the running jobs end (unless
        ``give_up`` is set or ``timeout`` passes), return messages not started to the
        broker. Jobs left running keep their unacknowledged messages and their leases,
        which run out when this process ends."""
        thread = self._thread
        if thread is None:
            return 0
        # The consumer's own thread reads this flag and shuts down from there: kombu's
        # connection is not to be touched from another thread.
        worker_state.should_stop = 0
        hub = getattr(self._worker, "hub", None)
        if hub is not None:  # wake its event loop, which may be polling for seconds
            hub.call_soon(lambda: None)
        deadline = None if timeout is None else time.monotonic() + timeout
        while thread.is_alive():
            if give_up is not None and give_up.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            thread.join(_POLL_SECONDS)
        if thread.is_alive():
            return self.running()
        worker_state.should_stop = None
        self._thread = self._worker = None
        _consuming.release()
        return 0
