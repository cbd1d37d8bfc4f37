"""Module-level functions for the sandbox tests: a spawned child imports them by name."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from ocrvault.errors import ErrorCode, InputRejected, IntegrityError


def child_pid() -> int:
    return os.getpid()


def numbered(count: int) -> Iterator[tuple[int, int]]:
    """Yields (index, pid) ``count`` times."""
    for index in range(count):
        yield index, os.getpid()


def one_then_reject() -> Iterator[int]:
    yield 1
    raise InputRejected(ErrorCode.CORRUPT_FILE, "page 2 is damaged")


def one_then_spin() -> Iterator[int]:
    yield 1
    spin()


def reject() -> None:
    raise InputRejected(ErrorCode.IMAGE_TOO_LARGE, "too wide")


def integrity_failure() -> None:
    raise IntegrityError()


def bug() -> None:
    raise KeyError("a bug in our own code")


def allocate(size: int) -> int:
    return len(bytearray(size))


def spin() -> None:
    while True:
        pass


def block() -> None:
    """Waits forever without using CPU: only the wall-clock timeout can end it."""
    signal.pause()


def segfault() -> None:
    ctypes.string_at(0)


def write_file(path: str) -> int:
    """The errno of writing to ``path``, or 0 if the write went through."""
    try:
        Path(path).write_bytes(b"document text")
    except OSError as error:
        return error.errno or -1
    return 0


def chatter(text: str) -> None:
    """Writes ``text`` the ways a decoder might: Python output and raw stderr."""
    print(text)
    os.write(2, text.encode())


def limits() -> dict[str, tuple[int, int]]:
    return {
        name: resource.getrlimit(getattr(resource, name))
        for name in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_CPU")
    }


def open_file_targets() -> list[str]:
    """What each of the child's file descriptors points at (pipes, sockets, files)."""
    fd_dir = Path("/proc/self/fd")
    targets = []
    for fd in fd_dir.iterdir():
        try:
            targets.append(os.readlink(fd))
        except FileNotFoundError:  # the descriptor iterdir itself used
            continue
    return targets


class _Trap:
    """Unpickling this runs ``os.mkdir(path)``: what an exploited child might send back."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.path,)


def trap(path: str) -> _Trap:
    return _Trap(path)


def held(document: bytes) -> tuple[bytes, int]:
    """The document the child keeps for this call, and which child it is."""
    return document, os.getpid()


def main_script() -> str | None:
    """The script run as this process's main module; None for the forkserver's own."""
    import sys

    return getattr(sys.modules["__main__"], "__file__", None)


def held_slowly(document: bytes, seconds: float) -> int:
    """Works ``seconds`` on the kept document (a slow page of it)."""
    import time

    time.sleep(seconds)
    return len(document)


class _Parsed:
    """Stands for a parsed document in the held memo; says when it is closed."""

    closed: list[str] = []  # a record the child keeps across calls

    def __init__(self, document: bytes) -> None:
        self.document = document

    def close(self) -> None:
        _Parsed.closed.append(self.document.decode())


def memo_parse(document: bytes) -> tuple[int, list[str]]:
    """Parses the kept document at its first call only: how many calls this parse has
    served, and the documents whose parse was closed so far."""
    from ocrvault.ingest.sandbox import held_memo

    memo = held_memo()
    assert memo is not None
    memo.setdefault("parsed", _Parsed(document))
    memo["calls"] = memo.get("calls", 0) + 1
    return memo["calls"], list(_Parsed.closed)


def memo_outside_a_held_call() -> bool:
    from ocrvault.ingest.sandbox import held_memo

    return held_memo() is None


def pillow_formats_loaded() -> bool:
    """Whether this process has every Pillow format plugin loaded before its first image."""
    from PIL import Image

    return bool(Image._initialized >= 2)


_remembered: list[str] = []


def remember(value: str) -> None:
    """Kept in this child's memory, for :func:`remembered_slowly` to return."""
    _remembered.append(value)


def remembered_slowly(seconds: float) -> tuple[list[str], int]:
    """What this child was told to remember, and its pid, after ``seconds`` (so that two
    calls at once run in two children)."""
    time.sleep(seconds)
    return list(_remembered), os.getpid()
