"""The ``ocrvault`` command: serve the API, OCR files locally, administer tenants.

Errors reach the user here as one line and an exit code (2: the input or a
parameter, 1: anything else), never as a traceback.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ocrvault.access.service import AccessService, IssuedKey
from ocrvault.addresses import is_loopback
from ocrvault.audit import (
    Actor,
    AuditAction,
    AuditEvent,
    AuditLog,
    AuditService,
    ChainSigner,
    verify_log,
)
from ocrvault.compose import NodeRole
from ocrvault.config import Settings
from ocrvault.crypto import Keyring, load_keyring
from ocrvault.crypto.master import open_tenant_keys
from ocrvault.datadir import prepare_data_dir, restrict_umask
from ocrvault.errors import InputRejected, OcrVaultError
from ocrvault.logs import configure_logging, install_key_redaction
from ocrvault.memory import settle_heap
from ocrvault.model import Document
from ocrvault.posture.facts import Transport
from ocrvault.store.db import Database
from ocrvault.store.rekey import count_wrapped_under, rewrap_all
from ocrvault.store.repository import TenantRepository
from ocrvault.webhooks.secrets import count_sealed_under, reseal_all

if TYPE_CHECKING:
    from ocrvault.compose.scheduler import SchedulerNode
    from ocrvault.compose.worker import Shutdown, WorkerNode
    from ocrvault.jobs.queue import JobQueue

app = typer.Typer(help="ocrvault: self-hosted OCR that passes a security review.",
                  no_args_is_help=True, add_completion=False)
admin = typer.Typer(help="Tenants and keys on the data dir (--data-dir or OCRVAULT_DATA_DIR).",
                    no_args_is_help=True)
app.add_typer(admin, name="admin")
keys = typer.Typer(help="Master keys: rotate, rewrap data keys, retire old versions.",
                   no_args_is_help=True)
app.add_typer(keys, name="keys")
backup_app = typer.Typer(help="Backups of the database and sealed blobs, never of keys.",
                         no_args_is_help=True)
app.add_typer(backup_app, name="backup")
tenant_app = typer.Typer(help="A tenant's keys: its own KMS key, offboarding.",
                         no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
audit_app = typer.Typer(help="The audit log on the data dir (--data-dir or OCRVAULT_DATA_DIR).",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")

out = Console()
err = Console(stderr=True)

_overrides: dict[str, Any] = {}  # from the global options, for every command's Settings


def _settings() -> Settings:
    return Settings(**_overrides)


def command_hint(settings: Settings, command: str) -> str:
    """``command`` as a line that works from any folder: this install's ``ocrvault`` and the
    data dir, both absolute (a relative data dir would be another one elsewhere)."""
    installed = Path(sys.executable).parent / "ocrvault"
    program = str(installed) if installed.exists() else "ocrvault"
    return (f"{shlex.quote(program)} --data-dir {shlex.quote(str(settings.data_dir.resolve()))} "
            f"{command}")


def _fail(error: OcrVaultError) -> typer.Exit:
    err.print(f"[red]error[/red] {error.code.value}: {error.detail}", soft_wrap=True)
    return typer.Exit(2 if isinstance(error, InputRejected) else 1)


def bind_refusal(host: str, *, tls: bool, behind_proxy: bool) -> str | None:
    """Why serving on ``host`` this way is refused, or None: no plaintext off loopback."""
    if tls or behind_proxy or is_loopback(host):
        return None
    return (f"refusing plain HTTP on {host}: documents would cross the network unencrypted. "
            "Give --tls-cert/--tls-key, or --behind-proxy if a TLS proxy fronts this address.")


@app.callback()
def _everywhere(data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="The data dir (database, blobs, keyring); default "
        "OCRVAULT_DATA_DIR, else ./ocrvault-data of the current folder")] = None) -> None:
    restrict_umask()  # before any command creates a file: the data dir's, or --out's
    install_key_redaction()
    _overrides.clear()
    if data_dir is not None:
        _overrides["data_dir"] = data_dir


def _require_data_dir(settings: Settings, create: bool) -> None:
    """Refuse to make a key in a data dir that does not exist yet, unless asked: a key made in
    a new one by mistake (run from another folder) is one the server rejects."""
    if create or settings.data_dir.exists():
        return
    err.print(f"[red]error[/red] there is no data dir at {settings.data_dir.resolve()}, so a "
              "key made there would not work on a server that uses another one. Name the "
              "server's data dir with --data-dir (or OCRVAULT_DATA_DIR; `serve` prints it), or "
              "give --create to make a new one there.", soft_wrap=True, highlight=False,
              markup=False)
    raise typer.Exit(2)


@contextmanager
def _data_dir(settings: Settings) -> Iterator[tuple[Database, Keyring]]:
    """The data dir's database (migrated, unless OCRVAULT_MIGRATE_ON_START is off: then
