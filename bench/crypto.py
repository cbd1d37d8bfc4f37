"""The cost of encryption at rest, against the OCR it protects, measured in one run.

    .venv/bin/python bench/crypto.py [--jobs N]

For each corpus page: OCR time (the engine as the service runs it), and the time to
seal and open what the service stores for it (the input file and the result JSON)
under a fresh data key, plus wrapping and unwrapping that key. Prints the crypto
cost as a fraction of OCR time (target: under 1%), then the rewrap throughput of
`ocrvault keys rewrap` on N stored data keys (DEKs per second).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ocrvault.config import Settings
from ocrvault.crypto import ObjectContext, load_keyring, new_dek, open_sealed, seal
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.model import Document
from ocrvault.store.db import Database
from ocrvault.store.rekey import rewrap_all
from ocrvault.store.tables import JobRow, TenantRow

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ocr"


def crypto_fraction(settings: Settings) -> None:
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        crypto_fraction(settings)
        rewrap_throughput(settings, args.jobs)


if __name__ == "__main__":
    main()
