"""A small pool of long-lived child processes that run decoders on hostile bytes.

Pillow's codecs, libtiff, libwebp and pdfium are native code: a crafted file can crash
them, make them allocate without bound, or keep them busy forever. The process that
serves requests must survive all of that, so decoding runs in a child process with:

* ``RLIMIT_AS`` = ``memory_bytes``: an allocation past it fails (``MemoryError`` in
  Python, a crash in native code) and only the child ends;
* ``RLIMIT_CPU``, set before each call to the CPU time used so far plus
  ``cpu_seconds``: the kernel stops a child that spins (SIGXCPU);
* a wall-clock timeout kept by the parent, for a child that is stuck without spinning;
* ``RLIMIT_FSIZE`` = 0 and ``RLIMIT_CORE`` = 0: not one byte of a file, and no core
  dump (which would hold the document), can be written;
* stdout and stderr on ``/dev/null``: native decoders print warnings there that may
  quote bytes of the file, and the service's output ends up in logs.

A child that crashes, runs out of memory or time is killed; the next call starts a
fresh one. The pool holds at most ``size`` children (the owner sizes it by its worker
threads), :meth:`Sandbox.warm` starts them all before the first request needs one, and a
child is replaced after ``recycle_after`` calls: decoders keep the heap of the largest
page they ever drew (malloc rarely gives it back), so a long-lived child would otherwise
stay at its worst document's size.

A document read page by page (:meth:`Sandbox.call_with`) is sent to a child once: the
child keeps the last document it was given under a key, the parent remembers which
child holds which key and hands that child the next page, and :meth:`Sandbox.release`
drops the document from every idle child when the job is done.

Children are forked from a "forkserver": a fresh single-threaded interpreter that
preloads the decoders (ingest, Pillow and its format plugins, pdfium: ingest/preload.py),
so a child inherits no threads, locks, sockets or file descriptors of the multi-threaded
parent (plain fork would copy them all) and shares the decoder modules copy-on-write.
Like any spawned child, each would still import the parent's main script as
``__mp_main__`` (under the ``ocrvault`` command, ``ocrvault.cli`` and with it the whole
service: about 1.5 s and the service's modules' memory a child); the children run
nothing from it, so they are started without it (:class:`_LeanProcess`).

The parent does not trust what comes back: replies are unpickled against an allow-list
(ocrvault's own dataclasses and enums, builtin values), so a child taken over by an
exploit cannot make the parent run code, and a reply may not exceed ``memory_bytes``.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import math
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from multiprocessing import popen_forkserver, spawn
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, ForkServerProcess
from typing import Any, TypeVar, cast

from ocrvault.errors import ErrorCode, InputRejected, OcrVaultError, ProcessingError
from ocrvault.memory import release_free_memory

T = TypeVar("T")

_CALL = "call"
_ITER = "iter"
_HELD = "held"  # a call on the document the child keeps
_NEXT = "next"
_FORGET = "forget"  # drop the kept document
_END = object()  # a stream's end, on both sides of the pipe
_READY = b"ready"
_START_SECONDS = 60.0
_EXIT_OUT_OF_MEMORY = 86
_EXIT_GRACE_SECONDS = 5.0  # for a child that closed its pipe to finish exiting
_CHILD_NAME = "ocrvault-decode"
RECYCLE_AFTER = 200  # calls (a page read with call_with is one); see the module docstring


class Sandbox:
    """Runs module-level functions in up to ``size`` child processes, one call per child.

    Thread-safe: each call leases a child for its duration, so up to ``size`` calls run
    at once and further callers wait. A thread must not hold two calls at once (for
    example, call inside a ``call_iter`` loop) unless ``size`` allows for it.
    """

    def __init__(
        self, memory_bytes: int, cpu_seconds: int, timeout_seconds: float, size: int = 1,
        recycle_after: int = RECYCLE_AFTER,
    ) -> None:
        if size < 1:
            raise ValueError("a sandbox needs at least one child process")
        if recycle_after < 1:
            raise ValueError("a child must be allowed at least one call")
        self.size = size
        self._recycle_after = recycle_after
        self._memory_bytes = memory_bytes
        self._cpu_seconds = cpu_seconds
        self._timeout_seconds = timeout_seconds
        self._context = multiprocessing.get_context("forkserver")
        # Only takes effect before the server starts, i.e. for the first Sandbox.
        self._context.set_forkserver_preload(["ocrvault.ingest.preload"])
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._closed = False

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a child and return its result; ``fn`` must be module-level."""
        with self._lease() as child:
            result = child.exchange((_CALL, fn, args), self.budget())
        return cast(T, result)

    def budget(self) -> Budget:
        """A fresh budget of the sandbox's timeout, for one file."""
        return Budget(self._timeout_seconds)

    def call_with(self, key: str, document: bytes, fn: Callable[..., T], *args: object,
                  budget: Budget | None = None) -> T:
        """Run ``fn(document, *args)`` in a child, which keeps ``document`` under ``key``:
        a later call with the same key goes to that child if it is free, and the document
        does not cross the pipe again. ``key`` must name these exact bytes. Pass every
        call on one document the same ``budget``: the timeout bounds the whole file,
        not each page of it."""
        with self._lease(key) as child:
            sent = None if child.holds == key else document
            child.holds = None  # until the child confirms it has it
            result = child.exchange((_HELD, key, sent, fn, args), budget or self.budget())
            child.holds = key
        return cast(T, result)

    def release(self, key: str) -> None:
        """Drop the document kept under ``key`` from every idle child (a child at work on
        another call drops it with its next document)."""
        # Each child taken out of the idle list holds a slot meanwhile, as a call's does,
        # so that no caller starts a child beyond ``size`` in its place. No free slot
        # means no idle child at all.
        while self._slots.acquire(blocking=False):
            try:
                with self._lock:
                    child = next((c for c in self._idle if c.holds == key), None)
                    if child is None:
                        return
                    self._idle.remove(child)
                try:
                    child.exchange(_FORGET, self.budget())
                except OcrVaultError:
                    continue  # it is stopped: what it held went with it
                child.holds = None
                self._checkin(child)
            finally:
                self._slots.release()

    def warm(self, rehearsal: Callable[..., object] | None = None, *args: object) -> None:
        """Start every child the pool may hold, so that no request waits for one. With
        ``rehearsal``, each new child first runs ``rehearsal(*args)`` (on harmless input):
        a process's first call pays one-time costs (a decoder's first use, the reply's
        first pickling) that would otherwise fall on the first requests after start."""
        with self._lock:
            missing = self.size - len(self._idle)
        started = []
        try:
            for _ in range(missing):
                if not self._slots.acquire(blocking=False):
                    break  # the rest are at work, so already started
                started.append(self._start_child())
            if rehearsal is not None:
                for child in started:
                    child.exchange((_CALL, rehearsal, args), self.budget())
        finally:
            for child in started:
                self._checkin(child)
                self._slots.release()

    def children(self) -> int:
        """How many children are idle now (for tests and metrics)."""
        with self._lock:
            return len(self._idle)

    def call_iter(self, fn: Callable[..., Iterator[T]], *args: object) -> Iterator[T]:
        """Run the module-level generator ``fn(*args)`` in a child, one item per request.

        The child computes an item only when the caller asks for it, so neither process
        holds more than one item. The timeout bounds the child's working time over the
        whole iteration; the caller's time between items does not count.
        """
        with self._lease() as child:
            budget = self.budget()
            request: object = (_ITER, fn, args)
            try:
                while (item := child.exchange(request, budget)) is not _END:
                    yield cast(T, item)
                    request = _NEXT
            except GeneratorExit:
                child.stop()  # it still holds the abandoned generator
                raise

    def close(self) -> None:
        """Stop every child; calls in progress stop theirs when they finish."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _lease(self, key: str | None = None) -> Iterator[_Child]:
        with self._slots:
            child = self._checkout(key)
            try:
                yield child
            finally:
                child.calls += 1
                self._checkin(child)

    def _checkout(self, key: str | None) -> _Child:
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the sandbox is closed")
                child = self._pick(key)
            if child is None:
                return self._start_child()
            if child.alive:
                return child
            child.stop()  # died while idle, e.g. killed from outside

    def _pick(self, key: str | None) -> _Child | None:
        """The idle child that holds ``key``, else one that holds nothing, else any;
        called under the lock."""
        if not self._idle:
            return None
        for wanted in ((key,) if key is not None else ()) + (None,):
            for index, child in enumerate(self._idle):
                if child.holds == wanted:
                    return self._idle.pop(index)
        return self._idle.pop()

    def _start_child(self) -> _Child:
        return _Child(self._context, self._memory_bytes, self._cpu_seconds)

    def _checkin(self, child: _Child) -> None:
        with self._lock:
            if child.alive and not self._closed and child.calls < self._recycle_after:
                self._idle.append(child)
                return
        child.stop()


def _counted(reason: str | None) -> None:
    """A child started (``None``) or stopped on a file (``reason``), for the metrics.
    Imported here, in the parent: a child must not load the metrics, which in
    multiprocess mode write a file per process."""
    from ocrvault.telemetry import metrics

    if reason is None:
        metrics.SANDBOX_RESTARTS.inc()
    else:
        metrics.SANDBOX_KILLS.labels(reason=reason).inc()


class Budget:
    """Wall-clock seconds that children may still spend working on one file: one call,
    one stream, or every page of a document read with :meth:`Sandbox.call_with` (whose
    pages may be decoded in several children at once: each spends from it)."""

    def __init__(self, seconds: float) -> None:
        self.limit = seconds
        self._left = seconds
        self._lock = threading.Lock()

    @property
    def left(self) -> float:
        with self._lock:
            return self._left

    def spend(self, seconds: float) -> None:
        with self._lock:
            self._left -= seconds


class _Child:
    """One sandbox process and the parent's end of its pipe; used by one thread at a time."""

    def __init__(self, context: ForkServerContext, memory_bytes: int, cpu_seconds: int) -> None:
        self._memory_bytes = memory_bytes
        self._cpu_seconds = cpu_seconds
        self.calls = 0
        self.holds: str | None = None  # the key of the document it keeps
        self._conn, child_conn = context.Pipe()
        self._process = _LeanProcess(
            target=_serve,
            args=(child_conn, memory_bytes, cpu_seconds),
            name=_CHILD_NAME,
            daemon=True,
        )
        self._process.start()
        _counted(None)
        child_conn.close()
        self._stopped = False
        # Wait for the limits to be in place, so start-up never counts against a file's budget.
        try:
            ready = self._conn.poll(_START_SECONDS) and self._conn.recv_bytes() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise ProcessingError(
                ErrorCode.PROCESSING_FAILED, "The decode sandbox could not start a child process."
            )

    @property
    def alive(self) -> bool:
        return not self._stopped and self._process.is_alive()

    def exchange(self, request: object, budget: Budget) -> object:
        """Send one request and return the decoded reply, within what is left of ``budget``."""
        try:
            self._conn.send(request)
        except OSError:
            raise self._lost() from None
        started = time.monotonic()
        ready = wait([self._conn, self._process.sentinel], timeout=max(budget.left, 0.0))
        budget.spend(time.monotonic() - started)
        if not ready:
            self.stop()
            _counted("timeout")
            raise InputRejected(
                ErrorCode.PROCESSING_TIMEOUT,
                f"Decoding did not finish within {budget.limit:g} s. "
                "Send a smaller file, fewer pages or a lower resolution.",
            )
        if self._conn not in ready:
            raise self._lost()
        try:
            reply = self._conn.recv_bytes(self._memory_bytes)
        except EOFError:
            raise self._lost() from None
        except OSError:  # longer than any honest child could produce
            raise self._refuse() from None
        return self._decode(reply)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._process.kill()
        self._process.join()
        self._process.close()
        self._conn.close()

    def _decode(self, reply: bytes) -> object:
        try:
            message = _ReplyUnpickler(io.BytesIO(reply)).load()
        except Exception:  # the pickle machinery fails in many ways on bad input
            raise self._refuse() from None
        match message:
            case ("value", value):
                return value
            case ("end",):
                return _END
            case ("error", str(name), str(code), str(detail)) if code in _ERROR_CODES:
                raise _rebuild_error(name, ErrorCode(code), detail)
            case ("failed", str(name)):
                raise ProcessingError(
                    ErrorCode.PROCESSING_FAILED,
                    f"Decoding failed unexpectedly ({name}). This is a bug in ocrvault; "
                    "please report it.",
                )
        raise self._refuse()

    def _lost(self) -> InputRejected:
        """The child died: find out why, and word it for the caller."""
        self._process.join(_EXIT_GRACE_SECONDS)
        exitcode = self._process.exitcode
        self.stop()
        _counted({_EXIT_OUT_OF_MEMORY: "memory", -signal.SIGXCPU: "cpu"}.get(exitcode or 0,
                                                                             "crash"))
        if exitcode == _EXIT_OUT_OF_MEMORY:
            return InputRejected(
                ErrorCode.CORRUPT_FILE,
                f"Decoding needed more than {self._memory_bytes / 2**20:,.0f} MiB of memory. "
                "Send a smaller file or fewer pages.",
            )
        if exitcode == -signal.SIGXCPU:
            return InputRejected(
                ErrorCode.PROCESSING_TIMEOUT,
                f"Decoding used more than {self._cpu_seconds} s of CPU time. "
                "Send a smaller file, fewer pages or a lower resolution.",
            )
        if exitcode is not None and exitcode < 0:
            reason = f"signal {-exitcode}: {signal.strsignal(-exitcode)}"
        else:
            reason = f"exit status {exitcode}"
        return InputRejected(
            ErrorCode.CORRUPT_FILE,
            f"The decoder crashed on this file ({reason}). "
            "Check that the file opens in a viewer, or re-save it.",
        )

    def _refuse(self) -> ProcessingError:
        """The child sent something no honest child sends: treat it as taken over."""
        self.stop()
        _counted("invalid_reply")
        return ProcessingError(ErrorCode.PROCESSING_FAILED, "The decoder sent an invalid reply.")


