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

    # Input limits, all checked before a file is decoded in full.
    max_file_bytes: int = Field(default=50 * MB, gt=0)
    max_sync_file_bytes: int = Field(default=20 * MB, gt=0)
    max_pages: int = Field(default=2000, gt=0)
    max_page_pixels: int = Field(default=100_000_000, gt=0)
    max_side_px: int = Field(default=10_000, gt=0)
    pdf_dpi: int = Field(default=300, ge=72, le=600)

    # The decode sandbox: a child process per worker with these limits.
    decode_timeout_seconds: float = Field(default=120.0, gt=0)
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

    @property
    def inflight_upload_bytes(self) -> int:
        return self.max_inflight_upload_bytes or 4 * self.max_file_bytes

    @model_validator(mode="after")
    def _room_for_the_largest_upload(self) -> Settings:
        # A tenant may hold half the budget: less than two files and the largest never fits.
        if self.inflight_upload_bytes < 2 * self.max_file_bytes:
            raise ValueError("OCRVAULT_MAX_INFLIGHT_UPLOAD_BYTES must be at least twice "
                             "OCRVAULT_MAX_FILE_BYTES (one tenant may hold half of it)")
        return self
