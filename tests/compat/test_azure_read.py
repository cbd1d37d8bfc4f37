"""Azure AI Vision Read 3.2 through Microsoft's own SDK
(``azure-cognitiveservices-vision-computervision`` 0.9.1, unmodified) against a live server."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import httpx
import pytest
from azure.cognitiveservices.vision.computervision import ComputerVisionClient
from azure.cognitiveservices.vision.computervision.models import (
    ComputerVisionOcrErrorException,
    OperationStatusCodes,
    ReadOperationResult,
)
from msrest.authentication import CognitiveServicesCredentials

from ocrvault.audit import AuditAction
from tests.compat.conftest import PDF, PNG, Live


def sdk(live: Live, key: str) -> ComputerVisionClient:
    return ComputerVisionClient(live.url, CognitiveServicesCredentials(key))


def read(client: ComputerVisionClient, data: bytes,
         **options: object) -> tuple[str, ReadOperationResult]:
    """What the SDK's quickstart does: read_in_stream(raw=True), then poll get_read_result."""
    raw = client.read_in_stream(io.BytesIO(data), raw=True, **options)
    operation_id = raw.headers["Operation-Location"].split("/")[-1]
    deadline = time.monotonic() + 60
    while (result := client.get_read_result(operation_id)).status in (
            OperationStatusCodes.not_started, OperationStatusCodes.running):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return operation_id, result


def text_of(result: ReadOperationResult) -> str:
    return "\f".join("\n".join(line.text for line in page.lines)
                     for page in result.analyze_result.read_results)


def test_the_sdk_reads_the_same_text_as_v1_and_each_call_is_audited(live: Live) -> None:
    operation_id, result = read(sdk(live, live.key), PNG, language="en")
    assert len(operation_id) == 36 and operation_id == operation_id.lower()
    assert result.status == OperationStatusCodes.succeeded
    assert text_of(result) == live.v1_text(PNG)
    page = result.analyze_result.read_results[0]
    assert (page.page, page.unit, page.width, page.height) == (1, "pixel", 1200, 260)
    word = page.lines[0].words[0]
    assert len(word.bounding_box) == 8 and 0 < word.confidence <= 1
    assert live.audited(AuditAction.JOB_SUBMITTED, operation_id) == 1
    assert live.audited(AuditAction.JOB_RESULT_READ, operation_id) >= 1


def test_a_wrong_key_raises_the_sdks_error_with_azures_code(live: Live) -> None:
    with pytest.raises(ComputerVisionOcrErrorException) as refused:
        sdk(live, "ocv_live_not-a-key").read_in_stream(io.BytesIO(PNG), raw=True)
    assert refused.value.response.status_code == 401
    assert refused.value.error.code == "Unauthorized" and refused.value.error.message


def test_another_tenants_key_never_sees_the_operation(live: Live) -> None:
    operation_id, _ = read(sdk(live, live.key), PNG)
    with pytest.raises(ComputerVisionOcrErrorException) as hidden:
        sdk(live, live.other_key).get_read_result(operation_id)
    assert hidden.value.response.status_code == 404
    assert hidden.value.error.code == "NotFound"


def test_a_deleted_operation_answers_as_an_unknown_one(live: Live) -> None:
    operation_id, _ = read(sdk(live, live.key), PNG)
    httpx.delete(f"{live.url}/v1/jobs/{operation_id}",
                 headers={"Authorization": f"Bearer {live.key}"}).raise_for_status()
    with pytest.raises(ComputerVisionOcrErrorException) as gone:
        sdk(live, live.key).get_read_result(operation_id)
    assert (gone.value.response.status_code, gone.value.error.code) == (404, "NotFound")


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 4096):
        yield data[start:start + 4096]


def test_sync_analyze_reads_a_chunked_body_without_content_length(live: Live) -> None:
    answer = httpx.post(f"{live.url}/vision/v3.2/read/syncAnalyze", content=_chunks(PNG),
                        headers={"Ocp-Apim-Subscription-Key": live.key,
                                 "Content-Type": "application/octet-stream"}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert "content-length" not in answer.request.headers
    body = answer.json()
    assert body["status"] == "succeeded"
    lines = body["analyzeResult"]["readResults"][0]["lines"]
    assert "\n".join(line["text"] for line in lines) == live.v1_text(PNG)


@pytest.mark.parametrize(("query", "body", "content_type", "code"), [
    ({}, b'{"url": "https://example.com/a.png"}', "application/json", "InvalidImageUrl"),
    ({"language": "xx-Klingon"}, PNG, "application/octet-stream", "NotSupportedLanguage"),
    ({"pages": "3-1x"}, PNG, "application/octet-stream", "InvalidPageRange"),
    ({}, b"not an image at all", "application/octet-stream", "InvalidImageFormat"),
])
def test_refusals_are_flat_azure_errors_with_code_and_message(
        live: Live, query: dict[str, str], body: bytes, content_type: str, code: str) -> None:
    answer = httpx.post(f"{live.url}/vision/v3.2/read/analyze", params=query, content=body,
                        headers={"Ocp-Apim-Subscription-Key": live.key,
                                 "Content-Type": content_type})
    assert answer.status_code in (400, 415, 422)
    error = answer.json()
    assert error["code"] == code and error["message"] and error["requestId"]


def test_open_page_ranges_read_to_the_last_page(live: Live) -> None:
    _, result = read(sdk(live, live.key), PDF, pages=["2-"])
    assert [page.page for page in result.analyze_result.read_results] == [2, 3]
    assert text_of(result) == live.v1_text(PDF, pages="2-3")


def test_a_refused_upload_is_audited_as_on_v1(live: Live) -> None:
    before = live.audited(AuditAction.JOB_REJECTED)
    answer = httpx.post(f"{live.url}/vision/v3.2/read/analyze", content=b"\x00not an image",
                        headers={"Ocp-Apim-Subscription-Key": live.key,
                                 "Content-Type": "application/octet-stream"})
    assert answer.json()["code"] == "InvalidImageFormat"
    assert live.audited(AuditAction.JOB_REJECTED) == before + 1
