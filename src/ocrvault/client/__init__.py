"""The Python client for the ocrvault v1 API, blocking (``Client``) or asyncio
(``AsyncClient``), with typed answers::

    import os
    from ocrvault.client import Client

    with Client(os.environ["URL"], os.environ["KEY"]) as client:
        job = client.submit("invoice.pdf", languages="eng+deu")
        print(client.wait(job.id).result.text)

Problems from the server are raised as :class:`ApiError` (subclassed by status, with the
stable ``code`` and the ``request_id``). 429 and 503 are retried after ``Retry-After``,
connection errors for idempotent methods, both per :class:`Retry`. The httpx transport
is injectable (``httpx.MockTransport`` in tests, a guarded transport in a server).
"""

from ocrvault.client.aio import AsyncClient
from ocrvault.client.core import CustomerKey, Retry
from ocrvault.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from ocrvault.client.models import (
    AuditEntry,
    AuditPage,
    BulkDeletion,
    DeletionReceipt,
    Document,
    Engine,
    Job,
    JobCreated,
    JobPage,
    JobStatus,
    Key,
    KeyCreated,
    Language,
    RetentionPolicy,
)
from ocrvault.client.progress import progress_bar
from ocrvault.client.sync import Client
from ocrvault.client.webhooks import SeenIds, WebhookVerificationError, verify_webhook

__all__ = [
    "ApiError", "AsyncClient", "AuditEntry", "AuditPage", "BadRequest", "BulkDeletion",
    "Client", "Conflict", "CustomerKey", "DeletionReceipt", "Document", "Engine", "Forbidden",
    "Gone", "Job", "JobCreated", "JobPage", "JobStatus", "Key", "KeyCreated", "Language",
    "NotFound",
    "PayloadTooLarge", "RateLimited", "RetentionPolicy", "Retry", "SeenIds", "Unauthorized",
    "Unavailable", "WebhookVerificationError", "progress_bar", "verify_webhook",
]