checked) and its keyring, for commands run beside a server."""
    try:
        prepare_data_dir(settings.data_dir)
    except OcrVaultError as error:
        raise _fail(error) from None
    from ocrvault.compose.parts import open_database

    try:
        db = open_database(settings, migrate=settings.migrate_on_start)
    except OcrVaultError as error:
        raise _fail(error) from None
    try:
        yield db, load_keyring(settings)
    finally:
        db.dispose()


@contextmanager
def _audited_db(settings: Settings) -> Iterator[tuple[Database, AuditLog]]:
    """The data dir's database and its audit log, for the admin commands."""
    with _data_dir(settings) as (db, keyring):
        yield db, AuditLog(db, ChainSigner(keyring),
                           retention=timedelta(days=settings.audit_retention_days))


def transport_options(settings: Settings, tls_cert: Path | None, tls_key: Path | None,
                      behind_proxy: bool) -> dict[str, Any]:
    """uvicorn's TLS, proxy and client-limit settings for ``serve``: forwarded headers are
    believed only behind a proxy, and then only from ``settings.trusted_proxies``."""
    from ocrvault.api.server import server_options
    from ocrvault.api.transport import tls_context_factory

    return {
        "ssl_certfile": tls_cert, "ssl_keyfile": tls_key,
        "ssl_context_factory": tls_context_factory if tls_cert else None,
        "proxy_headers": behind_proxy, "forwarded_allow_ips": settings.trusted_proxies,
        "server_header": False, **server_options(settings),
    }


def serving_transport(settings: Settings, host: str, port: int, *, tls: bool,
                      behind_proxy: bool) -> Transport:
    """How ``serve`` listens with these flags, as the posture report states it."""
    from ocrvault.api.transport import MINIMUM_TLS, tls_name

    return Transport.of(host, port, tls_minimum_version=tls_name(MINIMUM_TLS) if tls else None,
                        behind_proxy=behind_proxy, trusted_proxies=settings.trusted_proxies)


def _issue_admin_key(settings: Settings, tenant: str, *, new_tenant: bool = False) -> IssuedKey:
    with _audited_db(settings) as (db, audit):
        access = AccessService(db, audit, region=settings.region)
        return access.create_tenant(tenant) if new_tenant else access.bootstrap_tenant(tenant)


def _write_key_file(data_dir: Path, issued: IssuedKey) -> Path:
    """The key in a new 0600 file of its own; never over an existing file or a link."""
    path = (data_dir / f"admin-key-{issued.key_id}.txt").resolve()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(issued.secret + "\n")
    return path


def _show_key(settings: Settings, issued: IssuedKey, tenant: str, base_url: str | None = None,
              *, to_stdout: bool = False) -> None:
    """Hand a new admin key over once: on the terminal, or, when stdout is not one (systemd,
    docker, a pipe: logs that keep every line), in a 0600 file whose path is printed."""
    shown = escape(tenant)
    if to_stdout or sys.stdout.isatty():
        out.print(f"\nAdmin API key for tenant [bold]{shown}[/bold] (shown once; store it now):")
        out.print(f"  [bold green]{issued.secret}[/bold green]\n", soft_wrap=True)
        key = issued.secret
    else:
        path = _write_key_file(settings.data_dir, issued)
        out.print(f"\nAdmin API key for tenant [bold]{shown}[/bold] written to {path} (mode 0600; "
                  "not printed, since stdout is not a terminal). Read it, store it in your "
                  "secret manager, then delete the file.\n", soft_wrap=True, highlight=False)
        key = f"$(cat {shlex.quote(str(path))})"
    out.print(f"It works on the server whose data dir is {settings.data_dir.resolve()}.",
              soft_wrap=True, highlight=False, markup=False)
    if base_url:
        out.print("Try it (any folder; the server draws the sample page):", soft_wrap=True)
        out.print("\n".join(f"  {line}" for line in try_it_lines(base_url, key)) + "\n",
                  soft_wrap=True, highlight=False, markup=False)


