"""A server imports no library it does not use (README, "Peak memory"): boto3 only for the
S3 store, the OpenTelemetry SDK only when tracing is on, httpx only to deliver a webhook
or in the client. Each costs every process that loads it megabytes."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("boto3", "botocore", "httpx", "opentelemetry.sdk")


def loaded_after(imports: str) -> list[str]:
    code = (f"import sys\nimport {imports}\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return run.stdout.split()


def test_the_server_and_its_roles_load_none_of_the_optional_libraries() -> None:
    assert loaded_after("ocrvault.cli, ocrvault.runtime, ocrvault.api.app, "
                        "ocrvault.compose.worker, ocrvault.compose.scheduler") == []


def test_each_is_loaded_by_the_part_that_uses_it() -> None:
    assert {"boto3", "botocore"} <= set(loaded_after("ocrvault.store.blobs_s3"))
    assert "httpx" in loaded_after("ocrvault.client")


def test_a_decode_child_loads_no_pydantic_and_no_models() -> None:
    """What the decode forkserver preloads, every child holds: without pydantic and the
    models a child is about 8 MB smaller, and so is the forkserver (README, "Peak memory")."""
    code = ("import sys\nimport ocrvault.ingest.decode\n"
            "print(' '.join(m for m in ('pydantic', 'ocrvault.model', 'sqlalchemy') "
            "if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stdout.split() == []
