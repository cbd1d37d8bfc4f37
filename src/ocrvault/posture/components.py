"""The versions of every component that reads documents, for patch review.

Read from what is installed in this process's environment, which the decode sandbox's
children share: package metadata and the libraries' own version records. Nothing that
parses a document is run, and no OCR engine is created (an API node never loads one):
Tesseract's version comes from the engine catalog's description, RapidOCR's models are
named by file and SHA-256 from the wheel's folder, found without importing it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path

from ocrvault.posture.model import EvidenceValue

# Pillow's codecs that decode the image formats the allow-list admits.
_PILLOW_CODECS = ("libjpeg_turbo", "libtiff", "webp", "zlib", "jpg_2000", "littlecms2")


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def pdfium_version() -> str:
    """The pdfium build pypdfium2 ships, from its version record (the library unloaded)."""
    folder = _package_dir("pypdfium2_raw")
    record = folder / "version.json" if folder else None
    if record is None or not record.is_file():
        return "unknown"
    info = json.loads(record.read_text(encoding="utf-8"))
    number = ".".join(str(info.get(part, 0)) for part in ("major", "minor", "build", "patch"))
    return f"{number} ({info['origin']})" if info.get("origin") else number


def qpdf_version() -> str:
    try:
        import pikepdf
    except ImportError:
        return "not installed"
    return str(pikepdf.__libqpdf_version__)


def pillow_codecs() -> dict[str, str | int | float | bool | None]:
    from PIL import features

    return {codec: features.version(codec) for codec in _PILLOW_CODECS}


@functools.cache
def rapidocr_models() -> dict[str, str | int | float | bool | None]:
    """Each ONNX model the rapidocr wheel ships: file name -> SHA-256 (hashed once)."""
    folder = _package_dir("rapidocr")
    if folder is None or not (folder / "models").is_dir():
        return {}
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((folder / "models").glob("*.onnx"))}


def document_readers(engines: dict[str, str]) -> dict[str, EvidenceValue]:
    """Evidence for the components check: ``engines`` is each OCR engine's name -> version
    as the running engine catalog describes it."""
    return {
        "engines": dict(engines),
        "tesserocr": package_version("tesserocr"),
        "onnxruntime": package_version("onnxruntime"),
        "rapidocr": package_version("rapidocr"),
        "rapidocr_models_sha256": rapidocr_models(),
        "pypdfium2": package_version("pypdfium2"),
        "pdfium": pdfium_version(),
        "pillow": package_version("pillow"),
        "pillow_codecs": pillow_codecs(),
        "pikepdf": package_version("pikepdf"),
        "qpdf": qpdf_version(),
    }
