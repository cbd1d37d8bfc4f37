"""``ocrvault posture`` as an operator runs it, and its HTML page in a real browser.

The HTML is rendered by Debian's headless ``chromium`` (Makefile: DEB_PACKAGES): the
screenshot must not be blank, the DOM it built must hold every section's heading, and it
must print to a PDF. Without chromium those tests skip and say so, except under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pypdfium2 as pdfium
import pytest
import trustme
from PIL import Image, ImageStat

from ocrvault.posture.model import QUESTIONS, Check, shipped_schema
from ocrvault.posture.render_html import SUMMARY_HEADING
from tests.databases import TestDatabases
from tests.e2e.live import SRC, LiveServer

BROWSER_SECONDS = 90


def posture(databases: TestDatabases, data_dir: Path, *args: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(SRC), **databases.env(data_dir),
                   **(env or {})}
    return subprocess.run([sys.executable, "-m", "ocrvault", "posture", *args],
                          env=environment, capture_output=True, text=True, timeout=120,
                          check=False)


def bootstrap(databases: TestDatabases, data_dir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "ocrvault", "--data-dir", str(data_dir),
                           "admin", "create-tenant", "acme", "--create", "--print"],
                          env={**os.environ, "PYTHONPATH": str(SRC), **databases.env(data_dir)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def data_dir(module_databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("posture") / "data"
    bootstrap(module_databases, path)
    return path


def report_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def entry(report: dict[str, Any], check: Check) -> dict[str, Any]:
    [found] = [e for e in report["entries"] if e["id"] == check.value]
    return found


def test_the_operator_report_covers_the_deployment_and_follows_the_schema(
        module_databases: TestDatabases, data_dir: Path) -> None:
    done = posture(module_databases, data_dir)
    assert done.returncode == 0, done.stderr
    report = report_of(done)
    jsonschema.validate(report, shipped_schema())
    assert report["scope"] == "deployment" and report["tenant"] is None
    chains = entry(report, Check.AUDIT_LOG)["evidence"]["chains"]
    assert set(chains) == {"deployment", "tenant:acme"}
    versions = entry(report, Check.COMPONENTS)["evidence"]
    assert {"tesserocr", "onnxruntime", "rapidocr", "pypdfium2", "pdfium", "pillow",
            "pikepdf", "qpdf"} <= set(versions)
    assert set(versions["engines"]) == {"tesseract", "rapidocr"}
    assert all(len(digest) == 64 for digest in versions["rapidocr_models_sha256"].values())


def test_the_transport_flags_of_serve_decide_the_transport_entry(
        module_databases: TestDatabases, data_dir: Path) -> None:
    plain = entry(report_of(posture(module_databases, data_dir)), Check.TRANSPORT)
    assert plain["status"] == "warn" and plain["evidence"]["mode"] == "plain"
    tls = entry(report_of(posture(module_databases, data_dir,
                                  "--tls-cert", "/etc/ssl/ocrvault.pem")), Check.TRANSPORT)
    assert tls["status"] == "ok" and tls["evidence"]["tls_minimum_version"] == "TLS 1.2"
    exposed = posture(module_databases, data_dir, "--host", "0.0.0.0")
    assert exposed.returncode == 1  # a failing entry fails the command, for scripts
    assert entry(report_of(exposed), Check.TRANSPORT)["status"] == "fail"


def test_serve_with_tls_reports_the_tls_it_listens_with(databases: TestDatabases,
                                                       tmp_path: Path) -> None:
    """The transport entry of a live ``serve --tls-cert --tls-key``, asked over HTTPS:
    the evidence is what serve started with, not a setting read back."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    server = LiveServer(tmp_path / "data", "--tls-cert", str(cert_file),
                        "--tls-key", str(key_file),
                        env={**databases.env(tmp_path / "data"), "OCRVAULT_WORKERS": "1"})
    try:
        output = server.wait_for_output("serving on https://127.0.0.1", timeout=120)
        [key_path] = (tmp_path / "data").glob("admin-key-*.txt")
        with httpx.Client(verify=ssl_context(ca), timeout=30) as client:
            wait_until_serving(client, f"https://127.0.0.1:{server.port}/healthz")
            answer = client.get(f"https://127.0.0.1:{server.port}/v1/security/posture",
                                headers={"Authorization": f"Bearer {key_path.read_text().strip()}"})
        assert answer.status_code == 200, (answer.text, output)
        transport = entry(answer.json(), Check.TRANSPORT)
        assert transport["status"] == "ok"
        assert transport["evidence"] == {"mode": "tls", "bind": "127.0.0.1",
                                         "port": server.port, "tls_minimum_version": "TLS 1.2"}
    finally:
        server.close()


