"""``ocrvault serve --role api`` on Celery: the API node publishes each job to the broker
and consumes nothing; a worker started afterwards runs what it published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from scripts.cluster import POSTGRES_URL, REDIS_URL, Cluster, wait_until
from tests.conftest import auth
from tests.docgen import encode, text_page
from tests.services import require_service

PNG = encode(text_page(["queued by the API node"], size=(900, 160), font_px=40), "PNG")
WAIT = 180.0  # a bound on waiting for the worker (a loaded machine), never a pause


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An API node and a scheduler, no worker yet."""
    require_service("postgresql", POSTGRES_URL)
    require_service("redis", REDIS_URL)
    with Cluster(tmp_path / "cluster", api_nodes=1, workers=0,
                 env={"OCRVAULT_DEFAULT_ENGINE": "tesseract"}) as running:
        yield running


def test_an_api_node_on_celery_publishes_jobs_without_consuming_and_a_later_worker_runs_them(
        cluster: Cluster) -> None:
    (url,) = cluster.api_urls
    key = cluster.admin_key
    assert cluster.broker is not None
    broker = redis.Redis.from_url(cluster.broker.url)

    job_ids = [httpx.post(f"{url}/v1/read", content=PNG, headers=auth(key),
                          timeout=60).raise_for_status().json()["id"] for _ in range(2)]

    # Both messages wait on the broker: nothing in the API process took them.
    assert broker.llen(cluster.broker.queue_name) == 2
    assert [status(url, key, job_id) for job_id in job_ids] == ["queued", "queued"]
    assert broker.llen(cluster.broker.queue_name) == 2
    (api,) = (node for node in cluster.nodes if node.role == "api")
    assert "consuming" not in api.output()

    cluster.start_worker()
    wait_until(lambda: all(status(url, key, j) in ("succeeded", "failed") for j in job_ids),
               "the worker to run both jobs", WAIT)
    assert [status(url, key, job_id) for job_id in job_ids] == ["succeeded", "succeeded"]
    assert broker.llen(cluster.broker.queue_name) == 0


def status(url: str, key: str, job_id: str) -> str:
    job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=auth(key), timeout=60)
    return str(job.raise_for_status().json()["status"])
