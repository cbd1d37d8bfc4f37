"""The cost of encryption at rest, against the OCR it protects, measured in one run.

    .venv/bin/python bench/crypto.py [--jobs N] [--per-provider N]

For each corpus page: OCR time (the engine as the service runs it), and the time to
seal and open what the service stores for it (the input file and the result JSON)
under a fresh data key, plus wrapping and unwrapping that key. Prints the crypto
cost as a fraction of OCR time (target: under 1%), then the rewrap throughput of
`ocrvault keys rewrap` on N stored data keys (DEKs per second).

Then, for each master-key provider (keyring file; SoftHSM2 through PKCS#11; AWS KMS on
moto's local server, so network latency to a real KMS comes on top), the key work of one
job: its DEK wrapped under the tenant's epoch key and unwrapped again, with the tenant
key cached (the service's path) and uncached (every use asks the provider), and the
provider's own wrap+unwrap (one round trip each), each as a share of the mean OCR time of
a page.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ocrvault.config import Settings
from ocrvault.crypto import ObjectContext, load_keyring, new_dek, open_sealed, seal
from ocrvault.crypto.keystore import DirectoryKeyStore
from ocrvault.crypto.master import open_master_keys
from ocrvault.crypto.tenant_keys import TenantKeys
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.model import Document
from ocrvault.store.db import Database
from ocrvault.store.rekey import rewrap_all
from ocrvault.store.tables import JobRow, TenantRow

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ocr"


def crypto_fraction(settings: Settings) -> float:
    """Prints the share; returns the mean OCR seconds per page."""
    keyring = load_keyring(settings)
    engine = TesseractEngine()
    files = sorted(p for p in CORPUS.iterdir() if p.suffix in {".jpg", ".png", ".tif"})
    ocr_total = crypto_total = 0.0
    for path in files:
        data = path.read_bytes()
        image = Image.open(io.BytesIO(data))
        start = time.perf_counter()
        page = engine.recognize(image.convert("RGB"), RecognizeOptions())
        ocr_total += time.perf_counter() - start
        result = Document.from_pages([page], engine.info, ["eng"]).model_dump_json().encode()

        start = time.perf_counter()
        dek = new_dek()
        job_id = str(uuid.uuid4())
        wrapped = keyring.wrap_dek(dek, "tenant", job_id)
        for kind, plaintext in (("input", data), ("result", result)):
            context = ObjectContext("tenant", job_id, kind)
            opened = open_sealed(keyring.unwrap_dek(wrapped, "tenant", job_id),
                                 seal(dek, plaintext, context), context)
            assert opened == plaintext
        crypto_total += time.perf_counter() - start
    engine.close()
    print(f"{len(files)} pages: OCR {ocr_total:.2f} s, seal+open+wrap+unwrap "
          f"{crypto_total * 1000:.2f} ms = {100 * crypto_total / ocr_total:.3f}% of OCR time")
    return ocr_total / len(files)


def _per_call(call: Callable[[], object], n: int) -> float:
    call()  # the first call opens sessions and connections: not a job's cost
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def provider_costs(tmp: Path, ocr_per_page: float, n: int) -> None:
    from tests.s3server import aws_test_environment, moto_server
    from tests.softhsm import new_token

    with aws_test_environment(), moto_server() as endpoint:
        kms_key = boto3.session.Session().client(
            "kms", endpoint_url=endpoint, region_name="us-east-1").create_key()["KeyMetadata"]
        token = new_token()
        providers = {
            "keyring": Settings(data_dir=tmp / "keyring"),
            "pkcs11": Settings(data_dir=tmp / "pkcs11", key_provider="pkcs11",
                               pkcs11_library=token.library, pkcs11_token_label=token.label,
                               pkcs11_pin=token.pin),
            "aws-kms": Settings(data_dir=tmp / "kms", key_provider="aws-kms",
                                kms_key_id=kms_key["KeyId"], kms_endpoint_url=endpoint,
                                kms_region="us-east-1"),
        }
        print(f"per job, {n} jobs each; mean OCR time of a page {ocr_per_page * 1000:.0f} ms")
        for name, settings in providers.items():
            figures = _job_costs(settings, n)
            print(f"  {name:8} " + ", ".join(
                f"{label} {seconds * 1000:.3f} ms ({100 * seconds / ocr_per_page:.3f}% of OCR)"
                for label, seconds in figures.items()))


def _job_costs(settings: Settings, n: int) -> dict[str, float]:
    """Seconds per job: cached and uncached tenant key, and the provider's round trips."""
    master = open_master_keys(settings, load_keyring(settings))
    expires = datetime.now(UTC)
    context = {"ocrvault:tenant": "t", "ocrvault:purpose": "bench"}
    figures = {}
    for label, cache in (("cached", 3600.0), ("uncached", 0.0)):
        keys = TenantKeys(master, DirectoryKeyStore(settings.data_dir / f"keys-{label}"),
                          cache_seconds=cache)

        def job(keys: TenantKeys = keys) -> None:
            job_id = str(uuid.uuid4())
            keys.unwrap_dek(keys.wrap_dek(new_dek(), "t", job_id, expires).wrapped, "t", job_id)
        figures[label] = _per_call(job, n)
    figures["provider"] = _per_call(
        lambda: master.unwrap(master.wrap(new_dek(), context), context), n)
    return figures


def rewrap_throughput(settings: Settings, jobs: int) -> None:
    keyring = load_keyring(settings)
    db = Database(settings.resolved_database_url)
    db.migrate()
    now = datetime.now(UTC)
    with db.transaction() as session:
        session.add(TenantRow(id="tenant", name="bench", created_at=now))
        session.flush()  # the jobs reference it
        for _ in range(jobs):
            job_id = str(uuid.uuid4())
            session.add(JobRow(
                id=job_id, tenant_id="tenant", environment="live", status="succeeded",
                created_at=now, languages=["eng"], outputs=[], attempts=1, stored_objects=[],
                wrapped_dek=keyring.wrap_dek(new_dek(), "tenant", job_id),
                master_key_version=keyring.primary,
            ))
    keyring.rotate()
    start = time.perf_counter()
    done = rewrap_all(db, keyring)
    elapsed = time.perf_counter() - start
    print(f"rewrap: {done} data keys in {elapsed:.2f} s = {done / elapsed:,.0f} DEKs/s")
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--per-provider", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        ocr_per_page = crypto_fraction(settings)
        rewrap_throughput(settings, args.jobs)
        provider_costs(Path(tmp), ocr_per_page, args.per_provider)


if __name__ == "__main__":
    main()