def try_it_lines(base_url: str, key: str) -> list[str]:
    """Shell lines that fetch the server's sample page and read it."""
    auth = '-H "Authorization: Bearer $KEY"'
    return [
        f"KEY={key}", f"URL={base_url}",
        f'curl -s "$URL/v1/sample.png" {auth} -o sample.png && '
        f'curl -s -X POST "$URL/v1/read:sync" {auth} -F file=@sample.png',
    ]


def role_refusal(settings: Settings, role: NodeRole) -> str | None:
    """Why ``role`` cannot run on its own with these settings, or None."""
    if role in (NodeRole.API, NodeRole.WORKER) and settings.queue == "local":
        return (f"refusing --role {role}: the local queue (OCRVAULT_QUEUE=local) reaches only "
                "its own process, so jobs submitted on an API node would never reach a worker. "
                "Set OCRVAULT_QUEUE=celery and OCRVAULT_BROKER_URL, or run --role all.")
    return None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default OCRVAULT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OCRVAULT_PORT)")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain for HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS")] = None,
    behind_proxy: Annotated[bool, typer.Option(help="Allow plain HTTP on a non-loopback "
                                               "address because a TLS proxy fronts it")] = False,
    shutdown_timeout: Annotated[float | None, typer.Option(
        min=0, help="On stop, wait at most this many seconds for running jobs (default: until "
        "they end, or a second Ctrl-C); jobs left stay queued for the next start")] = None,
    role: Annotated[NodeRole, typer.Option(
        help="all: API, workers and scheduler in one process (the embedded default); api: "
        "HTTP only; worker: runs jobs; scheduler: reaper and audit retention, once per "
        "cluster (see docs/deploy.md)")] = NodeRole.ALL,
) -> None:
    """Serve the API (and, with role all, its workers and reaper) on the embedded default."""
    settings = _settings()
    refusal = role_refusal(settings, role)
    if refusal:
        err.print(f"[red]error[/red] {escape(refusal)}", soft_wrap=True, highlight=False)
        raise typer.Exit(2)
    _start_telemetry(settings, role)
    if role is NodeRole.WORKER:
        _run_worker(settings, shutdown_timeout)
    elif role is NodeRole.SCHEDULER:
        _run_scheduler(settings)
    else:
        _serve_http(settings, role, host, port, tls_cert, tls_key, behind_proxy,
                    shutdown_timeout)


def _start_telemetry(settings: Settings, role: NodeRole) -> None:
    """Logs (text or JSON lines), traces (when an OTLP endpoint is set) and the metrics
    port (when one is set), for any role; traces are flushed at exit."""
    from ocrvault.telemetry import metrics, tracing

    configure_logging(settings.log_format)
    tracing.configure(settings.otlp_endpoint, str(role))
    atexit.register(tracing.shutdown)
    atexit.register(metrics.process_exited)
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port, settings.metrics_host)


def uvicorn_log_options(settings: Settings) -> dict[str, Any]:
    """With JSON logs, uvicorn's loggers write through the root logger's JSON handler, and
    its access log gives way to api/observe.py's lines (route template, no query)."""
    return {"log_config": None, "access_log": False} if settings.log_format == "json" else {}


