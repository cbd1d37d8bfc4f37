"""English names of the language codes Tesseract's models use (ISO 639-2/T, with a few
of its own: ``chi_sim``, ``osd``...). A code not in the table is named by itself."""

from __future__ import annotations

NAMES: dict[str, str] = {
    "afr": "Afrikaans", "amh": "Amharic", "ara": "Arabic", "asm": "Assamese",
    "aze": "Azerbaijani", "aze_cyrl": "Azerbaijani (Cyrillic)", "bel": "Belarusian",
    "ben": "Bengali", "bod": "Tibetan", "bos": "Bosnian", "bre": "Breton", "bul": "Bulgarian",
    "cat": "Catalan", "ceb": "Cebuano", "ces": "Czech", "chi_sim": "Chinese (Simplified)",
    "chi_tra": "Chinese (Traditional)", "chr": "Cherokee", "cos": "Corsican", "cym": "Welsh",
    "dan": "Danish", "deu": "German", "div": "Dhivehi", "dzo": "Dzongkha", "ell": "Greek",
    "eng": "English", "enm": "Middle English", "epo": "Esperanto", "equ": "Math / equations",
    "est": "Estonian", "eus": "Basque", "fao": "Faroese", "fas": "Persian",
    "fil": "Filipino", "fin": "Finnish", "fra": "French", "frk": "Fraktur (German)",
    "frm": "Middle French", "fry": "Western Frisian", "gla": "Scottish Gaelic",
    "gle": "Irish", "glg": "Galician", "grc": "Ancient Greek", "guj": "Gujarati",
    "hat": "Haitian Creole", "heb": "Hebrew", "hin": "Hindi", "hrv": "Croatian",
    "hun": "Hungarian", "hye": "Armenian", "iku": "Inuktitut", "ind": "Indonesian",
    "isl": "Icelandic", "ita": "Italian", "ita_old": "Italian (old)", "jav": "Javanese",
    "jpn": "Japanese", "jpn_vert": "Japanese (vertical)", "kan": "Kannada",
    "kat": "Georgian", "kat_old": "Georgian (old)", "kaz": "Kazakh", "khm": "Khmer",
    "kir": "Kyrgyz", "kmr": "Kurmanji Kurdish", "kor": "Korean",
    "kor_vert": "Korean (vertical)", "lao": "Lao", "lat": "Latin", "lav": "Latvian",
    "lit": "Lithuanian", "ltz": "Luxembourgish", "mal": "Malayalam", "mar": "Marathi",
    "mkd": "Macedonian", "mlt": "Maltese", "mon": "Mongolian", "mri": "Maori",
    "msa": "Malay", "mya": "Burmese", "nep": "Nepali", "nld": "Dutch", "nor": "Norwegian",
    "oci": "Occitan", "ori": "Odia", "osd": "Orientation and script detection",
    "pan": "Punjabi", "pol": "Polish", "por": "Portuguese", "pus": "Pashto",
    "que": "Quechua", "ron": "Romanian", "rus": "Russian", "san": "Sanskrit",
    "sin": "Sinhala", "slk": "Slovak", "slv": "Slovenian", "snd": "Sindhi",
    "spa": "Spanish", "spa_old": "Spanish (old)", "sqi": "Albanian", "srp": "Serbian",
    "srp_latn": "Serbian (Latin)", "sun": "Sundanese", "swa": "Swahili", "swe": "Swedish",
    "syr": "Syriac", "tam": "Tamil", "tat": "Tatar", "tel": "Telugu", "tgk": "Tajik",
    "tha": "Thai", "tir": "Tigrinya", "ton": "Tongan", "tur": "Turkish", "uig": "Uyghur",
    "ukr": "Ukrainian", "urd": "Urdu", "uzb": "Uzbek", "uzb_cyrl": "Uzbek (Cyrillic)",
    "vie": "Vietnamese", "yid": "Yiddish", "yor": "Yoruba",
}


def language_name(code: str) -> str:
    return NAMES.get(code, code)
