"""The decode sandbox: whatever a decoder does, only its child process pays for it."""

from __future__ import annotations

import enum
import errno
import io
import os
import pickle
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sandbox_targets as targets

from ocrvault.errors import (
    ErrorCode,
    InputRejected,
    IntegrityError,
    OcrVaultError,
    ProcessingError,
)
from ocrvault.ingest import Sandbox
from ocrvault.ingest.sandbox import _ReplyUnpickler
from ocrvault.ingest.types import FileFormat

MEMORY = 256 * 2**20


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(memory_bytes=MEMORY, cpu_seconds=10, timeout_seconds=10) as box:
        yield box


def assert_code(error: pytest.ExceptionInfo[OcrVaultError], code: ErrorCode) -> None:
    assert error.value.code is code, error.value.detail


def test_call_returns_the_result_and_reuses_the_child(sandbox: Sandbox) -> None:
    first = sandbox.call(targets.child_pid)
    assert first != os.getpid()
    assert sandbox.call(targets.child_pid) == first


def test_call_iter_streams_items_in_order_from_one_child(sandbox: Sandbox) -> None:
    items = list(sandbox.call_iter(targets.numbered, 3))
    assert [index for index, _ in items] == [0, 1, 2]
    assert len({pid for _, pid in items}) == 1


def test_child_errors_are_reraised_with_their_class_code_and_detail(sandbox: Sandbox) -> None:
    with pytest.raises(InputRejected) as rejected:
        sandbox.call(targets.reject)
    assert (rejected.value.code, rejected.value.detail) == (ErrorCode.IMAGE_TOO_LARGE, "too wide")
    with pytest.raises(IntegrityError):
        sandbox.call(targets.integrity_failure)


def test_an_error_mid_stream_arrives_after_the_items_before_it(sandbox: Sandbox) -> None:
    received = []
    with pytest.raises(InputRejected) as rejected:
        received.extend(sandbox.call_iter(targets.one_then_reject))
    assert received == [1]
    assert rejected.value.detail == "page 2 is damaged"


def test_an_unexpected_exception_is_a_processing_failure_and_the_child_serves_on(
    sandbox: Sandbox,
) -> None:
    pid = sandbox.call(targets.child_pid)
    with pytest.raises(ProcessingError) as failed:
        sandbox.call(targets.bug)
    assert_code(failed, ErrorCode.PROCESSING_FAILED)
    assert "KeyError" in failed.value.detail
    assert sandbox.call(targets.child_pid) == pid


def test_allocating_past_the_memory_cap_ends_only_the_child(sandbox: Sandbox) -> None:
    pid = sandbox.call(targets.child_pid)
    with pytest.raises(InputRejected) as rejected:
        sandbox.call(targets.allocate, 2 * MEMORY)
    assert_code(rejected, ErrorCode.CORRUPT_FILE)
    assert "memory" in rejected.value.detail
    assert sandbox.call(targets.allocate, 1024) == 1024
    assert sandbox.call(targets.child_pid) != pid


def test_a_segfault_ends_only_the_child(sandbox: Sandbox) -> None:
    pid = sandbox.call(targets.child_pid)
    with pytest.raises(InputRejected) as rejected:
        sandbox.call(targets.segfault)
    assert_code(rejected, ErrorCode.CORRUPT_FILE)
    assert "crashed" in rejected.value.detail
    assert sandbox.call(targets.child_pid) not in {pid, os.getpid()}


def test_a_child_past_the_wall_clock_timeout_is_killed_and_replaced() -> None:
    with Sandbox(memory_bytes=MEMORY, cpu_seconds=60, timeout_seconds=1) as box:
        pid = box.call(targets.child_pid)
        with pytest.raises(InputRejected) as rejected:
            box.call(targets.block)
        assert_code(rejected, ErrorCode.PROCESSING_TIMEOUT)
        assert box.call(targets.child_pid) != pid


def test_a_stream_that_stops_producing_times_out() -> None:
    with Sandbox(memory_bytes=MEMORY, cpu_seconds=60, timeout_seconds=1) as box:
        stream = box.call_iter(targets.one_then_spin)
        assert next(stream) == 1
        with pytest.raises(InputRejected) as rejected:
            next(stream)
        assert_code(rejected, ErrorCode.PROCESSING_TIMEOUT)


def test_a_child_past_its_cpu_budget_is_stopped_by_the_kernel() -> None:
    with Sandbox(memory_bytes=MEMORY, cpu_seconds=1, timeout_seconds=60) as box:
        with pytest.raises(InputRejected) as rejected:
            box.call(targets.spin)
        assert_code(rejected, ErrorCode.PROCESSING_TIMEOUT)
        assert "CPU" in rejected.value.detail
        assert box.call(targets.allocate, 1) == 1


