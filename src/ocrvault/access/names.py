"""Free text the API takes (key and tenant names) must print as what it is.

Names reach the audit log, listings and operators' terminals: a newline forges a log
line, an ANSI escape repaints a terminal, a bidi override shows ``gpj.exe`` as
``exe.jpg``. Refused: C0 and C1 controls (newline, ESC, ...), DEL, the line and
paragraph separators, and the bidi embeddings, overrides and isolates.
"""

from __future__ import annotations

import re

MAX_NAME_CHARS = 100

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def name_problem(text: str, max_chars: int = MAX_NAME_CHARS) -> str | None:
    """What is wrong with ``text`` as a name, or None."""
    if not text.strip():
        return "give a name that is not blank"
    if len(text) > max_chars:
        return f"give a name of at most {max_chars} characters"
    match = _UNPRINTABLE.search(text)
    if match is not None:
        return (f"a name may not hold control or bidirectional-override characters "
                f"(U+{ord(match.group()):04X})")
    return None
