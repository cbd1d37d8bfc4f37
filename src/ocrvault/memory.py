"""Keeping a long-lived process's heap near what it uses (glibc; elsewhere these do nothing).

glibc gives each thread that allocates under contention a heap (an "arena") of its own,
up to eight per core, and each keeps what was freed in it: with OCR threads, request
threads and decode replies of several megabytes each, a server holds many copies of its
largest moments. :func:`limit_heaps` caps the number of arenas (as MALLOC_ARENA_MAX
would); threads then share them, which costs nothing measurable at page-sized
allocations.

glibc also keeps memory that Python and native code (Pillow, pdfium, Tesseract) free in its
heaps for reuse, so after one large page a process stays at that page's size: a decode
child at its largest drawing, a worker at its largest recognition. ``malloc_trim``
returns the free tops and whole free pages of every heap; it takes well under a
millisecond after a page. Elsewhere than glibc it does nothing.

Python's cyclic garbage collector, for its part, walks every container object it tracks
in each full collection, and a server builds hundreds of thousands of them at start
(modules, pydantic schemas, SQLAlchemy, the app) that live as long as it does: with a
page of a thousand words allocating a few thousand more, full collections came often
enough that validating one born-digital page cost three times what it cost without
them. :func:`settle_heap` moves what start-up built out of the collector's way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Callable

_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def _glibc(function: str) -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return found


_TRIM = _glibc("malloc_trim")
_MALLOPT = _glibc("mallopt")


def limit_heaps(arenas: int = 2) -> None:
    """Cap the process's malloc arenas at ``arenas``, unless MALLOC_ARENA_MAX says
    otherwise; call before the threads start."""
    if _MALLOPT is not None and "MALLOC_ARENA_MAX" not in os.environ:
        _MALLOPT(_M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Return the process's freed heap memory to the system (glibc only)."""
    if _TRIM is not None:
        _TRIM(0)


def settle_heap() -> None:
    """Call once start-up is done: what exists now is never walked by the cyclic garbage
    collector again (``gc.freeze``); what is built later is collected as usual."""
    gc.collect()
    gc.freeze()