def test_a_child_cannot_write_a_file(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "leak.txt"
    assert sandbox.call(targets.write_file, str(target)) == errno.EFBIG
    assert not target.exists() or target.stat().st_size == 0


def test_child_output_never_reaches_the_services_logs(
    sandbox: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    sandbox.call(targets.chatter, "canary 48.8583N")
    captured = capfd.readouterr()
    assert "canary" not in captured.out + captured.err


def test_children_run_under_fixed_memory_file_and_core_limits(sandbox: Sandbox) -> None:
    limits = sandbox.call(targets.limits)
    assert limits["RLIMIT_AS"] == (MEMORY, MEMORY)
    assert limits["RLIMIT_FSIZE"] == (0, 0)
    assert limits["RLIMIT_CORE"] == (0, 0)
    assert limits["RLIMIT_CPU"][0] > 0


def test_children_do_not_inherit_the_parents_sockets() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener_target = os.readlink(f"/proc/self/fd/{listener.fileno()}")
        with Sandbox(memory_bytes=MEMORY, cpu_seconds=10, timeout_seconds=10) as box:
            assert listener_target not in box.call(targets.open_file_targets)


def test_a_reply_that_would_run_code_in_the_parent_is_refused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ProcessingError) as refused:
        sandbox.call(targets.trap, str(marker))
    assert_code(refused, ErrorCode.PROCESSING_FAILED)
    assert not marker.exists()
    assert sandbox.call(targets.allocate, 1) == 1


def test_an_abandoned_stream_retires_its_child(sandbox: Sandbox) -> None:
    stream = sandbox.call_iter(targets.numbered, 10)
    _, pid = next(stream)
    stream.close()
    assert sandbox.call(targets.child_pid) != pid


def test_concurrent_callers_share_a_pool_of_at_most_size_children() -> None:
    with Sandbox(memory_bytes=MEMORY, cpu_seconds=10, timeout_seconds=10, size=2) as box:
        pids: list[int] = []

        def work() -> None:
            pids.extend(pid for _, pid in box.call_iter(targets.numbered, 5))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(pids) == 20
        assert len(set(pids)) in (1, 2)  # never more children than the pool size


def test_close_stops_the_children_and_refuses_new_calls() -> None:
    box = Sandbox(memory_bytes=MEMORY, cpu_seconds=10, timeout_seconds=10)
    pid = box.call(targets.child_pid)
    box.close()
    assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(RuntimeError):
        box.call(targets.child_pid)


class _EarlyPython311Pickler(pickle.Pickler):
    """Pickles an enum member as Python 3.11.0-3.11.4 do (Debian bookworm's 3.11.2 among
    them): ``getattr(cls, name)``, not ``cls(value)``."""

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, enum.Enum):
            return getattr, (type(obj), obj.name)
        return NotImplemented


def _as_early_python_311(value: object) -> bytes:
    buffer = io.BytesIO()
    _EarlyPython311Pickler(buffer, protocol=5).dump(value)
    return buffer.getvalue()


def test_an_enum_member_pickled_by_name_is_accepted_in_a_reply() -> None:
    reply = _as_early_python_311(("value", FileFormat.PDF))
    assert b"getattr" in reply
    assert _ReplyUnpickler(io.BytesIO(reply)).load() == ("value", FileFormat.PDF)


@pytest.mark.parametrize("name", ["__class__", "__init_subclass__", "_missing_", "pdf"])
def test_getattr_in_a_reply_reaches_enum_members_only(name: str) -> None:
    reply = pickle.dumps(_Call(FileFormat, name), protocol=5)
    with pytest.raises(pickle.UnpicklingError):
        _ReplyUnpickler(io.BytesIO(reply)).load()


class _Call:
    """Pickles as the call ``getattr(cls, name)``, to check what the parent resolves."""

    def __init__(self, cls: type, name: str) -> None:
        self.cls, self.name = cls, name

    def __reduce__(self) -> tuple[object, tuple[type, str]]:
        return getattr, (self.cls, self.name)


def test_a_reply_may_hold_ocrvaults_named_tuples_but_no_other_class_of_its_modules() -> None:
    from ocrvault.ingest.pdftext import TextWord

    word = TextWord("word", (1.0, 2.0, 3.0, 4.0))
    reply = pickle.dumps(("value", word), protocol=5)
    assert _ReplyUnpickler(io.BytesIO(reply)).load() == ("value", word)
    # A class of ocrvault's that is neither a dataclass, an enum nor a named tuple (its
    # constructor could do anything) is refused.
    with pytest.raises(pickle.UnpicklingError):
        _ReplyUnpickler(io.BytesIO(pickle.dumps(_Builds(Sandbox), protocol=5))).load()


class _Builds:
    """Pickles as the call ``cls()``, to check which classes the parent would build."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return self.cls, ()
