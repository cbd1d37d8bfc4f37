"""Every ``curl`` and Python example of README.md, run as written against a live server.

A real ``ocrvault serve`` on loopback with real Tesseract; the examples run in README
order, in one bash session (so a variable one example sets serves the next), in a folder
holding the files they name. A broken example fails here: a wrong route, a wrong status
comment, a Python snippet that does not run.

The conventions, all explicit:

* ``SUPPLIED``: variables the test sets (the README's ``KEY=``/``URL=`` lines, which
  stand for the reader's own values, are skipped).
* ``PLACEHOLDERS``: each ``<name>`` in a command, and what it is replaced by.
* ``FILES``: the files the examples send, generated here.
* ``# -> 202 ...`` after a command: the status it must get; with no number, any 2xx.
* An answer that is an unfinished job (``200`` with ``queued``/``running``, or ``409
  job_not_finished``) is asked again until it has finished, as the README says to poll.
* ``NOT_RUN``: examples the test cannot run, each with its reason (kept tiny).

Fenced ``sh``/``bash``/``shell`` blocks with a ``curl`` in them, and ``python`` blocks,
are examples, wherever they are in the README, so new ones are run without a change here.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.databases import TestDatabases
from tests.docgen import encode, pdf_of, text_page
from tests.e2e.live import SRC, LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"

SUPPLIED = ("KEY", "URL")
PLACEHOLDERS = {
    "<id>": "the top-level id of the last answer that had one (a job, a key)",
    "<key id>": "the id of the key the examples run with ($KEY)",
    "<entry id>": "the id of the first entry of the last audit listing",
}
FILES = {
    "invoice.pdf": lambda: pdf_of([text_page([f"Invoice page {n}"], size=(900, 200))
                                   for n in (1, 2, 3)]),
    "receipt.jpg": lambda: encode(text_page(["Receipt total 12.50"], size=(900, 200)), "JPEG"),
    "id.jpg": lambda: encode(text_page(["Identity card"], size=(900, 200)), "JPEG"),
}
# A substring of the example's first line -> why it cannot run here.
NOT_RUN: dict[str, str] = {
    "/v1/webhooks": "a receiver's host must resolve to a public address; this test has no DNS",
}

POLL_SECONDS = 120
STEP_SECONDS = 300
_DONE = "@@readme-step-done"
_STATUS = "@@readme-http-status"
_PLACEHOLDER = re.compile(r"<[a-z][a-z ]*>")
_FENCE = re.compile(r"^```([A-Za-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_EXPECT = re.compile(r"^\s*#\s*->\s*(\d{3})?")
_ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=")


@dataclass
class Step:
    line: int  # in README.md
    command: str
    expect: int | None = None  # None: any 2xx


@dataclass
class Example:
    language: str  # "sh" or "python"
    line: int
    source: str
    steps: list[Step] = field(default_factory=list)

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def complete(command: str) -> bool:
    """Whether ``command`` is whole: no trailing backslash, no quote left open."""
    if command.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def sh_steps(source: str, first_line: int) -> list[Step]:
    """One step per command (lines joined while one ends in a backslash or a quote is
    open); a ``# -> NNN`` comment that follows a command names its status."""
    steps: list[Step] = []
    lines = source.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if expect := _EXPECT.match(line):
            if steps and expect[1] and steps[-1].expect is None:
                steps[-1].expect = int(expect[1])
        elif line.strip() and not line.lstrip().startswith("#"):
            start, parts = index, [line]
            while not complete("\n".join(parts)) and index + 1 < len(lines):
                index += 1
                parts.append(lines[index])
            steps.append(Step(first_line + start, "\n".join(parts)))
        index += 1
    return steps


def examples(text: str) -> list[Example]:
    found = []
    for match in _FENCE.finditer(text):
        language, source = match[1].lower(), match[2]
        line = text.count("\n", 0, match.start(2)) + 1
        if language in ("sh", "bash", "shell") and "curl " in source:
            found.append(Example("sh", line, source, sh_steps(source, line)))
        elif language in ("python", "py"):
            found.append(Example("python", line, source))
    return found


def not_run_reason(example: Example) -> str | None:
    first = example.source.splitlines()[0] if example.source else ""
    return next((why for part, why in NOT_RUN.items() if part in first), None)


@dataclass
class Answer:
    status: list[int]
    exit_code: int
    output: str

    @property
    def body(self) -> Any:
        text = self.output
        if text.startswith("HTTP/"):  # curl -i: headers first
            text = text.split("\r\n\r\n", 1)[-1]
        try:
            return json.loads(text)
        except ValueError:
            return None


