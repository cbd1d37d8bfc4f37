"""``ocrvault serve`` as a real subprocess on a free loopback port, for end-to-end tests.

Its output (stdout and stderr together) is collected by a thread, so a test can wait for
a line with a deadline while the server keeps running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.servers import free_port

SRC = Path(__file__).resolve().parents[2] / "src"


class LiveServer:
    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "500",
                       "OCRVAULT_DATA_DIR": str(data_dir), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ocrvault", "serve", "--port", str(self.port), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=environment,
        )
        self._output: list[str] = []
        self._ended = False  # the server closed its output
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self._output.append(raw.decode(errors="replace"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._output)

    def wait_for_output(self, text: str, timeout: float = 60) -> str:
        """The output so far, once it holds ``text``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in (output := "".join(self._output)):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._ended:
                    raise AssertionError(f"no {text!r} in the server's output:\n{output}")
                self._changed.wait(remaining)
            return output

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server ended:\n{self.output}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer within {timeout}s:\n{self.output}")

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def wait_exit(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s:\n{self.output}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._reader.join(30)  # to the end of the output, then close the pipe
        assert self.process.stdout is not None
        self.process.stdout.close()
