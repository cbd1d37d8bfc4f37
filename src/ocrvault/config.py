"""One Settings object: environment variables ``OCRVAULT_*``, then an optional TOML file.

The TOML file is named by ``OCRVAULT_CONFIG``; environment variables win over it.
Unsafe combinations are refused at start-up by :meth:`Settings.check_safe_to_serve`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MB = 1_000_000
_BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")


def _default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCRVAULT_", extra="forbid")

    data_dir: Path = Field(default=Path("ocrvault-data"), description="Database, blobs, keyring")
    host: str = "127.0.0.1"
    port: int = 8080
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses whose X-Forwarded-Proto/For are believed "
        "(with --behind-proxy)",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default SQLite in the data dir. PostgreSQL: "
        "postgresql+psycopg://user@host/db (postgresql:// means the same: psycopg 3)",
    )
    workers: int = Field(default_factory=_default_workers, ge=0, description="OCR worker threads")
    migrate_on_start: bool = Field(
        default=True, description="Role 'all' brings the database schema to this version's "
        "at start; false (and every other role): refuse to start unless `ocrvault migrate` "
        "has done so")

    # Input limits, all checked before a file is decoded in full.
    max_file_bytes: int = Field(default=50 * MB, gt=0)
    max_sync_file_bytes: int = Field(default=20 * MB, gt=0)
    max_pages: int = Field(default=2000, gt=0)
    max_page_pixels: int = Field(default=100_000_000, gt=0)
    max_side_px: int = Field(default=10_000, gt=0)
    pdf_dpi: int = Field(default=300, ge=72, le=600)

    # The decode sandbox: a child process per worker with these limits.
    decode_timeout_seconds: float = Field(default=120.0, gt=0)
    page_timeout_seconds: float = Field(
        default=300.0, gt=0, description="How long an engine may read one page before the "
        "job fails with processing_timeout (a page is checked between lines and passes)")
    decode_cpu_seconds: int = Field(default=120, gt=0)
    decode_memory_bytes: int = Field(default=4 * 1024**3, gt=0)

    default_languages: str = "eng"
    tessdata_dir: Path | None = Field(default=None, description="Tesseract's tessdata folder")

    reaper_interval_seconds: float = Field(default=10.0, gt=0)
    audit_retention_days: int = Field(
        default=400, ge=1, description="Audit entries are kept this long, apart from documents"
    )

    master_key: str | None = Field(
        default=None,
        description="Base64 master keys '1:KEY,2:KEY' (the highest version is primary); "
        "default the keyring file at keyring_path",
    )

    # What a client may cost the server before (and after) its key is checked.
    max_json_body_bytes: int = Field(default=64 * 1024, gt=0, description="Largest JSON body")
    max_header_bytes: int = Field(default=100 * 1024, gt=0, description="Largest request head")
    max_headers: int = Field(default=100, gt=0, description="Most header fields in a request")
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time to send a request's head, from connecting on"
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest pause while sending a request body"
    )
    body_deadline_seconds: float = Field(
        default=900.0, gt=0, description="Longest time to send a whole request body"
    )
    keep_alive_seconds: int = Field(default=5, gt=0, description="Idle keep-alive connections")
    max_connections: int = Field(
        default=1000, gt=0, description="Open connections (503 beyond; the open-files limit "
        "is raised to fit where it can be)"
    )
    max_inflight_upload_bytes: int | None = Field(
        default=None, gt=0, description="Upload bytes held in memory at once across the "
        "process (default 4 x max_file_bytes); one tenant holds at most half"
    )
    upload_wait_seconds: float = Field(
        default=5.0, ge=0, description="How long an upload waits for room before 503"
    )
    max_sync_reads_per_tenant: int = Field(
        default=4, gt=0, description="Synchronous reads of one tenant at once (429 beyond)"
    )

    default_engine: Literal["auto", "tesseract", "rapidocr"] = Field(
        default="auto", description="OCR engine when a request names none: auto, tesseract "
        "or rapidocr (auto: RapidOCR for English and Chinese, Tesseract for other languages)"
    )
    rapidocr_threads: int = Field(
        default=1, ge=1, description="ONNX Runtime threads per RapidOCR page; each OCR worker "
        "reads one page at a time, so workers x this is the cores it uses"
    )

    # Where jobs wait for workers, and how long a worker's claim on a job lasts unrenewed.
    queue: Literal["local", "celery"] = Field(
        default="local", description="Job queue: local (in-process threads) or celery "
        "(workers on other nodes, through OCRVAULT_BROKER_URL)"
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker for OCRVAULT_QUEUE=celery: redis://... or "
        "amqp://... (RabbitMQ)"
    )
    queue_name: str = Field(default="ocrvault.jobs", min_length=1, max_length=200,
                            description="The broker queue (one per region or deployment)")
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="A worker renews its claim on a job this often x 3; a "
        "job whose worker stops renewing goes back to the queue once this has passed"
    )
    page_spread: int = Field(
        default=8, ge=0, description="With OCRVAULT_QUEUE=celery, how many page tasks of "
        "one job wait on the broker at a time for other workers to help read it (0: the "
        "worker that claims a job reads every page of it)")
    lease_reclaim_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often expired leases are reclaimed and the job "
        "outbox is swept (by the scheduler)"
    )
    # Webhooks go to public HTTPS addresses only (webhooks/ssrf.py); these are the only ways
    # past that, for development and for receivers on the operator's own network.
    webhook_dispatch_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often the scheduler sends the webhook deliveries "
        "that are due")
    webhook_allow_http: bool = Field(
        default=False, description="Allow plain-http webhook URLs (development only)")
    webhook_allow_cidrs: str = Field(
        default="", description="Comma-separated CIDRs a webhook may reach although they "
        "are loopback, private, link-local or reserved, e.g. '10.1.2.0/24'")

    # Operations (issue 20): metrics, logs, traces, rate limits shared across API nodes.
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus /metrics on this port "
        "(every role; unset: not served)")
    metrics_host: str = Field(default="127.0.0.1", description="Address of the metrics port")
    log_format: Literal["text", "json"] = Field(
        default="text", description="text, or json: one JSON object per line")
    log_tenant: Literal["hash", "omit"] = Field(
        default="hash", description="Tenant id in request log lines: hash (SHA-256, 16 hex) "
        "or omit")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces URL (http://collector:4318/v1/traces); "
        "unset: no tracing")
    rate_limit_backend: Literal["memory", "redis"] = Field(
        default="memory", description="Per-key rate limits in this process (memory) or shared "
        "by every API node through Redis")
    rate_limit_redis_url: str | None = Field(
        default=None, description="redis://host:6379/N for rate_limit_backend=redis")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("OCRVAULT_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'ocrvault.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    # Declared after data_dir: the default is computed from it.
    keyring_path: Path = Field(
        default_factory=lambda fields: fields["data_dir"] / "keyring.json",
        description="The keyring file (0600) when OCRVAULT_MASTER_KEY is unset; default in the "
        "data dir, where a copy of the folder holds both the data and its keys",
    )
    docs_enabled: bool = Field(default=True, description="Serve Swagger UI at /docs")
    url_input: bool = Field(
        default=False, description="Let the Azure doors read a document from a URL the caller "
        "gives (https only, public addresses only, no redirects: see fetch.py)")
    result_link_seconds: int = Field(
        default=3600, gt=0, le=7 * 86400,
        description="How long a signed result URL (ABBYY's resultUrl) works")

    # Where sealed blobs live. S3 credentials come from the usual AWS sources (environment,
    # profile, instance role), never from these settings: there is no field for them.
    blob_store: Literal["local", "s3"] = Field(
        default="local", description="local (the data dir's blobs folder) or s3")
    s3_bucket: str | None = Field(default=None, description="The bucket, with blob_store=s3")
    s3_prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. ocrvault")
    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint (default: AWS for the region)")
    s3_region: str | None = Field(default=None, description="The bucket's region")
    s3_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    s3_read_timeout_seconds: float = Field(default=30.0, gt=0)
    s3_max_attempts: int = Field(default=3, ge=1, description="Tries per S3 call, retries included")

    # Data residency: a deployment serves one region; keys name their tenant's home region.
    region: str | None = Field(
        default=None, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$",
        description="This deployment's region, e.g. eu-central: its keys carry it, and keys "
        "of another region are answered 421 wrong_region before any body is read")
    region_urls: dict[str, str] = Field(
        default_factory=dict, description="Base URL of each region, as JSON: "
        "{\"eu-central\": \"https://ocr.eu.example\"}; the 421 answer names it")

    # Which master-key provider wraps the tenant keys (crypto/master.py). The PKCS#11 PIN
    # and AWS credentials are secrets: the PIN is read from a setting (environment), the
    # AWS credentials from the usual AWS chain; neither belongs in the data dir.
    key_provider: Literal["keyring", "pkcs11", "aws-kms"] = Field(
        default="keyring", description="keyring (the file or OCRVAULT_MASTER_KEY), pkcs11 "
        "(an HSM) or aws-kms")
    pkcs11_library: str | None = Field(
        default=None, description="The PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so")
    pkcs11_token_label: str | None = Field(default=None, description="The HSM token's label")
    pkcs11_pin: str | None = Field(default=None, description="The token's user PIN")
    pkcs11_key_label: str = Field(
        default="ocrvault-master", description="Master keys are labelled <this>-v<N>")
    kms_key_id: str | None = Field(
        default=None, description="The AWS KMS key (id, ARN or alias) with key_provider=aws-kms")
    kms_region: str | None = Field(default=None, description="The KMS key's region")
    kms_endpoint_url: str | None = Field(
        default=None, description="A KMS-compatible endpoint (default: AWS for the region)")
    kms_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    kms_read_timeout_seconds: float = Field(default=5.0, gt=0)
    kms_max_attempts: int = Field(default=2, ge=1)
    key_store_dir: Path | None = Field(
        default=None, description="Tenant and epoch keys (wrapped); default 'keys' beside "
        "the keyring file. Never backed up with the data: that is what makes deletion stick")
    epoch_seconds: int = Field(
        default=86400, ge=60, description="Width of an epoch key's window: data is unreadable "
        "in every backup at most this long after its retention ends (docs/security.md)")
    tenant_key_cache_seconds: float = Field(
        default=60.0, ge=0, description="How long an unwrapped tenant key stays in memory: "
        "a revoked KMS grant takes effect within this time (offboarding at once)")

    @property
    def resolved_key_store_dir(self) -> Path:
        return self.key_store_dir or self.keyring_path.parent / "keys"

    @property
    def inflight_upload_bytes(self) -> int:
        return self.max_inflight_upload_bytes or 4 * self.max_file_bytes

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.blob_store == "s3" and not self.s3_bucket:
            raise ValueError("OCRVAULT_BLOB_STORE=s3 needs OCRVAULT_S3_BUCKET")
        return self

    @model_validator(mode="after")
    def _a_broker_for_celery(self) -> Settings:
        if self.queue == "celery" and not (self.broker_url or "").startswith(_BROKER_SCHEMES):
            raise ValueError("OCRVAULT_QUEUE=celery needs OCRVAULT_BROKER_URL: redis://host:6379/0 "
                             "or amqp://user:password@host:5672/vhost")
        return self

    @model_validator(mode="after")
    def _key_provider_is_complete(self) -> Settings:
        if self.key_provider == "pkcs11" and not (
                self.pkcs11_library and self.pkcs11_token_label and self.pkcs11_pin):
            raise ValueError("OCRVAULT_KEY_PROVIDER=pkcs11 needs OCRVAULT_PKCS11_LIBRARY, "
                             "OCRVAULT_PKCS11_TOKEN_LABEL and OCRVAULT_PKCS11_PIN")
        if self.key_provider == "aws-kms" and not self.kms_key_id:
            raise ValueError("OCRVAULT_KEY_PROVIDER=aws-kms needs OCRVAULT_KMS_KEY_ID")
        return self

    @model_validator(mode="after")
    def _redis_for_shared_limits(self) -> Settings:
        if self.rate_limit_backend == "redis" and not (self.rate_limit_redis_url or ""
                                                       ).startswith(("redis://", "rediss://")):
            raise ValueError("OCRVAULT_RATE_LIMIT_BACKEND=redis needs OCRVAULT_RATE_LIMIT_REDIS_URL"
                             ": redis://host:6379/0")
        return self

    @model_validator(mode="after")
    def _room_for_the_largest_upload(self) -> Settings:
        # A tenant may hold half the budget: less than two files and the largest never fits.
        if self.inflight_upload_bytes < 2 * self.max_file_bytes:
            raise ValueError("OCRVAULT_MAX_INFLIGHT_UPLOAD_BYTES must be at least twice "
                             "OCRVAULT_MAX_FILE_BYTES (one tenant may hold half of it)")
        return self
