"""Hostile and broken input through the API: a clear error, never a crash, nothing left behind.

Every file of the public hostile corpus (``shared/corpus/hostile``, driven by its
manifest) and the hostile files of ``tests/hostilegen.py`` go through ``POST /v1/read``
and ``POST /v1/read:sync``, sent as a client would: multipart, under their own name, with
the Content-Type their name suggests. Each must get an outcome the manifest allows (a
4xx problem+json with its ``code``, a job that failed with that code, or a job that was
processed safely); right after, the service must still read a good page; and the data
dir must hold no 32-byte stretch of the file and no blob of a refused upload.
"""

from __future__ import annotations

import csv
import functools
import mimetypes
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ocrvault.api.app import create_app
from ocrvault.audit import AuditAction
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.errors import ErrorCode
from ocrvault.runtime import Runtime
from tests import hostilegen
from tests.conftest import CORPUS, assert_problem, auth, issue, runtime_of, wait_for_job
from tests.databases import TestDatabases
from tests.docgen import encode, text_page
from tests.leaks import blob_files, distinctive_window, found_under

HOSTILE = CORPUS / "hostile"
OK = "ok"  # the file was valid and processed
GOOD_TEXT = "Still serving"


# ---- the service and how a client talks to it ------------------------------------------


@dataclass(frozen=True)
class Service:
    client: TestClient
    runtime: Runtime
    key: str

    @property
    def data_dir(self) -> Path:
        return self.runtime.settings.data_dir

    @property
    def blobs(self) -> set[str]:
        return blob_files(self.runtime.settings.blob_dir)


@dataclass(frozen=True)
class Outcome:
    code: str  # an error code, or OK
    job: dict[str, Any] | None = None  # the finished job, when the upload was accepted
    result: dict[str, Any] | None = None  # the Document, when the file was processed


@pytest.fixture(scope="module")
def service(module_databases: TestDatabases,
            engine: TesseractEngine, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Service]:
    """One app (production limits) for every case of this module: each case cleans up after
    itself or is checked not to have left anything, so sharing it is safe and fast."""
    settings = module_databases.settings(tmp_path_factory.mktemp("hostile") / "data", workers=2,
                                         reaper_interval_seconds=3600)
    runtime = Runtime.build(settings, engine=engine)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        yield Service(client, runtime, runtime.access.bootstrap_tenant("hostile").secret)


def upload(data: bytes, name: str, content_type: str | None) -> dict[str, Any]:
    return {"files": {"file": (name, data, content_type or "application/octet-stream")}}


def problem_code(response: Any) -> str:
    """The code of a problem+json answer, checked to be a well-formed 4xx for that code."""
    code = str(response.json().get("code"))
    assert code in set(ErrorCode), response.text
    assert_problem(response, ErrorCode(code).status, code)
    assert 400 <= response.status_code < 500, response.text
    return code


def read_async(service: Service, data: bytes, name: str = "upload",
               content_type: str | None = None, key: str | None = None,
               **params: str) -> Outcome:
    key = key or service.key
    response = service.client.post("/v1/read", params=params, headers=auth(key),
                                   **upload(data, name, content_type))
    if response.status_code != 202:
        return Outcome(problem_code(response))
    job = wait_for_job(service.client, response.json()["id"], key)
    if job["status"] == "failed":
        assert job["error"]["code"] in set(ErrorCode) and job["result"] is None
        return Outcome(job["error"]["code"], job)
    return Outcome(OK, job, job["result"])


def read_sync(service: Service, data: bytes, name: str = "upload",
              content_type: str | None = None, **params: str) -> Outcome:
    response = service.client.post("/v1/read:sync", params=params, headers=auth(service.key),
                                   **upload(data, name, content_type))
    if response.status_code == 200:
        return Outcome(OK, None, response.json())
    return Outcome(problem_code(response))


@functools.cache
def good_page() -> bytes:
    return encode(text_page([GOOD_TEXT], size=(560, 130), font_px=40), "PNG")


def assert_still_serving(service: Service) -> None:
    outcome = read_sync(service, good_page(), "good.png", "image/png")
    assert outcome.code == OK and outcome.result is not None
    assert GOOD_TEXT in outcome.result["text"]


