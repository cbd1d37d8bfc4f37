"""The ``ocrvault`` command: serve the API, OCR files locally, administer tenants.

Errors reach the user here as one line and an exit code (2: the input or a
parameter, 1: anything else), never as a traceback.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ocrvault.access.service import AccessService
from ocrvault.config import Settings
from ocrvault.errors import InputRejected, OcrVaultError
from ocrvault.model import Document

app = typer.Typer(help="ocrvault: self-hosted OCR that passes a security review.",
                  no_args_is_help=True, add_completion=False)
admin = typer.Typer(help="Tenants and keys on the data dir named by OCRVAULT_DATA_DIR.",
                    no_args_is_help=True)
app.add_typer(admin, name="admin")

out = Console()
err = Console(stderr=True)

SAMPLE_HINT = "../shared/corpus/ocr/tess_phototest.tif"


def _fail(error: OcrVaultError) -> typer.Exit:
    err.print(f"[red]error[/red] {error.code.value}: {error.detail}")
    return typer.Exit(2 if isinstance(error, InputRejected) else 1)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _issue_admin_key(settings: Settings, tenant: str) -> str:
    from ocrvault.store.db import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
        return AccessService(db).bootstrap_tenant(tenant).secret
    finally:
        db.dispose()


def _print_key(key: str, tenant: str, base_url: str | None = None) -> None:
    out.print(f"\nAdmin API key for tenant [bold]{tenant}[/bold] (shown once; store it now):")
    out.print(f"  [bold green]{key}[/bold green]\n", soft_wrap=True)
    if base_url:
        out.print("Try it:", soft_wrap=True)
        out.print(
            f"  curl -s -X POST '{base_url}/v1/read:sync' -H 'Authorization: Bearer {key}' "
            f"--data-binary @{SAMPLE_HINT}\n",
            soft_wrap=True, highlight=False,
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default OCRVAULT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OCRVAULT_PORT)")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain for HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS")] = None,
    behind_proxy: Annotated[bool, typer.Option(help="Allow plain HTTP on a non-loopback "
                                               "address because a TLS proxy fronts it")] = False,
) -> None:
    """Serve the API (and its workers and reaper) on the embedded default."""
    import uvicorn

    from ocrvault.api.app import create_app
    from ocrvault.runtime import Runtime

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    if (tls_cert is None) != (tls_key is None):
        err.print("[red]error[/red] give both --tls-cert and --tls-key, or neither.")
        raise typer.Exit(2)
    if tls_cert is None and not behind_proxy and not _is_loopback(host):
        err.print(f"[red]error[/red] refusing plain HTTP on {host}: documents would cross the "
                  "network unencrypted. Give --tls-cert/--tls-key, or --behind-proxy if a TLS "
                  "proxy fronts this address.")
        raise typer.Exit(2)
    scheme = "https" if tls_cert else "http"
    base_url = f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runtime = Runtime.build(settings)
    if not runtime.access.has_tenants():
        _print_key(runtime.access.bootstrap_tenant("default").secret, "default", base_url)
    out.print(f"ocrvault serving on {base_url}  (docs: {base_url}/docs, data: "
              f"{settings.data_dir.resolve()})", soft_wrap=True)
    uvicorn.run(
        create_app(runtime), host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        proxy_headers=behind_proxy, server_header=False, log_level="info",
    )


@app.command()
def read(
    files: Annotated[list[Path], typer.Argument(help="Images or PDFs", exists=True,
                                                dir_okay=False, readable=True)],
    fmt: Annotated[str, typer.Option("--format", help="json or text")] = "text",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write <name>.<fmt> here "
                                                  "instead of printing")] = None,
    languages: Annotated[str, typer.Option(help="Language codes joined by '+'")] = "eng",
    pages: Annotated[str | None, typer.Option(help="Pages, e.g. '1-3,5'")] = None,
) -> None:
    """OCR files locally, without a server (nothing is stored)."""
    from ocrvault.jobs.params import ReadParams
    from ocrvault.runtime import build_pipeline

    if fmt not in ("json", "text"):
        err.print("[red]error[/red] --format is 'json' or 'text'.")
        raise typer.Exit(2)
    settings = Settings()
    pipeline = build_pipeline(settings)
    failures = 0
    try:
        params = ReadParams.parse(languages, pages, None, pipeline.engine.languages())
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            files_task = progress.add_task("files", total=len(files))
            for path in files:
                pages_task = progress.add_task(f"  {path.name}", total=None)

                def advance(done: int, total: int, task: int = pages_task) -> None:
                    progress.update(task, completed=done, total=total)

                try:
                    data = path.read_bytes()
                    document = pipeline.run(data, pipeline.check(data, params), params, advance)
                except OcrVaultError as error:
                    failures += 1
                    err.print(f"[red]{path}[/red]: {error.code.value}: {error.detail}")
                else:
                    _emit(path, document, fmt, out_dir)
                progress.remove_task(pages_task)
                progress.advance(files_task)
    except OcrVaultError as error:
        raise _fail(error) from None
    finally:
        pipeline.ingestor.sandbox.close()
    if failures:
        raise typer.Exit(2)


def _emit(path: Path, document: Document, fmt: str, out_dir: Path | None) -> None:
    text = (json.dumps(document.model_dump(mode="json"), ensure_ascii=False, indent=2)
            if fmt == "json" else document.text)
    if out_dir is None:
        sys.stdout.write(text + "\n")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{path.stem}.{'json' if fmt == 'json' else 'txt'}").write_text(text, "utf-8")


@admin.command("bootstrap")
def bootstrap(tenant: Annotated[str, typer.Option(help="Tenant name")] = "default") -> None:
    """Create the tenant if needed and print a new admin key for it, once."""
    try:
        key = _issue_admin_key(Settings(), tenant)
    except OcrVaultError as error:
        raise _fail(error) from None
    _print_key(key, tenant)
