"""Tesseract's language data on disk: where it is and which languages it holds.

Apart from engines/tesseract.py (which loads libtesseract), so that a process that only
describes the engine (an API node listing languages) reads a folder and loads nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ocrvault.errors import ErrorCode, ProcessingError

SYSTEM_TESSDATA_ROOT = Path("/usr/share/tesseract-ocr")
OSD = "osd"
_REQUIRED_LANGUAGE = "eng"


def find_tessdata(explicit: Path | None = None, *,
                  system_root: Path = SYSTEM_TESSDATA_ROOT) -> Path:
    """The tessdata folder: ``explicit``, else ``$TESSDATA_PREFIX``, else the newest system one.

    A folder that is named (by argument or environment) is used or refused, never
    silently replaced by another, so that a deployment runs the models it chose.
    """
    named = explicit or (Path(os.environ["TESSDATA_PREFIX"])
                         if os.environ.get("TESSDATA_PREFIX") else None)
    candidates = [named] if named else sorted(
        system_root.glob("*/tessdata"), key=lambda p: _version_key(p.parent.name), reverse=True)
    for candidate in candidates:
        if (candidate / f"{_REQUIRED_LANGUAGE}.traineddata").is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates) or f"{system_root}/*/tessdata"
    raise ProcessingError(
        ErrorCode.INTERNAL_ERROR,
        f"no Tesseract language data ({_REQUIRED_LANGUAGE}.traineddata) in {searched}; "
        "install tesseract-ocr-eng or set OCRVAULT_TESSDATA_DIR to a tessdata folder",
    )


def installed_languages(tessdata: Path) -> frozenset[str]:
    """The language codes whose models are in ``tessdata`` (orientation's own model aside)."""
    return frozenset(path.stem for path in tessdata.glob("*.traineddata")) - {OSD}


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))