def rejections(service: Service) -> list[dict[str, Any]]:
    response = service.client.get("/v1/audit", headers=auth(service.key), params={
        "action": AuditAction.JOB_REJECTED.value, "limit": 1000})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def assert_nothing_left(service: Service, data: bytes, blobs_before: set[str],
                        accepted: Outcome) -> None:
    """No stretch of ``data`` under the data dir; of an accepted job only its sealed result."""
    window = distinctive_window(data)
    if window is not None:
        assert found_under(service.data_dir, [window]) == []
    new_blobs = service.blobs - blobs_before
    if accepted.code == OK:
        assert accepted.job is not None
        assert {Path(blob).parent.name for blob in new_blobs} == {accepted.job["id"]}
        assert {Path(blob).name for blob in new_blobs} == {"result"}
    else:
        assert new_blobs == set(), "a refused or failed upload left blobs behind"


def assert_rejections_audited(service: Service, before: int, data: bytes, name: str,
                              refused: list[str]) -> None:
    """One content-free audit entry per upload refused in the request: size, type, code."""
    new = rejections(service)[before:]
    assert [entry["reason"] for entry in new] == refused
    for entry in new:
        assert entry["outcome"] == "failure"
        assert entry["target_id"].startswith("upload:")
        assert entry["target_id"].endswith(f":{len(data)}")
        assert Path(name).stem not in str(entry)


# ---- the public corpus -------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    name: str
    allowed: frozenset[str]

    @property
    def data(self) -> bytes:
        return (HOSTILE / self.name).read_bytes()

    @property
    def declared_type(self) -> str | None:
        return mimetypes.guess_type(self.name)[0]


def manifest() -> list[CorpusFile]:
    with (HOSTILE / "manifest.tsv").open(newline="") as rows:
        return [
            CorpusFile(row["file"], frozenset(
                OK if code.startswith("200") else code for code in row["expected_code"].split("|")
            ))
            for row in csv.DictReader(rows, delimiter="\t")
        ]


# Since issue 12 a PDF page is judged by the pixels it renders to, not its inches: the
# manifest's own behaviour column allows OCRmyPDF's 30-inch page ("or render safely within
# limits"), a 300-dpi 9000 px image that renders within the 10,000 px and 100 Mpx limits.
RENDERS_WITHIN_LIMITS = {"omp_enormous.pdf"}
CORPUS_FILES = [CorpusFile(f.name, f.allowed | {OK}) if f.name in RENDERS_WITHIN_LIMITS else f
                for f in manifest()]

# What a processed file's result must show: the text that proves the page was rendered
# (and its actions not followed instead), and the metadata that was found and dropped.
EXPECTED_TEXT = {
    "gen_pdf_javascript_openaction.pdf": "hostile",
    "gen_pdf_launch_action.pdf": "hostile",
    "gen_pdf_embedded_file.pdf": "hostile",
    "pdfjs_attachment.pdf": "attachment",
    "pdfjs_helloworld_bad.pdf": "world",
}
EXPECTED_METADATA_REMOVED = {
    "gen_jpeg_exif_gps.jpg": {"exif", "gps", "xmp", "comment"},
    "pil_exif_gps.jpg": {"exif", "gps"},
    "gen_pdf_embedded_file.pdf": {"attachments"},
    "pdfjs_attachment.pdf": {"attachments", "pdf_info"},
    "pat_cve_2022_44268.png": {"text"},
}


def test_the_manifest_covers_every_corpus_file() -> None:
    on_disk = {path.name for path in HOSTILE.iterdir()} - {"manifest.tsv", "README.md"}
    assert {case.name for case in CORPUS_FILES} == on_disk
    assert len(CORPUS_FILES) >= 46


@pytest.mark.parametrize("case", CORPUS_FILES, ids=[case.name for case in CORPUS_FILES])
def test_corpus_file_gets_an_allowed_outcome_on_both_routes_and_leaves_nothing_behind(
    service: Service, case: CorpusFile
) -> None:
    data, blobs_before, audited_before = case.data, service.blobs, len(rejections(service))

    submitted = read_async(service, data, case.name, case.declared_type)
    assert submitted.code in case.allowed, submitted
    many_pages = submitted.job is not None and (submitted.job["page_count"] or 0) > 1
    synced = read_sync(service, data, case.name, case.declared_type,
                       **({"pages": "1"} if many_pages else {}))
    assert synced.code in case.allowed, synced

    for outcome in (submitted, synced):
        if outcome.code == OK:
            assert outcome.result is not None
            assert EXPECTED_TEXT.get(case.name, "") in outcome.result["text"].lower()
            assert set(outcome.result["metadata_removed"]) >= EXPECTED_METADATA_REMOVED.get(
                case.name, set())
    assert_still_serving(service)
    assert_nothing_left(service, data, blobs_before, submitted)
    refused = [outcome.code for outcome in (submitted, synced)
               if outcome.code != OK and outcome.job is None]
    assert_rejections_audited(service, audited_before, data, case.name, refused)


