"""The vendors' language names, mapped to the Tesseract codes /v1 takes."""

from __future__ import annotations

from ocrvault.api.compat.common import VendorError
from ocrvault.errors import ErrorCode

# BCP-47 (Azure ``language``, Document Intelligence ``locale``) -> Tesseract; a region
# (``en-US``) reads as its language.
_BCP47 = {
    "af": "afr", "ca": "cat", "cs": "ces", "da": "dan", "de": "deu", "el": "ell",
    "en": "eng", "es": "spa", "et": "est", "eu": "eus", "fi": "fin", "fr": "fra",
    "ga": "gle", "gl": "glg", "hr": "hrv", "hu": "hun", "id": "ind", "it": "ita",
    "ja": "jpn", "ko": "kor", "lt": "lit", "lv": "lav", "ms": "msa", "nl": "nld",
    "no": "nor", "nb": "nor", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus",
    "sk": "slk", "sl": "slv", "sq": "sqi", "sv": "swe", "tr": "tur", "uk": "ukr",
    "zh-hans": "chi_sim", "zh-hant": "chi_tra",
}

# ABBYY's language names (``English,German``) -> Tesseract.
_ABBYY = {
    "english": "eng", "german": "deu", "french": "fra", "spanish": "spa", "italian": "ita",
    "dutch": "nld", "portuguese": "por", "russian": "rus", "polish": "pol", "czech": "ces",
    "danish": "dan", "finnish": "fin", "swedish": "swe", "norwegian": "nor",
    "hungarian": "hun", "turkish": "tur", "greek": "ell", "ukrainian": "ukr",
    "chineseprc": "chi_sim", "chinesetaiwan": "chi_tra", "japanese": "jpn", "korean": "kor",
}


def _unknown(name: str) -> VendorError:
    return VendorError(ErrorCode.INVALID_PARAMETER, "NotSupportedLanguage",
                       f"The language {name[:40]!r} is not supported.")


def from_bcp47(tag: str | None) -> str | None:
    """The Tesseract code of a BCP-47 tag, None for none; unknown: NotSupportedLanguage."""
    if not tag:
        return None
    lowered = tag.strip().lower()
    code = _BCP47.get(lowered) or (None if lowered.startswith("zh") else
                                   _BCP47.get(lowered.split("-")[0]))
    if code is None:
        raise _unknown(tag)
    return code


def from_abbyy(names: str | None) -> str | None:
    """Tesseract codes joined by ',' for ABBYY's ``English,German``; None for none."""
    if not names:
        return None
    codes = []
    for name in names.split(","):
        code = _ABBYY.get(name.strip().lower())
        if code is None:
            raise _unknown(name.strip())
        codes.append(code)
    return ",".join(dict.fromkeys(codes))