class _LeanPopen(popen_forkserver.Popen):
    """Starts a forkserver child that does not import the parent's ``__main__``."""

    def _launch(self, process_obj: Any) -> None:
        _lean.active = True
        try:
            super()._launch(process_obj)  # type: ignore[misc]  # private in typeshed
        finally:
            _lean.active = False


class _LeanProcess(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _LeanPopen(process_obj)


_lean = threading.local()  # set while this thread starts a sandbox child
_preparation_data = spawn.get_preparation_data


def _without_main(name: str) -> dict[str, Any]:
    """What a spawned child is told to prepare; for a sandbox child, not the parent's main
    module (nothing it runs lives there). multiprocessing has no switch for it, so its
    lookup is wrapped, for the starting thread only."""
    data: dict[str, Any] = _preparation_data(name)
    if getattr(_lean, "active", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


spawn.get_preparation_data = _without_main


class _ReplyUnpickler(pickle.Unpickler):
    """Resolves only ocrvault's own dataclasses, named tuples and enums, never a function or
    a builtin (``getattr`` stands for a lookup of an enum's member by name, nothing more)."""

    def find_class(self, module_name: str, name: str) -> Any:
        if (module_name, name) == ("builtins", "getattr"):
            return _enum_member  # how Python 3.11.0-3.11.4 (Debian 12's 3.11.2) pickle members
        found = (
            getattr(sys.modules.get(module_name), name, None)
            if module_name.startswith("ocrvault.")
            else None
        )
        if isinstance(found, type) and (
            dataclasses.is_dataclass(found) or issubclass(found, enum.Enum)
            or (issubclass(found, tuple) and hasattr(found, "_fields"))
        ):
            return found
        raise pickle.UnpicklingError(f"refused {module_name}.{name}")


def _enum_member(cls: object, name: object) -> enum.Enum:
    """``getattr(cls, name)`` for a member of an allowed enum, and for nothing else."""
    if (isinstance(cls, type) and issubclass(cls, enum.Enum) and isinstance(name, str)
            and name in cls.__members__):
        return cls[name]
    raise pickle.UnpicklingError(f"refused getattr({cls!r}, {name!r})")


_ERROR_CODES = frozenset(code.value for code in ErrorCode)


def _rebuild_error(name: str, code: ErrorCode, detail: str) -> OcrVaultError:
    """The child's error as the same class: subclasses differ in ``__init__``, so bypass it."""
    classes: list[type[OcrVaultError]] = [OcrVaultError]
    error_class = OcrVaultError
    while classes:
        candidate = classes.pop()
        if candidate.__name__ == name:
            error_class = candidate
            break
        classes.extend(candidate.__subclasses__())
    error = error_class.__new__(error_class)
    OcrVaultError.__init__(error, code, detail)
    return error


# ---- the child's side ------------------------------------------------------------------


def _serve(conn: Connection, memory_bytes: int, cpu_seconds: int) -> None:
    """Child main loop: fix the limits, then answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it stops us
    devnull = os.open(os.devnull, os.O_WRONLY)
    for output_fd in (1, 2):  # stdout, stderr
        os.dup2(devnull, output_fd)
    os.close(devnull)
    for limit, value in (
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
    ):
        capped = _within_hard_limit(limit, value)
        resource.setrlimit(limit, (capped, capped))  # hard too: code in here cannot undo it
    conn.send_bytes(_READY)
    worker = _Worker(cpu_seconds)
    while True:
        try:
            request = conn.recv_bytes()
        except EOFError:
            return
        try:
            reply = _outcome(partial(worker.step, request))
            del request  # a document or a page: gone before the heap is trimmed
            conn.send_bytes(reply)
            del reply
            # While the parent reads the reply: an idle child back at its base size, not
            # its largest page.
            release_free_memory()
        except MemoryError:
            os._exit(_EXIT_OUT_OF_MEMORY)


_held_memo: dict[object, Any] | None = None  # in a child, during a call on its kept document


def held_memo() -> dict[object, Any] | None:
    """In a sandbox child, during a call of :meth:`Sandbox.call_with`: a dict that lives as
    long as the child keeps that document, for what is costly to redo on each of its pages
    (the document parsed once, not once a page); its values are closed (``close()``) when
    the child lets the document go. Anywhere else: None, and nothing is kept."""
    return _held_memo


class _Worker:
    """Runs one request at a time; keeps the generator of a streamed call, and the last
    document of :meth:`Sandbox.call_with` with its :func:`held_memo`, between them."""

    def __init__(self, cpu_seconds: int) -> None:
        self._cpu_seconds = cpu_seconds
        self._stream: Iterator[object] = iter(())
        self._held: tuple[str, bytes] | None = None
        self._memo: dict[object, Any] = {}

    def step(self, request: bytes) -> object:
        global _held_memo
        message = pickle.loads(request)  # noqa: S301 - written by the parent, which is trusted
        if message == _NEXT:
            return next(self._stream, _END)
        if message == _FORGET:
            self._let_go()
            return None
        if message[0] == _HELD:
            _, key, document, fn, args = message
            if document is not None:
                self._let_go()
                self._held = (key, document)
            elif self._held is None or self._held[0] != key:
                raise RuntimeError("asked for a document this child does not hold")
            _set_cpu_budget(self._cpu_seconds)
            _held_memo = self._memo
            try:
                return fn(self._held[1], *args)
            finally:
                _held_memo = None
        kind, fn, args = message
        _set_cpu_budget(self._cpu_seconds)  # after unpickling, which imports fn's module
        if kind == _CALL:
            return fn(*args)
        self._stream = iter(fn(*args))
        return next(self._stream, _END)

    def _let_go(self) -> None:
        """Drop the kept document, and close what was kept of it."""
        self._held = None
        memo, self._memo = self._memo, {}
        _close_all(memo.values())


def _close_all(values: Iterable[Any]) -> None:
    for value in values:  # a parsed document: closed now, not whenever the GC finds it
        close = getattr(value, "close", None)
        if callable(close):
            close()


def _outcome(step: Callable[[], object]) -> bytes:
    """Run one step and pickle what happened; running out of memory is left to the caller."""
    try:
        value = step()
        outcome: tuple[object, ...] = ("end",) if value is _END else ("value", value)
        return pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        raise
    except OcrVaultError as error:
        outcome = ("error", type(error).__name__, error.code.value, error.detail)
    except Exception as error:  # a bug, or a value that cannot be pickled
        outcome = ("failed", type(error).__name__)
    return pickle.dumps(outcome)


def _set_cpu_budget(seconds: int) -> None:
    """Let this call use ``seconds`` more CPU; only the soft limit moves, so it can be reset."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = _within_hard_limit(
        resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime) + seconds
    )
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))


def _within_hard_limit(limit: int, value: int) -> int:
    hard = resource.getrlimit(limit)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)
