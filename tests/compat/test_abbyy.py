"""ABBYY Cloud OCR SDK v1 through the PyPI ``abbyy`` 0.3 client (unmodified, ``base_url``
set as its docs say) and v2 JSON over plain HTTP, against a live server."""

from __future__ import annotations

import time

import httpx
import pytest
import requests
from ABBYY import CloudOCR

from ocrvault.api.compat.abbyy import EXPORTS
from ocrvault.audit import AuditAction
from tests.compat.conftest import PNG, Live


def client(live: Live, key: str) -> CloudOCR:
    ocr = CloudOCR("my-old-application-id", key)
    ocr.base_url = live.url
    return ocr


def test_the_client_reads_the_same_text_as_v1_and_result_urls_are_audited(
        live: Live) -> None:
    ocr = client(live, live.key)
    task = ocr.processImage({"upload": ("page.png", PNG)}, exportFormat="txt",
                            language="English,German")
    assert task["status"] == "Queued"
    done = ocr.wait_for_task(task, timeout=60)
    assert done["status"] == "Completed" and done["resultUrl"].startswith(live.url)
    reads = live.audited(AuditAction.JOB_OUTPUT_READ, task["id"])
    text = requests.get(done["resultUrl"], timeout=30).text  # no Authorization header
    assert text == live.v1_text(PNG)
    assert live.audited(AuditAction.JOB_OUTPUT_READ, task["id"]) == reads + 1
    assert live.audited(AuditAction.JOB_SUBMITTED, task["id"]) == 1


def test_process_and_download_and_list_finished_tasks(live: Live) -> None:
    ocr = client(live, live.key)
    streams = ocr.process_and_download({"upload": ("page.png", PNG)}, exportFormat="txt",
                                       language="English", timeout=60)
    assert streams["txt"].read().decode() == live.v1_text(PNG)
    listed = live.audited(AuditAction.JOB_LISTED)
    finished = ocr.listFinishedTasks()
    assert live.audited(AuditAction.JOB_LISTED) == listed + 1
    assert finished and {t["status"] for t in finished} <= {"Completed", "ProcessingFailed"}


def test_delete_task_answers_deleted_and_revokes_its_result_url(live: Live) -> None:
    ocr = client(live, live.key)
    done = ocr.wait_for_task(ocr.processImage({"file": ("p.png", PNG)}, exportFormat="txt"),
                             timeout=60)
    assert ocr.deleteTask(taskId=done["id"])["status"] == "Deleted"
    assert live.audited(AuditAction.JOB_DELETED, done["id"]) == 1
    assert requests.get(done["resultUrl"], timeout=30).status_code in (404, 410)
    assert ocr.getTaskStatus(taskId=done["id"])["status"] == "Deleted"
    listed = {t["id"]: t["status"] for t in ocr.listTasks()}
    assert listed[done["id"]] == "Deleted"
    assert done["id"] not in {t["id"] for t in ocr.listTasks(excludeDeleted="true")}


def test_a_wrong_password_is_401_with_basic_challenge(live: Live) -> None:
    with pytest.raises(requests.HTTPError) as refused:
        client(live, "ocv_live_wrong").listTasks()
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Basic")


def test_another_tenant_never_sees_lists_or_deletes_the_task(live: Live) -> None:
    ocr = client(live, live.key)
    task = ocr.processImage({"upload": ("page.png", PNG)}, exportFormat="txt")
    stranger = client(live, live.other_key)
    assert task["id"] not in {t["id"] for t in stranger.listTasks()}
    for call in (stranger.getTaskStatus, stranger.deleteTask):
        with pytest.raises(requests.HTTPError) as hidden:
            call(taskId=task["id"])
        assert hidden.value.response.status_code == 404


def test_a_tampered_result_url_is_refused(live: Live) -> None:
    ocr = client(live, live.key)
    done = ocr.wait_for_task(ocr.processImage({"upload": ("p.png", PNG)}, exportFormat="txt"),
                             timeout=60)
    url = done["resultUrl"]
    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    assert requests.get(forged, timeout=30).status_code == 404


UNMAPPED = sorted(name for name, fmt in EXPORTS.items() if fmt is None)
MAPPED = sorted(name for name, fmt in EXPORTS.items() if fmt is not None)


@pytest.mark.parametrize("export", MAPPED)
def test_every_available_export_format_downloads_through_its_result_url(
        live: Live, export: str) -> None:
    ocr = client(live, live.key)
    streams = ocr.process_and_download({"upload": ("page.png", PNG)}, exportFormat=export,
                                       timeout=60)
    assert streams[export].read()


@pytest.mark.parametrize(("export", "says"), [
    ("rtf", "supported: txt, txtUnstructured, xml, alto, pdfSearchable"),
    *[(name, "not available on this server yet") for name in UNMAPPED],
    ("txt,xml,alto,txtUnstructured", "one to 3"),
])
def test_unsupported_export_formats_are_refused_by_name(live: Live, export: str,
                                                        says: str) -> None:
    answer = httpx.post(f"{live.url}/processImage", params={"exportFormat": export},
                        content=PNG, auth=("app", live.key))
    assert answer.status_code == 450 and says in answer.text
    assert answer.text.startswith("<?xml") and "<error><message" in answer.text


def test_v2_speaks_json_with_result_urls(live: Live) -> None:
    auth = ("app", live.key)
    submitted = httpx.post(f"{live.url}/v2/processImage", files={"upload": ("p.png", PNG)},
                           params={"exportFormat": "txt", "description": "Q&A <draft>"},
                           auth=auth).json()
    assert submitted["status"] == "Queued" and submitted["description"] == "Q&A <draft>"
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=live.url, auth=auth, timeout=30) as http:
        while (task := http.get("/v2/getTaskStatus",
                                params={"taskId": submitted["taskId"]}).json())["status"] in (
                "Queued", "InProgress"):
            assert time.monotonic() < deadline, task
            time.sleep(0.05)
        assert task["status"] == "Completed"
        (url,) = task["resultUrls"]
        assert httpx.get(url).text == live.v1_text(PNG)
        missing = http.get("/v2/getTaskStatus", params={"taskId": "nope"})
        assert missing.status_code == 404 and missing.json()["error"]["message"]


def test_xml_attribute_values_are_escaped(live: Live) -> None:
    answer = httpx.post(f"{live.url}/processImage", content=PNG, auth=("app", live.key),
                        params={"exportFormat": "txt", "description": 'a&b "c" <d>'})
    assert 'description="a&amp;b &quot;c&quot; &lt;d&gt;"' in answer.text