def _serve_http(settings: Settings, role: NodeRole, host: str | None, port: int | None,
                tls_cert: Path | None, tls_key: Path | None, behind_proxy: bool,
                shutdown_timeout: float | None) -> None:
    from ocrvault.api.app import create_app
    from ocrvault.api.server import fit_open_files
    from ocrvault.compose.api import ApiNode
    from ocrvault.runtime import Runtime

    connections = fit_open_files(settings.max_connections)
    if connections < settings.max_connections:
        err.print(f"[yellow]warning[/yellow] the open-files limit allows {connections} "
                  f"connections, not OCRVAULT_MAX_CONNECTIONS={settings.max_connections}.")
        settings = settings.model_copy(update={"max_connections": connections})
    host = host or settings.host
    port = port or settings.port
    if (tls_cert is None) != (tls_key is None):
        err.print("[red]error[/red] give both --tls-cert and --tls-key, or neither.")
        raise typer.Exit(2)
    refusal = bind_refusal(host, tls=tls_cert is not None, behind_proxy=behind_proxy)
    if refusal:
        err.print(f"[red]error[/red] {refusal}")
        raise typer.Exit(2)
    scheme = "https" if tls_cert else "http"
    base_url = f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    node: ApiNode | Runtime
    try:
        node = Runtime.build(settings) if role is NodeRole.ALL else ApiNode.open(settings)
    except OcrVaultError as error:
        raise _fail(error) from None
    node.posture.transport = serving_transport(settings, host, port, tls=tls_cert is not None,
                                               behind_proxy=behind_proxy)
    if not node.access.has_tenants():
        # The "try it" lines read synchronously, which only a node running OCR does.
        _show_key(settings, node.access.bootstrap_tenant("default"), "default",
                  base_url if role is NodeRole.ALL else None)
    docs = f"docs: {base_url}/docs, " if settings.docs_enabled else ""
    what = "ocrvault serving" if role is NodeRole.ALL else "ocrvault API node (role api) serving"
    out.print(f"{what} on {base_url}  ({docs}data: {settings.data_dir.resolve()})\n"
              f"  another admin key: {command_hint(settings, 'admin bootstrap')}",
              soft_wrap=True, highlight=False, markup=False)
    workers = node.workers if isinstance(node, Runtime) else None
    if workers is not None:
        _configure_shutdown(workers.shutdown, shutdown_timeout)
    _serve_until_stopped(create_app(node), workers, host=host, port=port, log_level="info",
                         **transport_options(settings, tls_cert, tls_key, behind_proxy),
                         **uvicorn_log_options(settings))


def _configure_shutdown(shutdown: Shutdown, timeout: float | None) -> None:
    shutdown.timeout = timeout
    shutdown.announce = _announce_wait


def _announce_wait(running: int) -> None:
    err.print(f"waiting for {running} running job{'s' if running > 1 else ''} (Ctrl-C again to "
              "stop now; they stay queued for the next start)", soft_wrap=True, highlight=False)


def _exit_leaving_jobs(queue: JobQueue) -> None:
    """End the process at once (os._exit) if jobs are still running: an orderly exit would
    close the decode sandbox under them and record them as failed, where they must stay
    running in the database for the next start to resume."""
    left = queue.running()
    if left:
        err.print(f"stopped with {left} job{'s' if left > 1 else ''} unfinished; the next "
                  "start resumes them.", highlight=False)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _serve_until_stopped(api: Any, workers: WorkerNode | None, **options: Any) -> None:
    """uvicorn until a signal; a second Ctrl-C makes the stop leave the running jobs."""
    import uvicorn

    from ocrvault.api.app import build_ahead

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if self.force_exit and workers is not None:
                workers.shutdown.now.set()

    build_ahead(api)
    settle_heap()
    try:
        Server(uvicorn.Config(api, **options)).run()
    finally:
        if workers is not None:
            _exit_leaving_jobs(workers.queue)


def _until_signalled(node: WorkerNode | SchedulerNode, what: str,
                     shutdown: Shutdown | None = None,
                     ended: threading.Event | None = None) -> bool:
    """Run ``node`` until SIGTERM or Ctrl-C, or until ``ended`` is set (its queue lost the
    broker for good); a second signal makes a worker leave its jobs. Returns whether it
    stopped because ``ended`` was set before any signal."""
    settle_heap()
    stopping = threading.Event()
    lost = threading.Event()

    def handle(_sig: int, _frame: FrameType | None) -> None:
        if stopping.is_set() and shutdown is not None:
            shutdown.now.set()
        stopping.set()

    def watch(event: threading.Event) -> None:
        event.wait()
        if not stopping.is_set():  # the consumer ended on its own, not by our stop
            lost.set()
        stopping.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    node.start()
    if ended is not None:
        threading.Thread(target=watch, args=(ended,), name="queue-watch", daemon=True).start()
    out.print(f"{what} running (data: {node.base.settings.data_dir.resolve()}); SIGTERM or "
              "Ctrl-C stops it", soft_wrap=True, highlight=False, markup=False)
    stopping.wait()
    node.stop()
    out.print(f"{what} stopped", highlight=False, markup=False)
    return lost.is_set()