# ---- hostile files made here ------------------------------------------------------------


GENERATED: dict[str, tuple[Callable[[], bytes], str, str, set[str]]] = {
    # id: (builder, file name, declared type, allowed outcomes)
    "png-declaring-100000x100000": (lambda: hostilegen.png_declaring(100_000, 100_000),
                                    "huge.png", "image/png", {"image_too_large"}),
    "tiff-of-10000-pages": (lambda: hostilegen.tiff_of_pages(10_000), "pages.tif",
                            "image/tiff", {"too_many_pages"}),
    "pdf-of-5000-pages": (lambda: hostilegen.pdf_of_pages(5000), "pages.pdf",
                          "application/pdf", {"too_many_pages"}),
    "pdf-page-of-200-inches": (lambda: hostilegen.pdf_page_inches(200), "poster.pdf",
                               "application/pdf", {"image_too_large"}),
    "jpeg-cut-in-half": (hostilegen.jpeg_cut_in_half, "half.jpg", "image/jpeg",
                         {"corrupt_file"}),
    # Damage, not size: one answer on both routes (a loop once read as 2 pages, or as
    # "too large" for read:sync; a negative width as "too large, scale it down").
    "tiff-whose-pages-loop": (hostilegen.tiff_with_looping_pages, "loop.tif", "image/tiff",
                              {"corrupt_file"}),
    "bmp-of-negative-width": (lambda: hostilegen.bmp_with_width(-1), "scan.bmp", "image/bmp",
                              {"corrupt_file"}),
    "zip-named-png": (hostilegen.zip_named_png, "photo.png", "image/png",
                      {"unsupported_media_type"}),
    "svg-named-png": (hostilegen.svg_named_png, "photo.png", "image/png",
                      {"unsupported_media_type"}),
}


@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_hostile_file_is_refused_with_its_code_and_leaves_nothing_behind(
    service: Service, name: str
) -> None:
    build, file_name, declared, allowed = GENERATED[name]
    data, blobs_before = build(), service.blobs

    submitted = read_async(service, data, file_name, declared)
    synced = read_sync(service, data, file_name, declared)

    assert submitted.code in allowed and synced.code in allowed
    assert_still_serving(service)
    assert_nothing_left(service, data, blobs_before, submitted)


def test_the_tiff_page_walk_stops_at_the_limit_before_reaching_page_10000(
    service: Service,
) -> None:
    """The 10,000-IFD TIFF is refused by counting, not by decoding every page."""
    response = service.client.post("/v1/read", headers=auth(service.key),
                                   content=hostilegen.tiff_of_pages(10_000))
    body = assert_problem(response, 422, "too_many_pages")
    assert f"{service.runtime.settings.max_pages:,}" in body["detail"]


def test_a_file_attached_by_a_page_annotation_is_reported_removed_on_both_routes(
    service: Service,
) -> None:
    pdf, blobs_before = hostilegen.pdf_with_attachment_annotation(), service.blobs

    submitted = read_async(service, pdf, "memo.pdf", "application/pdf")
    synced = read_sync(service, pdf, "memo.pdf", "application/pdf")

    for outcome in (submitted, synced):
        assert outcome.code == OK and outcome.result is not None
        assert "attachments" in outcome.result["metadata_removed"]
        assert hostilegen.ATTACHED_CANARY.decode() not in str(outcome.result)
    assert found_under(service.data_dir, [hostilegen.ATTACHED_CANARY]) == []
    assert_nothing_left(service, pdf, blobs_before, submitted)


# ---- PDF actions: never executed, never followed ---------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP port that records any connection attempt in its backlog."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as sock:
        sock.setblocking(False)
        yield sock


def connection_attempts(sock: socket.socket) -> int:
    attempts = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return attempts
        conn.close()
        attempts += 1


