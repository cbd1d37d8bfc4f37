"""Looking for what a document left behind: bytes of it under a directory, blobs of a job."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

WINDOW = 32
_SAMPLED_WINDOWS = 4000


def files_under(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def distinctive_window(data: bytes, size: int = WINDOW) -> bytes | None:
    """The ``size``-byte stretch of ``data`` with the most different byte values.

    A run of zeros or a common header would also match unrelated files; a stretch rich in
    distinct bytes occurs by chance nowhere else. Files shorter than 16 bytes have none.
    """
    if len(data) < 16:
        return None
    if len(data) <= size:
        return data
    step = max(1, (len(data) - size) // _SAMPLED_WINDOWS)
    best = max(range(0, len(data) - size + 1, step),
               key=lambda start: len(set(data[start:start + size])))
    return data[best:best + size]


def found_under(root: Path, needles: Iterable[bytes]) -> list[str]:
    """``file: needle`` for every needle found in a file under ``root``."""
    wanted = [needle for needle in needles if needle]
    hits = []
    for path in files_under(root):
        try:
            content = path.read_bytes()
        except OSError:  # removed while we walked (a journal, a temp file)
            continue
        hits += [f"{path.relative_to(root)}: {needle[:16]!r}" for needle in wanted
                 if needle in content]
    return hits


def blob_files(blob_dir: Path) -> set[str]:
    """Every stored object, as ``tenant/job/kind`` (temp files of writes in progress too)."""
    if not blob_dir.exists():
        return set()
    return {str(path.relative_to(blob_dir)) for path in files_under(blob_dir)}
