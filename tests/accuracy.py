"""What accuracy is measured on and how: the shared corpus, a rendered two-column page,
character error rate and word F1 (case-insensitive, whitespace normalised; words split on
whitespace as the issue measured them, or with punctuation apart).

Used by tests/integration/test_accuracy.py and bench/engines.py, so that the test's
thresholds and the benchmark's table measure the same thing.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from tests.conftest import CORPUS
from tests.docgen import FONT_PATH, encode

TWO_COLUMN = "two-column"
# Issue 11's targets for receipts: mean CER and mean word F1 (words split on whitespace).
RECEIPT_MAX_CER, RECEIPT_MIN_WORD_F1 = 0.04, 0.88


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def cer(predicted: str, truth: str) -> float:
    truth = normalise(truth)
    return Levenshtein.distance(normalise(predicted), truth) / max(1, len(truth))


def spaced_words(text: str) -> list[str]:
    """Words split on whitespace only: the issue's word F1 (its table and its 0.88 bar)."""
    return normalise(text).split()


# A word is a run of letters and digits, joined inside by . , / ' - ("8.20", "7/4",
# "facebook.com"); any other symbol is a word of its own. So "#:OR1803" and "# : OR1803"
# (the receipts' transcripts space their punctuation) are the same three words.
_WORD = re.compile(r"\w+(?:[.,/'-]\w+)*|[^\w\s]")


def words(text: str) -> list[str]:
    """Words with punctuation apart: spacing around symbols does not count, misreads do."""
    return _WORD.findall(normalise(text))


def word_f1(predicted: str, truth: str, split: Callable[[str], list[str]] = spaced_words
            ) -> float:
    """F1 of the bags of words (each word counted as often as it occurs), split on
    whitespace (the issue's measure) or by ``split`` (e.g. :func:`words`)."""
    got, want = Counter(split(predicted)), Counter(split(truth))
    matched = sum((got & want).values())
    if not matched:
        return 0.0
    precision, recall = matched / sum(got.values()), matched / sum(want.values())
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str
    data: bytes
    truth: str


def corpus() -> list[Sample]:
    """The shared corpus (kinds from its manifest) and the two-column page."""
    folder = CORPUS / "ocr"
    rows = [line.split("\t") for line in
            (folder / "manifest.tsv").read_text().splitlines()[1:] if line.strip()]
    samples = [Sample(row[0], row[3], (folder / row[0]).read_bytes(),
                      Path(folder / row[0]).with_suffix(".gt.txt").read_text("utf-8"))
               for row in rows]
    image, truth = two_column_page()
    return [*samples, Sample("two_column.png", TWO_COLUMN, encode(image, "PNG"), truth)]


_HEADER = "Quarterly Report of the Harbour Board"
_LEFT = (
    "The harbour handled more ships this quarter than in any quarter before, and the "
    "new crane on the east quay started work in March. Waiting times "
    "fell by a third while the number of pilots stayed the same."
)
_RIGHT = (
    "Repairs to the north breakwater will start in the summer and last until the "
    "autumn storms. Fishing boats keep their berths, but yachts move to the west "
    "basin for the season, where the board has added forty moorings."
)
_FOOTER = "Page 7 of 12"


def two_column_page() -> tuple[Image.Image, str]:
    """A page with a centred title and footer around two columns of text, and its text in
    reading order. The columns' lines share baselines, the harder case for reading order."""
    font_px, width, margin, gutter = 30, 1700, 90, 80
    font = ImageFont.truetype(str(FONT_PATH), font_px)
    pitch = int(font_px * 1.6)
    column_width = (width - 2 * margin - gutter) // 2
    chars = int(column_width / (font_px * 0.56))
    left, right = textwrap.wrap(_LEFT, chars), textwrap.wrap(_RIGHT, chars)
    page = Image.new("RGB", (width, 200 + pitch * (max(len(left), len(right)) + 4)), "white")
    draw = ImageDraw.Draw(page)
    draw.text((width // 2, 60), _HEADER, fill="black", font=font, anchor="mt")
    top = 60 + 2 * pitch
    for k, text in enumerate(left):
        draw.text((margin, top + k * pitch), text, fill="black", font=font)
    for k, text in enumerate(right):
        draw.text((margin + column_width + gutter, top + k * pitch), text, fill="black",
                  font=font)
    draw.text((width // 2, top + (max(len(left), len(right)) + 1) * pitch), _FOOTER,
              fill="black", font=font, anchor="mt")
    return page, "\n".join([_HEADER, *left, *right, _FOOTER])
