"""The decode sandbox as a pool: warmed at start, bounded, children recycled, a document
kept by the child that read a page of it, and children free of the parent's main script."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import sandbox_targets as targets

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest import Sandbox

MEMORY = 1024**3


def pool(size: int = 1, recycle_after: int = 100) -> Sandbox:
    return Sandbox(memory_bytes=MEMORY, cpu_seconds=10, timeout_seconds=10, size=size,
                   recycle_after=recycle_after)


def test_warm_starts_every_child_before_the_first_call_and_calls_start_none() -> None:
    with pool(size=2) as box:
        assert box.children() == 0
        box.warm()
        assert box.children() == 2
        box.warm()  # already full: starts nothing more
        assert box.children() == 2
        first = box.call(targets.child_pid)
        assert box.children() == 2  # the call used a warm child and gave it back
        assert first != os.getpid()


def test_warm_has_each_new_child_rehearse_once_before_any_request() -> None:
    with pool(size=2) as box:
        box.warm(targets.remember, "rehearsed")
        box.warm(targets.remember, "again")  # already full: no child rehearses twice
        with ThreadPoolExecutor(2) as threads:
            answers = list(threads.map(lambda _: box.call(targets.remembered_slowly, 0.5),
                                       range(2)))
    assert [told for told, _ in answers] == [["rehearsed"], ["rehearsed"]]
    assert len({pid for _, pid in answers}) == 2  # both children, each once


def test_a_failed_rehearsal_is_raised_and_leaves_the_pool_usable() -> None:
    with pool(size=2) as box:
        with pytest.raises(InputRejected):
            box.warm(targets.reject)
        assert box.call(targets.child_pid) != os.getpid()


def test_a_child_is_replaced_after_recycle_after_calls() -> None:
    with pool(recycle_after=2) as box:
        pids = [box.call(targets.child_pid) for _ in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_a_kept_document_is_not_sent_again_for_the_same_key() -> None:
    with pool() as box:
        first, pid = box.call_with("job-1", b"page bytes of job 1", targets.held)
        # Same key: the child answers from what it kept (the bytes passed are not sent).
        again, same_pid = box.call_with("job-1", b"not sent", targets.held)
        other, _ = box.call_with("job-2", b"job 2", targets.held)
    assert (first, again, other) == (b"page bytes of job 1", b"page bytes of job 1", b"job 2")
    assert pid == same_pid


def test_the_child_holding_a_key_is_chosen_for_it() -> None:
    with pool(size=2) as box:
        box.warm()
        _, holder = box.call_with("job-1", b"one", targets.held)
        box.call_with("job-2", b"two", targets.held)  # the other child, which holds nothing
        pids = {box.call_with("job-1", b"one", targets.held)[1] for _ in range(4)}
    assert pids == {holder}


def test_release_drops_the_document_from_the_children() -> None:
    with pool() as box:
        box.call_with("job-1", b"old", targets.held)
        box.release("job-1")
        # The child no longer holds it, so the bytes are sent (and kept) again.
        assert box.call_with("job-1", b"new", targets.held)[0] == b"new"


def test_children_do_not_import_the_parents_main_script() -> None:
    with pool() as box:
        assert box.call(targets.main_script) is None


def test_the_pages_of_one_file_share_one_decode_timeout() -> None:
    with Sandbox(memory_bytes=MEMORY, cpu_seconds=10, timeout_seconds=1.0) as box:
        budget = box.budget()
        # Each page alone is well within the timeout; the file's pages together are not.
        assert box.call_with("job", b"file", targets.held_slowly, 0.4, budget=budget) == 4
        assert box.call_with("job", b"file", targets.held_slowly, 0.4, budget=budget) == 4
        with pytest.raises(InputRejected) as error:
            box.call_with("job", b"file", targets.held_slowly, 0.4, budget=budget)
    assert error.value.code is ErrorCode.PROCESSING_TIMEOUT


def test_what_a_child_keeps_of_a_document_lives_as_long_as_the_document() -> None:
    with pool() as box:
        # Three pages of one document: parsed once, the memo seen by each call.
        counts = [box.call_with("job-1", b"one", targets.memo_parse)[0] for _ in range(3)]
        assert counts == [1, 2, 3]
        # Another document: the first one's parse is closed, the memo starts afresh.
        assert box.call_with("job-2", b"two", targets.memo_parse) == (1, ["one"])
        box.release("job-2")
        assert box.call_with("job-1", b"one", targets.memo_parse) == (1, ["one", "two"])
        # A plain call is given no memo: nothing of it is kept.
        assert box.call(targets.memo_outside_a_held_call)


def test_a_new_child_has_every_image_format_loaded_before_its_first_image() -> None:
    """From the forkserver (ingest/preload.py): not imported under a first request."""
    with pool() as box:
        assert box.call(targets.pillow_formats_loaded) is True
