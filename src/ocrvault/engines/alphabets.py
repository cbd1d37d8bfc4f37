"""What RapidOCR reads, known without loading it: its languages and their alphabets, and
its version from the installed package's metadata.

Apart from engines/rapidocr.py (which loads ONNX Runtime), so that a process that only
describes the engine (an API node listing languages) loads nothing.
"""

from __future__ import annotations

import importlib.metadata
import string

RAPIDOCR = "rapidocr"
# The characters a reading in each language may write; None: all of the recogniser's.
ALPHABETS: dict[str, frozenset[str] | None] = {
    # ASCII and the signs of English print: £ € ¥ ¢ ° ± ÷ § © ® ™, times, dashes, curly quotes.
    "eng": frozenset(string.printable.strip() + " £€¥¢°±\u00d7÷§©®™\u2013\u2014"
                     "\u2018\u2019\u201c\u201d…•"),
    "chi_sim": None,
}
LANGUAGES = frozenset(ALPHABETS)


def rapidocr_version() -> str:
    """The engine's version as results name it: the package's, and the models'."""
    return f"{importlib.metadata.version('rapidocr')} (PP-OCRv6 small)"
