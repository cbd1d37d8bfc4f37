"""Refusals made before any vendor route runs (a path the door lacks, a method a path
lacks, no key) come in the vendor's own shape, which its client parses, and a caller
without a key is told where that vendor's client puts it."""

from __future__ import annotations

import httpx
import pytest
import requests
from azure.cognitiveservices.vision.computervision.models import (
    ComputerVisionOcrErrorException,
)
from azure.core.exceptions import ResourceNotFoundError

from tests.compat.conftest import Live
from tests.compat.test_abbyy import client as abbyy_client
from tests.compat.test_azure_read import sdk as read_sdk
from tests.compat.test_document_intelligence import sdk as di_sdk

AZURE_KEY = "Ocp-Apim-Subscription-Key"


def test_the_read_sdk_parses_an_unknown_path_as_azures_not_found(live: Live) -> None:
    # An id with a slash leaves the route's one segment: the router, not a route, says 404.
    with pytest.raises(ComputerVisionOcrErrorException) as missing:
        read_sdk(live, live.key).get_read_result("no/such")
    assert missing.value.response.status_code == 404
    assert missing.value.error.code == "NotFound" and missing.value.error.message


def test_the_di_sdk_parses_an_unknown_path_as_dis_not_found(live: Live) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        di_sdk(live, live.key).get_analyze_result_pdf("prebuilt-read", "no/such")
    assert missing.value.error is not None and missing.value.error.code == "NotFound"


def test_the_abbyy_client_gets_abbyys_xml_for_a_call_not_offered(live: Live) -> None:
    with pytest.raises(requests.HTTPError) as missing:
        abbyy_client(live, live.key).processFields()
    answer = missing.value.response
    assert answer.status_code == 404 and answer.text.startswith("<?xml")
    assert "<error><message" in answer.text and "processFields" in answer.text


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/vision/v3.2/read/analyze", "POST"),
    ("DELETE", "/documentintelligence/documentModels/prebuilt-read:analyze", "POST"),
    ("GET", "/processImage", "POST"),
    ("PUT", "/v2/processImage", "POST"),
])
def test_a_method_a_vendor_path_lacks_is_405_in_the_vendors_shape(
        live: Live, method: str, path: str, allow: str) -> None:
    answer = httpx.request(method, f"{live.url}{path}", auth=("app", live.key),
                           headers={AZURE_KEY: live.key})
    assert answer.status_code == 405 and answer.headers["Allow"] == allow
    assert method in vendor_message(path, answer)


@pytest.mark.parametrize("path", ["/vision/v3.2/ocr", "/documentintelligence/info",
                                  "/v2/processMRZ", "/abbyy/results"])
def test_unknown_paths_of_a_door_are_404_in_its_shape(live: Live, path: str) -> None:
    answer = httpx.get(f"{live.url}{path}")
    assert answer.status_code == 404
    assert path in vendor_message(path, answer)


def vendor_message(path: str, answer: httpx.Response) -> str:
    """The message of a vendor's error body (asserting its shape), by the door of ``path``."""
    if path.startswith("/vision/"):
        body = answer.json()
        assert set(body) == {"code", "message", "requestId"} and body["code"]
        return str(body["message"])
    if path.startswith("/documentintelligence/"):
        error = answer.json()["error"]
        assert error["code"]
        return str(error["message"])
    if path.startswith("/v2/"):
        error = answer.json()["error"]
        assert error["code"]
        return str(error["message"])
    assert answer.text.startswith("<?xml") and "<error><message" in answer.text
    return answer.text


@pytest.mark.parametrize(("path", "names"), [
    ("/vision/v3.2/read/analyzeResults/" + "0" * 36, AZURE_KEY),
    ("/documentintelligence/documentModels/prebuilt-read/analyzeResults/x", AZURE_KEY),
    ("/listTasks", "HTTP Basic"),
    ("/v2/listTasks", "HTTP Basic"),
])
def test_a_caller_without_a_key_is_told_the_vendors_way_to_send_one(
        live: Live, path: str, names: str) -> None:
    answer = httpx.get(f"{live.url}{path}")
    assert answer.status_code == 401
    message = vendor_message(path, answer)
    assert names in message and "Bearer" not in message


def test_ocrvaults_own_paths_keep_problem_json(live: Live) -> None:
    answer = httpx.get(f"{live.url}/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "not_found"