def _run_worker(settings: Settings, shutdown_timeout: float | None) -> None:
    from ocrvault.compose.worker import WorkerNode
    from ocrvault.jobs.queue import QueueUnavailable

    try:
        node = WorkerNode.open(settings)
    except OcrVaultError as error:
        raise _fail(error) from None
    _configure_shutdown(node.shutdown, shutdown_timeout)
    # A consumer that ends on its own has lost the broker: the process ends too (for its
    # supervisor to restart it), instead of living on taking nothing.
    try:
        lost = _until_signalled(node, "ocrvault worker", node.shutdown, node.queue.ended)
    except QueueUnavailable as error:
        node.stop()
        err.print(f"[red]error[/red] {escape(str(error))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    finally:
        _exit_leaving_jobs(node.queue)
    if lost:
        err.print("[red]error[/red] the worker lost its broker and stopped taking jobs",
                  highlight=False)
        raise typer.Exit(2)


def _run_scheduler(settings: Settings) -> None:
    from ocrvault.compose.scheduler import SchedulerNode

    try:
        node = SchedulerNode.open(settings)
    except OcrVaultError as error:
        raise _fail(error) from None
    _until_signalled(node, f"ocrvault scheduler {node.owner}")


@app.command()
def migrate() -> None:
    """Bring the database's schema to this version's: once per upgrade, before the nodes
    start (role all does it at start unless OCRVAULT_MIGRATE_ON_START=false)."""
    settings = _settings()
    try:
        prepare_data_dir(settings.data_dir)  # the SQLite default lives there
        db = Database(settings.resolved_database_url)
        try:
            before, after = db.migrate()
        finally:
            db.dispose()
    except OcrVaultError as error:
        raise _fail(error) from None
    shown = ", ".join(sorted(after))
    if before == after:
        out.print(f"schema already at revision {shown}; nothing to do", highlight=False)
    else:
        out.print(f"schema migrated from revision {', '.join(sorted(before)) or 'none'} to "
                  f"{shown}", highlight=False)


@app.command()
def read(
    files: Annotated[list[Path], typer.Argument(help="Images or PDFs", exists=True,
                                                dir_okay=False, readable=True)],
    fmt: Annotated[str, typer.Option("--format", help="json or text")] = "text",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write <name>.<fmt> here "
                                                  "instead of printing")] = None,
    languages: Annotated[str, typer.Option(help="Language codes joined by '+' or ','")] = "eng",
    pages: Annotated[str | None, typer.Option(help="Pages, e.g. '1-3,5'")] = None,
    engine: Annotated[str | None, typer.Option(
        help="auto, tesseract or rapidocr; default OCRVAULT_DEFAULT_ENGINE (auto)")] = None,
) -> None:
    """OCR files locally, without a server (nothing is stored)."""
    from ocrvault.compose.worker import build_pipeline

    if fmt not in ("json", "text"):
        err.print("[red]error[/red] --format is 'json' or 'text'.")
        raise typer.Exit(2)
    settings = Settings()
    pipeline = build_pipeline(settings)
    failures = 0
    try:
        params = pipeline.params(languages, pages, None, engine=engine)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            files_task = progress.add_task("files", total=len(files))
            for path in files:
                pages_task = progress.add_task(f"  {path.name}", total=None)

                def advance(done: int, total: int, task: TaskID = pages_task) -> None:
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
        pipeline.engines.close()
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


PrintKey = Annotated[bool, typer.Option(
    "--print", help="Print the key even when stdout is not a terminal (e.g. piped into a secret "
    "store); by default it then goes to a 0600 file in the data dir")]
Create = Annotated[bool, typer.Option(
    "--create", help="Make the data dir if it does not exist (by default that is refused: "
    "the key would not work on a server using another data dir)")]


@admin.command("bootstrap")
def bootstrap(tenant: Annotated[str, typer.Option(help="Tenant name")] = "default",
              print_key: PrintKey = False, create: Create = False) -> None:
    """Create the tenant if needed and hand over a new admin key for it, once."""
    settings = _settings()
    _require_data_dir(settings, create)
    try:
        issued = _issue_admin_key(settings, tenant)
    except OcrVaultError as error:
        raise _fail(error) from None
    _show_key(settings, issued, tenant, to_stdout=print_key)