def wait_until_serving(client: httpx.Client, url: str, timeout: float = 60) -> None:
    """serve prints its address just before uvicorn binds it: poll until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_a_keyring_moved_out_of_the_data_dir_clears_the_warning(
        databases: TestDatabases, tmp_path: Path) -> None:
    data = tmp_path / "data"
    bootstrap(databases, data)
    inside = entry(report_of(posture(databases, data)), Check.MASTER_KEY)
    assert inside["status"] == "warn" and inside["evidence"]["keyring_inside_data_dir"]
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    shutil.move(data / "keyring.json", keys / "keyring.json")
    moved = entry(report_of(posture(databases, data, env={
        "OCRVAULT_KEYRING_PATH": str(keys / "keyring.json")})), Check.MASTER_KEY)
    assert moved["status"] == "ok"
    assert moved["evidence"]["keyring"] == str((keys / "keyring.json").resolve())


def test_a_tampered_audit_row_fails_the_report_and_the_command(
        databases: TestDatabases, tmp_path: Path) -> None:
    data = tmp_path / "data"
    bootstrap(databases, data)
    assert entry(report_of(posture(databases, data)), Check.AUDIT_LOG)["status"] == "ok"
    databases.execute(data, "UPDATE audit_entries SET target_id = 'x' "
                            "WHERE chain LIKE 'tenant:%' AND pos = 1")
    done = posture(databases, data)
    assert done.returncode == 1
    audit = entry(report_of(done), Check.AUDIT_LOG)
    assert audit["status"] == "fail"
    assert audit["evidence"]["chains"]["tenant:acme"] == "TAMPERED: entry 1 was changed"


def test_the_markdown_form_has_every_question(module_databases: TestDatabases,
                                             data_dir: Path) -> None:
    done = posture(module_databases, data_dir, "--format", "md")
    assert done.returncode == 0, done.stderr
    for question in QUESTIONS.values():
        assert f"## {question}" in done.stdout


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; CI=true requires it (make system-deps)")
        pytest.skip("chromium is not installed (Debian package chromium; make system-deps)")
    return found


@pytest.fixture
def chromium_profile() -> Iterator[Path]:
    """Chromium's profile, outside tmp_path: it keeps SQLite files of its own there, which
    the guard on databases made behind the fixture's back would rightly take for ours."""
    with tempfile.TemporaryDirectory(prefix="ocrvault-chromium-") as profile:
        yield Path(profile)


def browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # As root (containers, CI) Chromium runs only without its own sandbox.
    root = ["--no-sandbox"] if os.geteuid() == 0 else []
    return subprocess.run([chromium, "--headless", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile}", *root, *args],
                          capture_output=True, text=True, timeout=BROWSER_SECONDS, check=False)


def test_the_html_page_renders_in_chromium_with_every_section_and_prints(
        module_databases: TestDatabases, data_dir: Path, tmp_path: Path,
        chromium: str, chromium_profile: Path) -> None:
    done = posture(module_databases, data_dir, "--format", "html")
    assert done.returncode == 0, done.stderr
    page = tmp_path / "posture.html"
    page.write_text(done.stdout, encoding="utf-8")
    url = page.as_uri()
    for external in ("src=", "http://", "https://", "@import", "url("):
        assert external not in done.stdout, f"an external asset: {external}"

    dom = browse(chromium, chromium_profile, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    for heading in [SUMMARY_HEADING, *QUESTIONS.values()]:
        assert f"<h2>{heading}</h2>" in dom.stdout, heading
    for check in Check:
        assert f'id="{check.value}"' in dom.stdout

    shot = tmp_path / "posture.png"
    taken = browse(chromium, chromium_profile, f"--screenshot={shot}",
                   "--window-size=1200,1600", url)
    assert taken.returncode == 0 and shot.exists(), taken.stderr
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert grey.size == (1200, 1600)
        low, high = grey.getextrema()
        assert high - low > 128  # text on a page, not a blank or a single colour
        assert ImageStat.Stat(grey).stddev[0] > 10

    pdf = tmp_path / "posture.pdf"
    printed = browse(chromium, chromium_profile, f"--print-to-pdf={pdf}",
                     "--no-pdf-header-footer", url)
    assert printed.returncode == 0 and pdf.exists(), printed.stderr
    document = pdfium.PdfDocument(pdf)
    try:
        pages = len(document)
        text = "".join(document[i].get_textpage().get_text_range() for i in range(pages))
    finally:
        document.close()
    assert pages >= 2
    for question in QUESTIONS.values():
        assert question in " ".join(text.split()), question
