"""One composition per role, each building only what its role uses.

- ``api`` (compose/api.py): HTTP only: keys, submitting and reading jobs, audit reading,
  retention. Uploads are checked in the decode sandbox, engines are described (for
  ``languages=`` and GET /v1/engines), never created.
- ``worker`` (compose/worker.py): takes jobs off the queue and runs them; no HTTP.
- ``scheduler`` (compose/scheduler.py): periodic work that runs once per cluster (the
  reaper, audit retention) under a lease in the database; no HTTP.
- ``all`` (runtime.py): the three in one process, the embedded default.

Each stands on :class:`~ocrvault.compose.parts.Foundation` (database at this code's
schema, keyring, sealed documents, audit log); backends come from the settings through
``jobs.queue.open_queue`` and ``store.blobs.open_blob_store``.
"""

from __future__ import annotations

from enum import StrEnum


class NodeRole(StrEnum):
    API = "api"
    WORKER = "worker"
    SCHEDULER = "scheduler"
    ALL = "all"