def test_pdf_javascript_and_open_actions_run_nothing_and_reach_no_network(
    service: Service, listener: socket.socket
) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    pdf = hostilegen.pdf_with_javascript(url)

    outcomes = [read_async(service, pdf, "js.pdf", "application/pdf"),
                read_sync(service, pdf, "js.pdf", "application/pdf")]

    for outcome in outcomes:
        assert outcome.code == OK and outcome.result is not None
        assert "hostile" in outcome.result["text"].lower()
    assert connection_attempts(listener) == 0


def test_pdf_launch_and_import_actions_are_never_followed(
    service: Service, tmp_path: Path
) -> None:
    target = tmp_path / "launched"
    pdf = hostilegen.pdf_with_launch(str(target))

    outcomes = [read_async(service, pdf, "launch.pdf", "application/pdf"),
                read_sync(service, pdf, "launch.pdf", "application/pdf")]

    for outcome in outcomes:
        assert outcome.code == OK and outcome.result is not None
        assert "hostile" in outcome.result["text"].lower()
    assert not target.exists()


# ---- the decode sandbox's limits, end to end ---------------------------------------------


@pytest.fixture
def tight(databases: TestDatabases,
          make_client: Callable[..., TestClient], tmp_path: Path) -> Service:
    """A service whose decoder may use 256 MiB, 1 s of CPU and 2 s of wall-clock time."""
    settings = databases.settings(tmp_path / "data", workers=1, reaper_interval_seconds=3600,
                                  decode_memory_bytes=256 * 2**20, decode_cpu_seconds=1,
                                  decode_timeout_seconds=2.0)
    client = make_client(settings)
    return Service(client, runtime_of(client), issue(client, "tight"))


@pytest.mark.parametrize(
    ("build", "code", "detail"),
    [
        (hostilegen.memory_hungry_png, "corrupt_file", "MiB of memory"),
        (hostilegen.slow_pdf, "processing_timeout", "Decoding"),
    ],
    ids=["needs-300-MB-to-decode", "takes-minutes-to-render"],
)
def test_a_file_past_the_sandbox_limits_fails_and_the_next_good_one_succeeds(
    tight: Service, build: Callable[[], bytes], code: str, detail: str
) -> None:
    data = build()
    blobs_before = tight.blobs

    submitted = read_async(tight, data)
    assert submitted.code == code and submitted.job is not None
    assert detail in submitted.job["error"]["detail"]
    assert_nothing_left(tight, data, blobs_before, submitted)
    assert read_async(tight, good_page()).code == OK  # the worker survived

    response = tight.client.post("/v1/read:sync", content=data, headers=auth(tight.key))
    assert problem_code(response) == code
    assert_still_serving(tight)
    assert found_under(tight.data_dir, [distinctive_window(data) or data]) == []


# ---- two tenants, good and hostile files at once ------------------------------------------


def test_mixed_load_from_two_tenants_keeps_good_jobs_right_and_tenants_apart(
    service: Service,
) -> None:
    tenants = {name: issue(service.client, name) for name in ("north", "south")}
    good = {name: f"Invoice for {name} tenant" for name in tenants}
    hostile = [
        (hostilegen.jpeg_cut_in_half(), {"corrupt_file"}),
        (hostilegen.png_declaring(60_000, 60_000), {"image_too_large"}),
        (hostilegen.zip_named_png(), {"unsupported_media_type"}),
        ((HOSTILE / "pil_crash_0c7e0e8e.tif").read_bytes(), {"corrupt_file"}),
        ((HOSTILE / "gen_png_bomb_30000px.png").read_bytes(), {"image_too_large"}),
    ]
    work: list[tuple[str, bytes, set[str], str | None]] = []
    for name, key in tenants.items():
        page = encode(text_page([good[name]], size=(900, 160), font_px=40), "PNG")
        work += [(key, page, {OK}, good[name])] * 2
        work += [(key, data, allowed, None) for data, allowed in hostile]

    def run(item: tuple[str, bytes, set[str], str | None]) -> Outcome:
        key, data, _, _ = item
        return read_async(service, data, key=key)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(run, work))

    for (_, _, allowed, text), outcome in zip(work, outcomes, strict=True):
        assert outcome.code in allowed, outcome
        if text is not None:
            assert outcome.result is not None and text in outcome.result["text"]
    for (key, *_), outcome in zip(work, outcomes, strict=True):
        if outcome.job is None:
            continue
        other = next(k for k in tenants.values() if k != key)
        response = service.client.get(f"/v1/jobs/{outcome.job['id']}", headers=auth(other))
        assert_problem(response, 404, "job_not_found")
