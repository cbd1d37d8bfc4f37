"""The machine's Redis and RabbitMQ for tests, each in a private name space.

Redis: database 5 (``redis://127.0.0.1:6379/5``); RabbitMQ: the default vhost, with a
queue name that carries a random suffix per test, deleted afterwards. PostgreSQL is
tests/databases.py's (the PostgreSQL run). Absent a service, its tests skip and say why,
except under CI=true, where a missing service fails.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from ocrvault.config import Settings
from ocrvault.jobs.celery_queue import celery_app

# A worker node as an operator starts one (on a migrated database).
WORKER_COMMAND = [sys.executable, "-m", "ocrvault", "serve", "--role", "worker"]
MIGRATE_COMMAND = [sys.executable, "-m", "ocrvault", "migrate"]

BROKER_URLS = {
    "redis": os.environ.get("OCRVAULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/5"),
    "rabbitmq": os.environ.get("OCRVAULT_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
def require_service(name: str, url: str) -> None:
    """Skip the test (fail it under CI=true) when nothing listens at ``url``."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2).close()
    except OSError as error:
        message = f"{name} is not reachable at {parts.hostname}:{parts.port} ({error})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)


@dataclass(frozen=True)
class BrokerSpace:
    """One test's queue on one broker."""

    name: str
    url: str
    queue_name: str

    def settings(self, data_dir: Path, **overrides: Any) -> Settings:
        return Settings(data_dir=data_dir, queue="celery", broker_url=self.url,
                        queue_name=self.queue_name, reaper_interval_seconds=3600,
                        **overrides)

    def delete_queue(self, data_dir: Path) -> None:
        """Remove the queue and whatever the transport kept beside it (on Redis, its
        bindings and the unacknowledged messages of killed workers, which would
        otherwise be restored an hour later)."""
        app = celery_app(self.settings(data_dir))
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(self.queue_name)
            connection.default_channel.exchange_delete(self.queue_name)
        if self.name == "redis":
            store = redis.Redis.from_url(self.url)
            for key in store.scan_iter(match=f"*{self.queue_name}*"):
                store.delete(key)
            for tag, message in store.hscan_iter("unacked"):
                if self.queue_name.encode() in message:
                    store.hdel("unacked", tag)
                    store.zrem("unacked_index", tag)


def broker_space(name: str) -> BrokerSpace:
    url = BROKER_URLS[name]
    require_service(name, url)
    return BrokerSpace(name, url, f"ocrvault-test-{uuid.uuid4().hex[:12]}")