@admin.command("create-tenant")
def create_tenant(name: Annotated[str, typer.Argument(help="Tenant name")],
                  print_key: PrintKey = False, create: Create = False) -> None:
    """Create a tenant and hand over its first admin key, once."""
    settings = _settings()
    _require_data_dir(settings, create)
    try:
        issued = _issue_admin_key(settings, name, new_tenant=True)
    except OcrVaultError as error:
        raise _fail(error) from None
    _show_key(settings, issued, name, to_stdout=print_key)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every hash chain and its signatures, one line a chain; exit 1 if any is
    broken, naming its first bad entry."""
    with _audited_db(_settings()) as (db, audit):
        report = verify_log(db, audit.signer)
    for chain in report.chains:  # one line a chain, however long its name
        (out if chain.ok else err).print(escape(str(chain)), soft_wrap=True)
    if not report.ok:
        err.print(f"[red]audit log TAMPERED[/red]: {len(report.broken)} of "
                  f"{len(report.chains)} chains broken")
        raise typer.Exit(1)
    out.print(f"audit log intact: {report.entries} entries in {len(report.chains)} chains, "
              "links and signatures verified")


@audit_app.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl")] = "jsonl",
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries")] = None,
) -> None:
    """Write the audit log to stdout, one JSON entry a line; the export is audited."""
    if fmt != "jsonl":
        err.print("[red]error[/red] --format is 'jsonl'.")
        raise typer.Exit(2)
    with _audited_db(_settings()) as (db, audit):
        tenant_id = None
        if tenant is not None:
            with db.transaction() as session:
                row = TenantRepository(session).by_name(tenant)
            if row is None:
                err.print(f"[red]error[/red] no tenant named {tenant!r}.")
                raise typer.Exit(2)
            tenant_id = row.id
        for line in AuditService(db, audit).export(Actor.system("cli", tenant_id), tenant_id):
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


@keys.command("status")
def keys_status() -> None:
    """The master-key provider (asked, so it doubles as a check), the keyring's versions
    and how many data keys each still wraps, and what the tenant-key store holds."""
    settings = _settings()
    with _data_dir(settings) as (db, keyring):
        tenant_keys = open_tenant_keys(settings, keyring)
        failure = None
        try:
            master = tenant_keys.master.describe()
            details = "".join(f", {name} {value}" for name, value in master.details.items())
            primary = f"primary v{master.version}" if master.version else "no version made yet"
            out.print(f"master key: {master.provider}, key {master.key_id}, "
                      f"{primary}{details}", soft_wrap=True, highlight=False,
                      markup=False)
        except OcrVaultError as error:
            failure = error
            out.print(f"master key: {settings.key_provider}, unavailable ({error})",
                      soft_wrap=True, highlight=False, markup=False)
        # The keyring matters whatever the provider: audit MAC keys, webhook secrets, and
        # data keys wrapped before tenant keys existed.
        for version in keyring.versions:
            mark = " (primary)" if version == keyring.primary else ""
            out.print(f"keyring v{version}{mark}: {count_wrapped_under(db, version)} data keys")
        held = tenant_keys.census()
        out.print(f"tenant keys: {held.tenants} tenants ({held.own_kms} under their own KMS "
                  f"key), {held.epochs} epoch keys, {held.offboarded} offboarded; in "
                  f"{settings.resolved_key_store_dir}", soft_wrap=True, highlight=False,
                  markup=False)
    if failure is not None:
        raise typer.Exit(1)


def _record_master_key(audit: AuditLog, action: AuditAction, version: int,
                       **detail: int) -> None:
    """Audit a master-key change: system-wide, made by the operator at the command line."""
    audit.record(AuditEvent(action, Actor.system("cli"), target_id=f"master_key:v{version}",
                            detail=detail or None))


@keys.command("rotate-master")
def keys_rotate_master() -> None:
    """Add a new master key version and make it the primary for new jobs."""
    settings = _settings()
    with _audited_db(settings) as (_db, audit):
        try:
            # The provider's own rotation; with the keyring it is the keyring's.
            version = open_tenant_keys(settings, audit.signer.keyring).master.rotate()
        except OcrVaultError as error:
            raise _fail(error) from None
        _record_master_key(audit, AuditAction.MASTER_KEY_ROTATED, version)
    out.print(f"master key v{version} is now primary. Next: "
              f"{command_hint(settings, 'keys rewrap')}", soft_wrap=True, highlight=False,
              markup=False)


@keys.command("rewrap")
def keys_rewrap(batch: Annotated[int, typer.Option(min=1, max=100_000,
                                                   help="Keys per transaction")] = 500,
                ) -> None:
    """Re-wrap every stored data key under the primary master key (resumable)."""
    settings = _settings()
    with _audited_db(settings) as (db, audit), \
            Progress(TextColumn("rewrap"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     console=err) as progress:
        keyring = audit.signer.keyring
        tenant_keys = open_tenant_keys(settings, keyring)
        task = progress.add_task("rewrap", total=None)
        try:
            primary = tenant_keys.master.describe().version
            done = rewrap_all(db, keyring, batch,
                              lambda n, total: progress.update(task, completed=n, total=total),
                              tenant_keys)
        except OcrVaultError as error:
            raise _fail(error) from None
        done += reseal_all(db, keyring, keyring.primary)  # webhook signing secrets
        _record_master_key(audit, AuditAction.MASTER_KEY_REWRAPPED, primary, data_keys=done)
    out.print(f"{done} data keys now wrapped under v{primary}.")


@keys.command("retire")
def keys_retire(version: Annotated[int, typer.Argument(help="Master key version to remove")],
                ) -> None:
    """Remove an old master key version; refused while any data key still needs it. Audit
    signatures made under it still verify: only its audit MAC key is kept."""
    settings = _settings()
    with _audited_db(settings) as (db, audit):
        keyring = audit.signer.keyring
        try:
            keyring.check_retirable(version)  # before counting: the primary always has keys
            remaining = (count_wrapped_under(db, version)
                         + count_sealed_under(db, keyring, version))
            if not remaining and version in open_tenant_keys(
                    settings, keyring).master_versions_in_use():
                err.print(f"[red]error[/red] tenant keys are still wrapped under v{version}; "
                          f"run {escape(command_hint(settings, 'keys rewrap'))} first.",
                          soft_wrap=True, highlight=False)
                raise typer.Exit(1)
            if remaining:
                hint = escape(command_hint(settings, "keys rewrap"))
                err.print(f"[red]error[/red] {remaining} data keys are still wrapped under "
                          f"v{version}; run {hint} first.", soft_wrap=True, highlight=False)
                raise typer.Exit(1)
            keyring.retire(version)
        except OcrVaultError as error:
            raise _fail(error) from None
        _record_master_key(audit, AuditAction.MASTER_KEY_RETIRED, version)
    out.print(f"master key v{version} retired.")


@tenant_app.command("offboard")
def tenant_offboard(name: Annotated[str, typer.Argument(help="Tenant name")],
                    confirm: Annotated[str, typer.Option(
                        help="The tenant's name again: this cannot be undone")] = "") -> None:
    """Destroy the tenant's keys: everything it stored becomes unreadable at once, backups
    included; its API keys are revoked and the reaper deletes its blobs."""
    from ocrvault.access.offboard import offboard_tenant
    from ocrvault.clock import utcnow

    settings = _settings()
    with _audited_db(settings) as (db, audit):
        try:
            done = offboard_tenant(db, open_tenant_keys(settings, audit.signer.keyring), audit,
                                   utcnow, name, confirm)
        except OcrVaultError as error:
            raise _fail(error) from None
    out.print(f"tenant {name!r} offboarded: {done.keys_destroyed} keys destroyed, "
              f"{done.jobs} jobs unreadable, {done.api_keys_revoked} API keys revoked.",
              soft_wrap=True, highlight=False, markup=False)


@tenant_app.command("kms-key")
def tenant_kms_key(name: Annotated[str, typer.Argument(help="Tenant name")],
                   key_id: Annotated[str | None, typer.Argument(
                       help="The tenant's AWS KMS key (id or ARN); omit with --master")] = None,
                   master: Annotated[bool, typer.Option(
                       help="Back under the deployment's master key")] = False) -> None:
    """Wrap the tenant's key under its own AWS KMS key (bring your own key): revoking
    ocrvault's grant on it makes the tenant's data unreadable to the operator."""
    if (key_id is None) != master:
        err.print("[red]error[/red] give a KMS key id, or --master (not both).")
        raise typer.Exit(2)
    settings = _settings()
    with _audited_db(settings) as (db, audit):
        with db.transaction() as session:
            tenant = TenantRepository(session).by_name(name)
        if tenant is None:
            err.print(f"[red]error[/red] no tenant named {name!r}.")
            raise typer.Exit(2)
        try:
            open_tenant_keys(settings, audit.signer.keyring).use_kms_key(tenant.id, key_id)
        except OcrVaultError as error:
            raise _fail(error) from None
        audit.record(AuditEvent(AuditAction.TENANT_KEY_WRAPPER_CHANGED,
                                Actor.system("cli", tenant.id), target_id=f"tenant:{tenant.id}",
                                detail={"kms_key_id": key_id}))
    out.print(f"tenant {name!r}: its key is now under "
              f"{'the master key' if key_id is None else key_id}.", soft_wrap=True,
              highlight=False, markup=False)


class ReportFormat(StrEnum):
    JSON = "json"
    MD = "md"
    HTML = "html"


@app.command()
def posture(
    fmt: Annotated[ReportFormat, typer.Option("--format", help="json (stable; schema in "
                                              "ocrvault/posture/posture.schema.json), md or "
                                              "html (printable, self-contained)")]
    = ReportFormat.JSON,
    host: Annotated[str | None, typer.Option(help="The address serve binds (default "
                                             "OCRVAULT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Its port (default OCRVAULT_PORT)")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="As given to serve: TLS is on")] = None,
    behind_proxy: Annotated[bool, typer.Option(help="As given to serve")] = False,
) -> None:
    """The security checklist answered for the whole deployment, with evidence read from
    the settings, the data dir and its database (the audit chains verified now). Give the
    transport flags serve runs with; exit 1 when an entry fails."""
    from ocrvault.clock import utcnow
    from ocrvault.engines import registry
    from ocrvault.posture.model import Status
    from ocrvault.posture.render_html import render_html
    from ocrvault.posture.render_markdown import render_markdown
    from ocrvault.posture.service import PostureService

    settings = _settings()
    with _data_dir(settings) as (db, keyring):
        service = PostureService(settings, db, keyring, open_tenant_keys(settings, keyring),
                                 registry.catalog(settings).describing(), utcnow)
        service.transport = serving_transport(
            settings, host or settings.host, port or settings.port,
            tls=tls_cert is not None, behind_proxy=behind_proxy)
        report = service.for_deployment()
    if fmt is ReportFormat.HTML:
        sys.stdout.write(render_html(report))
    elif fmt is ReportFormat.MD:
        sys.stdout.write(render_markdown(report))
    else:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    if report.status is Status.FAIL:
        raise typer.Exit(1)


@backup_app.command("create")
def backup_create(target: Annotated[Path, typer.Argument(help="A new or empty folder")]) -> None:
    """Copy the database (SQLite online backup) and the sealed blobs; never any key."""
    from ocrvault.clock import utcnow
    from ocrvault.store.backup import create_backup

    settings = _settings()
    with _data_dir(settings):
        try:
            done = create_backup(settings, target, utcnow())
        except OcrVaultError as error:
            raise _fail(error) from None
    out.print(f"backup in {done.path}: database ({done.database_bytes} bytes), "
              f"{done.blobs} sealed blobs, no keys.", soft_wrap=True, highlight=False,
              markup=False)


@backup_app.command("restore")
def backup_restore(source: Annotated[Path, typer.Argument(help="A folder `backup create` made")],
                   ) -> None:
    """Replace the database and blobs with a backup's (stop the server first). What was
    deleted or expired since stays unreadable once its epoch key is gone."""
    from ocrvault.store.backup import restore_backup

    settings = _settings()
    try:
        prepare_data_dir(settings.data_dir)
        done = restore_backup(settings, source)
    except OcrVaultError as error:
        raise _fail(error) from None
    out.print(f"restored from {done.path}: {done.blobs} sealed blobs.", soft_wrap=True,
              highlight=False, markup=False)


# Commands that talk to a running server, kept in their own module (ocrvault/cli_client.py).
from ocrvault.cli_client import submit as _submit  # noqa: E402

app.command("submit")(_submit)
