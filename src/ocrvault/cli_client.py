"""``ocrvault submit``: send files to a running server with the Python client, and with
``--wait`` show a progress bar until each job has finished, then print its text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def submit(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True,
                                                help="Files to OCR")],
    url: Annotated[str, typer.Option(envvar="OCRVAULT_URL", help="The server's base URL")]
    = "http://127.0.0.1:8080",
    key: Annotated[str, typer.Option(envvar="OCRVAULT_API_KEY", show_default=False,
                                     help="An API key with read:submit (and jobs:read to "
                                     "--wait)")] = "",
    wait: Annotated[bool, typer.Option(help="Wait for each job and print its text")] = False,
    languages: Annotated[str | None, typer.Option(help="e.g. eng+deu")] = None,
    pages: Annotated[str | None, typer.Option(help="e.g. 1-3,5")] = None,
) -> None:
    """Submit files to a running server; prints each job id, or with --wait its text."""
    # Imported here, not with the CLI: a server started by ``ocrvault serve`` has no use
    # for the HTTP client, which would cost it some 9 MB of memory.
    import httpx

    from ocrvault.client import ApiError, Client, progress_bar

    if not key:
        err.print("[red]error[/red] give --key or set OCRVAULT_API_KEY.")
        raise typer.Exit(2)
    failed = False
    with Client(url, key) as client:
        for path in files:
            try:
                job = client.submit(path, languages=languages, pages=pages)
                if not wait:
                    print(f"{path}\t{job.id}")
                    continue
                with progress_bar(err) as show:
                    done = client.wait(job.id, progress=show)
            except ApiError as error:
                err.print(f"[red]error[/red] {escape(str(path))}: {error.code}: "
                          f"{escape(error.detail)}", soft_wrap=True)
                failed = True
                continue
            except httpx.TransportError as error:
                err.print(f"[red]error[/red] cannot reach {escape(url)}: "
                          f"{escape(str(error) or type(error).__name__)}", soft_wrap=True)
                raise typer.Exit(1) from None
            if done.error is not None:
                err.print(f"[red]failed[/red] {escape(str(path))}: {done.error.code}: "
                          f"{escape(done.error.detail)}", soft_wrap=True)
                failed = True
            elif done.result is not None:
                sys.stdout.write(done.result.text + "\n")
    if failed:
        raise typer.Exit(1)
