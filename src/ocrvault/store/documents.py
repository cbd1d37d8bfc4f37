"""The one door through which document bytes and text reach storage.

Everything that holds document content (the input, the result JSON, every output)
is sealed here with the job's data key before the blob store sees it, and opened
here after reading. The data key is wrapped under the tenant's epoch key
(crypto/tenant_keys.py) and kept in the job row; once the row's wrapped key, the epoch
key or the tenant key is gone, no copy of the blobs can be opened. Rows written before
tenant keys hold the keyring's wrap, which still opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from ocrvault.crypto import Keyring, ObjectContext, new_dek, open_sealed, seal
from ocrvault.crypto.customer_key import (
    CustomerKey,
    unwrap_dek_with_customer_key,
    wrap_dek_with_customer_key,
)
from ocrvault.crypto.tenant_keys import TenantKeys, is_epoch_wrapped
from ocrvault.errors import IntegrityError
from ocrvault.model import OutputFormat
from ocrvault.store.blobs import BlobStore, blob_key
from ocrvault.telemetry import tracing


class ObjectKind(StrEnum):
    INPUT = "input"
    # The PDF password a job was submitted with; sealed like the input, deleted with it.
    PDF_PASSWORD = "pdf-password"  # noqa: S105 - the name of an object kind
    # The media type the client declared, kept only when it contradicts the bytes.
    DECLARED_TYPE = "declared-type"
    # The OCR engine the request named (none: the deployment's default at run time).
    ENGINE = "engine"
    # How the request asked to read PDF text and write the PDF output (jobs/params.py),
    # kept only when it differs from the defaults.
    READ_OPTIONS = "read-options"
    RESULT = "result"
    OUTPUT_TEXT = "output-text"
    OUTPUT_HOCR = "output-hocr"
    OUTPUT_ALTO = "output-alto"
    OUTPUT_PDF = "output-pdf"
    OUTPUT_ABBYY_XML = "output-abbyy-xml"

    @classmethod
    def output(cls, fmt: OutputFormat) -> ObjectKind:
        return cls(f"output-{fmt.value}")

    @property
    def name_in_traces(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PagePart:
    """One page's result as a worker of the cluster stored it for the job's owner to
    assemble (jobs/spread.py): named by the claim it was read under, so a page of a claim
    that lost its lease is never taken for one of the claim that runs the job now."""

    FOLDER: ClassVar[str] = "pages"

    claim: str  # the claim token's own part (jobs/leases.claim_of)
    index: int  # 0-based, into the job's page selection

    @property
    def value(self) -> str:
        return f"{self.FOLDER}/{self.claim}/{self.index}"

    @property
    def name_in_traces(self) -> str:
        return self.FOLDER


# What a job keeps of its submission until it has finished, successful or not.
SUBMISSION_KINDS = (ObjectKind.INPUT, ObjectKind.PDF_PASSWORD, ObjectKind.DECLARED_TYPE,
                    ObjectKind.ENGINE, ObjectKind.READ_OPTIONS)


@dataclass(frozen=True, slots=True)
class JobKey:
    """Where a job's objects live and the wrapped key that opens them.

    With a customer key the DEK is opened from ``customer_wrapped_dek``, and only so;
    otherwise from ``wrapped_dek`` (the keyring's wrap).
    """

    tenant_id: str
    job_id: str
    wrapped_dek: bytes | None
    customer_wrapped_dek: bytes | None = None
    customer_key: CustomerKey | None = None


@dataclass(frozen=True, slots=True)
class NewJobKeys:
    wrapped_dek: bytes
    master_key_version: int | None  # of the master key above it; None: the tenant's KMS key
    customer_wrapped_dek: bytes | None
    key_epoch: int | None = None


class SealedDocuments:
    def __init__(self, blobs: BlobStore, keyring: Keyring,
                 tenant_keys: TenantKeys | None = None) -> None:
        self.blobs = blobs
        self.keyring = keyring
        self.tenant_keys = tenant_keys

    def new_job_keys(self, tenant_id: str, job_id: str,
                     customer_key: CustomerKey | None = None,
                     expires_at: datetime | None = None) -> NewJobKeys:
        """A fresh data key for a job, wrapped under the tenant's epoch key of
        ``expires_at`` (the latest its content may live) and, if given, under the
        customer's key too. Raises the key provider's errors (KeyServiceUnavailable: 503)."""
        dek = new_dek()
        by_customer = (wrap_dek_with_customer_key(dek, customer_key, tenant_id, job_id)
                       if customer_key is not None else None)
        if self.tenant_keys is None or expires_at is None:
            wrapped = self.keyring.wrap_dek(dek, tenant_id, job_id)
            return NewJobKeys(wrapped, self.keyring.version_of(wrapped), by_customer)
        under = self.tenant_keys.wrap_dek(dek, tenant_id, job_id, expires_at)
        return NewJobKeys(under.wrapped, under.master_key_version, by_customer, under.epoch)

    def ping_keys(self) -> None:
        """Return when the master-key provider answers; raise KeyServiceUnavailable (or
        KeyAccessDenied) when it does not: the /readyz probe."""
        if self.tenant_keys is not None:
            self.tenant_keys.master.describe()

    def _dek(self, job: JobKey) -> bytes:
        if job.customer_key is not None:
            if job.customer_wrapped_dek is None:
                raise IntegrityError("the job's data key has been destroyed")
            return unwrap_dek_with_customer_key(job.customer_wrapped_dek, job.customer_key,
                                                job.tenant_id, job.job_id)
        if job.wrapped_dek is None:
            raise IntegrityError("the job's data key has been destroyed")
        if is_epoch_wrapped(job.wrapped_dek):
            if self.tenant_keys is None:
                raise IntegrityError("this job's key is under a tenant key")
            return self.tenant_keys.unwrap_dek(job.wrapped_dek, job.tenant_id, job.job_id)
        return self.keyring.unwrap_dek(job.wrapped_dek, job.tenant_id, job.job_id)

    def put(self, job: JobKey, kind: ObjectKind | PagePart, plaintext: bytes) -> None:
        context = ObjectContext(job.tenant_id, job.job_id, kind.value)
        with tracing.span("seal", kind=kind.name_in_traces):
            sealed = seal(self._dek(job), plaintext, context)
        with tracing.span("store", kind=kind.name_in_traces):
            self.blobs.put(_blob_of(job.tenant_id, job.job_id, kind), sealed)

    def get(self, job: JobKey, kind: ObjectKind | PagePart) -> bytes:
        content = self.find(job, kind)
        if content is None:
            raise IntegrityError("a stored object is missing")
        return content

    def find(self, job: JobKey, kind: ObjectKind | PagePart) -> bytes | None:
        """The object opened, or None if it is not stored (yet)."""
        sealed = self.blobs.get(_blob_of(job.tenant_id, job.job_id, kind))
        if sealed is None:
            return None
        # The name is authenticated: an object moved under another's name does not open.
        context = ObjectContext(job.tenant_id, job.job_id, kind.value)
        return open_sealed(self._dek(job), sealed, context)

    def delete_pages(self, tenant_id: str, job_id: str) -> None:
        """Every page part of the job, of every claim."""
        self.blobs.delete_prefix(blob_key(tenant_id, job_id, PagePart.FOLDER))

    def delete(self, tenant_id: str, job_id: str, kind: ObjectKind | PagePart) -> None:
        self.blobs.delete(_blob_of(tenant_id, job_id, kind))

    def delete_all(self, tenant_id: str, job_id: str) -> None:
        self.blobs.delete_prefix(blob_key(tenant_id, job_id))


def _blob_of(tenant_id: str, job_id: str, kind: ObjectKind | PagePart) -> str:
    return blob_key(tenant_id, job_id, *kind.value.split("/"))
