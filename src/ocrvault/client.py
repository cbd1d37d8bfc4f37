"""A small Python client for the ocrvault v1 API.

    from ocrvault.client import Client
    with Client("http://127.0.0.1:8080", api_key) as client:
        job = client.submit(Path("invoice.pdf"), languages="eng+deu")
        document = client.wait(job.id).result

Problems from the server are raised as :class:`ApiError` with the stable ``code``.
The transport is injectable (``httpx.MockTransport``, an ASGI app in tests).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel

from ocrvault.model import DeletionReceipt, Document, JobError, JobStatus, OutputFormat


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class JobState(BaseModel):
    id: str
    status: JobStatus
    created_at: str
    completed_at: str | None = None
    expires_at: str | None = None
    error: JobError | None = None
    result: Document | None = None


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {api_key}"},
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None,
                                   TracebackType | None]) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            try:
                problem = response.json()
                raise ApiError(response.status_code, problem["code"], problem["detail"])
            except (ValueError, KeyError):
                raise ApiError(response.status_code, "http_error", response.text[:200]) from None
        return response

    @staticmethod
    def _query(languages: str | None, pages: str | None,
               outputs: list[OutputFormat] | None = None) -> dict[str, str]:
        query = {"languages": languages, "pages": pages,
                 "outputs": ",".join(o.value for o in outputs) if outputs else None}
        return {k: v for k, v in query.items() if v}

    def submit(self, file: Path | bytes, *, languages: str | None = None,
               pages: str | None = None, outputs: list[OutputFormat] | None = None) -> JobState:
        body = file.read_bytes() if isinstance(file, Path) else file
        response = self._call("POST", "/v1/read", content=body,
                              params=self._query(languages, pages, outputs),
                              headers={"Content-Type": "application/octet-stream"})
        return JobState.model_validate(response.json())

    def get(self, job_id: str) -> JobState:
        return JobState.model_validate(self._call("GET", f"/v1/jobs/{job_id}").json())

    def wait(self, job_id: str, *, timeout: float = 600.0, poll_interval: float = 0.5) -> JobState:
        """Poll until the job has finished; raises TimeoutError past ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not (state := self.get(job_id)).status.finished:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {state.status} after {timeout}s")
            time.sleep(poll_interval)
        return state

    def output(self, job_id: str, fmt: OutputFormat) -> bytes:
        return self._call("GET", f"/v1/jobs/{job_id}/outputs/{fmt.value}").content

    def delete(self, job_id: str) -> DeletionReceipt:
        return DeletionReceipt.model_validate(self._call("DELETE", f"/v1/jobs/{job_id}").json())

    def read_sync(self, file: Path | bytes, *, languages: str | None = None,
                  pages: str | None = None) -> Document:
        body = file.read_bytes() if isinstance(file, Path) else file
        response = self._call("POST", "/v1/read:sync", content=body,
                              params=self._query(languages, pages),
                              headers={"Content-Type": "application/octet-stream"})
        return Document.model_validate(response.json())
