"""A rich progress bar for ``wait(..., progress=...)``: pages done of pages total when the
server reports them, else a spinner with the job's status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ocrvault.client.core import Progress as ProgressCallback
from ocrvault.client.models import Job


@contextmanager
def progress_bar(console: Console | None = None) -> Iterator[ProgressCallback]:
    """A callback that draws the job's progress until the block ends (on stderr by default)."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console or Console(stderr=True), transient=True) as bar:
        task = bar.add_task("queued", total=None)

        def show(job: Job) -> None:
            total = job.pages_total or job.page_count
            done = total if job.status.finished else job.pages_done
            bar.update(task, description=f"{job.id} {job.status.value}", total=total,
                       completed=done or 0, refresh=True)

        yield show