class Shell:
    """One bash session; curl reports each answer's status after its body."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._pending = ""
        self.run(f"curl() {{ command curl --show-error --write-out '\\n{_STATUS} "
                 f"%{{http_code}}\\n' \"$@\"; }}")

    def run(self, command: str, timeout: float = STEP_SECONDS) -> Answer:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{command}\nprintf '\\n{_DONE} %s\\n' \"$?\"\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while _DONE not in self._pending:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError(f"no answer within {timeout}s to:\n{command}")
            chunk = os.read(self.process.stdout.fileno(), 65536).decode(errors="replace")
            if not chunk:
                raise AssertionError(f"bash ended during:\n{command}\n{self._pending}")
            self._pending += chunk
        output, rest = self._pending.split(_DONE, 1)
        code, _, self._pending = rest.lstrip().partition("\n")
        statuses = [int(s) for s in re.findall(rf"^{_STATUS} (\d+)$", output, re.M)]
        body = re.sub(rf"\n?{_STATUS} \d+\n", "", output).strip("\n")
        return Answer(statuses, int(code), body)

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(30)
        self.process.stdout.close()


@dataclass
class Session:
    """What the examples run against, and the values captured from their answers."""

    shell: Shell
    server: LiveServer
    workdir: Path
    env: dict[str, str]
    captured: dict[str, str]

    def substitute(self, command: str) -> str:
        for name in _PLACEHOLDER.findall(command):
            assert name in PLACEHOLDERS, f"unknown placeholder {name}: add it to PLACEHOLDERS"
            assert name in self.captured, f"no value for {name} yet ({PLACEHOLDERS[name]})"
            command = command.replace(name, self.captured[name])
        return command

    def capture(self, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            self.captured["<id>"] = body["id"]
        if isinstance(body, dict) and body.get("entries"):
            self.captured["<entry id>"] = body["entries"][0]["id"]


def unfinished(answer: Answer) -> bool:
    """A job read before it finished (a submission's 202 says "queued" too: not this)."""
    body, status = answer.body, answer.status[-1:]
    return isinstance(body, dict) and (
        (status == [200] and body.get("status") in ("queued", "running"))
        or (status == [409] and body.get("code") == "job_not_finished"))


def run_step(session: Session, step: Step) -> None:
    assignment = _ASSIGNMENT.match(step.command)
    if assignment and assignment[1] in SUPPLIED:
        return  # the reader's own value; the test supplies it
    command = session.substitute(step.command)
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        answer = session.shell.run(command)
        if not unfinished(answer) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    where = f"README.md:{step.line}: {step.command}\n-> exit {answer.exit_code}, " \
            f"status {answer.status}:\n{answer.output[:2000]}"
    assert answer.exit_code == 0, where
    *before, last = answer.status or [0] if "curl" in command else [200]
    assert all(200 <= s < 300 for s in before), where
    assert (last == step.expect) if step.expect else (200 <= last < 300), where
    session.capture(answer.body)


def run_python(session: Session, example: Example) -> None:
    script = session.workdir / f"readme_{example.line}.py"
    script.write_text(example.source)
    done = subprocess.run([sys.executable, str(script)], cwd=session.workdir, env=session.env,
                          capture_output=True, text=True, timeout=STEP_SECONDS, check=False)
    assert done.returncode == 0, f"{example}:\n{example.source}\n{done.stdout}{done.stderr}"


def run_example(session: Session, example: Example) -> None:
    if example.language == "python":
        run_python(session, example)
        return
    for step in example.steps:
        run_step(session, step)


@pytest.fixture(scope="module")
def session(module_databases: TestDatabases,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("readme")
    server = LiveServer(root / "data",
                        env={"OCRVAULT_WORKERS": "2", **module_databases.env(root / "data")})
    try:
        server.wait_ready()
        [key_file] = (root / "data").glob("admin-key-*.txt")
        workdir = root / "work"
        workdir.mkdir()
        for name, make in FILES.items():
            (workdir / name).write_bytes(make())
        env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "PYTHONPATH": str(SRC),
               "KEY": key_file.read_text().strip(), "URL": server.url}
        key_id = key_file.stem.removeprefix("admin-key-")
        shell = Shell(workdir, env)
        try:
            yield Session(shell, server, workdir, env, {"<key id>": key_id})
        finally:
            shell.close()
    finally:
        server.close()


def test_the_readme_has_examples_of_each_kind() -> None:
    found = examples(README.read_text())
    assert {e.language for e in found} == {"sh", "python"}
    assert sum(len(e.steps) for e in found) >= 20
    for part in NOT_RUN:  # no stale entry
        assert any(part in e.source.splitlines()[0] for e in found), part


@pytest.mark.timeout(600)
def test_every_readme_example_runs_as_written(session: Session) -> None:
    for example in examples(README.read_text()):
        if not_run_reason(example) is None:
            run_example(session, example)


def test_the_try_it_lines_that_serve_prints_work_as_printed(session: Session) -> None:
    printed = session.server.output.split("Try it", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in printed.splitlines()[1:]]
    assert lines and lines[-1].startswith("curl "), printed
    for line in lines[:-1]:
        assert session.shell.run(line).exit_code == 0, line
    answer = session.shell.run(lines[-1])
    assert (answer.exit_code, answer.status) == (0, [200, 200]), answer
    assert answer.body["text"].startswith("ocrvault sample page"), answer.output
    assert answer.body["declared_type_mismatch"] is None


# (what, README text, its broken form, what the failure must name)
BREAKAGES = [
    ("a wrong route", '"$URL/v1/read:sync"', '"$URL/v1/read:synk"', "read:synk"),
    ("a wrong status comment", "# -> 202", "# -> 200", "status [202]"),
    ("a Python name never defined", 'os.environ["KEY"]', "key", "NameError"),
]


@pytest.mark.parametrize(("what", "old", "new", "named"), BREAKAGES,
                         ids=[b[0] for b in BREAKAGES])
def test_a_broken_example_fails(session: Session, what: str, old: str, new: str,
                                named: str) -> None:
    text = README.read_text()
    assert old in text, what
    broken = text.replace(old, new, 1)
    before = {e.source for e in examples(text)}
    [changed] = [e for e in examples(broken) if e.source not in before]
    with pytest.raises(AssertionError, match=re.escape(named)):
        run_example(session, changed)
