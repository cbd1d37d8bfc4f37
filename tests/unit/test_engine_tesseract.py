"""The Tesseract engine on pages rendered in the test run, with known words at known places."""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont
from tesserocr import RIL

from ocrvault.engines.base import OcrEngine, RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine, _read_lines, _View, find_tessdata
from ocrvault.errors import ErrorCode, InputRejected, ProcessingError
from ocrvault.model import Page
from tests.docgen import FONT_PATH

LINES = [
    "The quick brown fox jumps over",
    "the lazy dog near 12345 green trees.",
    "Pack my box with five dozen",
    "liquor jugs, said the old man.",
]
FONT_PX = 48

Point = tuple[float, float]


def draw_page(lines: list[str], size: tuple[int, int] = (1700, 900),
              mode: str = "L") -> tuple[Image.Image, dict[str, Point]]:
    """A white page with ``lines`` in black, and the centre of each word's ink as drawn."""
    page = Image.new(mode, size, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT_PATH), FONT_PX)
    centres: dict[str, Point] = {}
    y = FONT_PX
    for line in lines:
        x = float(FONT_PX)
        for word in line.split():
            left, top, right, bottom = draw.textbbox((x, y), word, font=font)
            draw.text((x, y), word, fill="black", font=font)
            centres[word] = ((left + right) / 2, (top + bottom) / 2)
            x = right + font.getlength(" ")
        y += int(FONT_PX * 1.6)
    return page, centres


def turned(page: Image.Image, clockwise: float) -> Image.Image:
    return page.rotate(-clockwise, expand=True, fillcolor="white",
                       resample=Image.Resampling.BICUBIC)


def turned_point(point: Point, page: Image.Image, out: Image.Image, clockwise: float) -> Point:
    """Where ``point`` of ``page`` lands in ``out = turned(page, clockwise)``: PIL turns about
    the centre and keeps the centre in the middle of the grown canvas."""
    rad = math.radians(clockwise)
    dx, dy = point[0] - page.width / 2, point[1] - page.height / 2
    return (out.width / 2 + dx * math.cos(rad) - dy * math.sin(rad),
            out.height / 2 + dx * math.sin(rad) + dy * math.cos(rad))


def centre(polygon: list[float]) -> Point:
    return sum(polygon[0::2]) / 4, sum(polygon[1::2]) / 4


def inside(inner: list[float], outer: list[float], slack: float = 1.0) -> bool:
    """Every corner of ``inner`` lies in the convex quadrilateral ``outer``."""
    corners = list(zip(outer[0::2], outer[1::2], strict=True))
    edges = list(zip(corners, corners[1:] + corners[:1], strict=True))
    for px, py in zip(inner[0::2], inner[1::2], strict=True):
        for (ax, ay), (bx, by) in edges:
            cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
            if cross < -slack * math.hypot(bx - ax, by - ay):
                return False
    return True


def word_polygon(page: Page, text: str) -> list[float]:
    return next(w.polygon for line in page.lines for w in line.words if w.text == text)


@pytest.fixture(scope="module")
def engine() -> Iterator[TesseractEngine]:
    engine = TesseractEngine()
    yield engine
    engine.close()


def read(engine: TesseractEngine, image: Image.Image, **options: Any) -> Page:
    return engine.recognize(image, RecognizeOptions(**options))


def test_engine_meets_the_contract_and_names_its_version(engine: TesseractEngine) -> None:
    assert isinstance(engine, OcrEngine)
    assert engine.info.name == "tesseract"
    assert int(engine.info.version.split(".")[0]) >= 5


def test_rendered_page_reads_back_word_for_word_with_sane_geometry(
        engine: TesseractEngine) -> None:
    image, _ = draw_page(LINES, mode="RGB")
    page = read(engine, image, page_number=3)

    assert [line.text for line in page.lines] == LINES
    assert (page.number, page.width, page.height, page.angle) == (3, 1700, 900, 0.0)
    for line in page.lines:
        assert line.text == " ".join(word.text for word in line.words)
        assert 0.0 <= line.confidence <= 1.0
        assert line.confidence == pytest.approx(
            sum(w.confidence for w in line.words) / len(line.words))
        for word in line.words:
            assert 0.0 <= word.confidence <= 1.0
            assert inside(word.polygon, line.polygon)
        for polygon in [line.polygon] + [w.polygon for w in line.words]:
            assert all(0 <= x <= page.width for x in polygon[0::2])
            assert all(0 <= y <= page.height for y in polygon[1::2])


def test_words_polygons_are_clockwise_from_top_left(engine: TesseractEngine) -> None:
    image, centres = draw_page(LINES)
    x1, y1, x2, y2, x3, y3, x4, y4 = word_polygon(read(engine, image), "quick")
    assert x1 < x2 and y1 == y2 and y3 > y2 and x4 < x3
    assert centre([x1, y1, x2, y2, x3, y3, x4, y4]) == pytest.approx(centres["quick"], abs=6)


def test_english_with_german_reads_umlauts_that_english_alone_misses(
        engine: TesseractEngine) -> None:
    lines = ["Äpfel über Straßen", "Schöne Größe für Bäcker"]
    image = draw_page(lines)[0]
    assert [line.text for line in read(engine, image, languages=("eng", "deu")).lines] == lines
    assert [line.text for line in read(engine, image, languages=("eng",)).lines] != lines


def test_unknown_language_is_rejected_naming_the_installed_ones(engine: TesseractEngine) -> None:
    with pytest.raises(InputRejected) as caught:
        read(engine, draw_page(LINES)[0], languages=("eng", "xxx"))
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert "'xxx'" in caught.value.detail and "eng" in caught.value.detail


def test_no_language_is_rejected(engine: TesseractEngine) -> None:
    with pytest.raises(InputRejected) as caught:
        read(engine, draw_page(LINES)[0], languages=())
    assert caught.value.code is ErrorCode.INVALID_PARAMETER


def test_languages_lists_installed_models_without_osd(engine: TesseractEngine) -> None:
    assert {"eng", "deu"} <= engine.languages()
    assert "osd" not in engine.languages()


@pytest.mark.parametrize(("clockwise", "angle"), [(90, 90.0), (180, 180.0), (270, -90.0)])
def test_turned_page_is_read_upright_and_polygons_land_on_the_drawn_words(
        engine: TesseractEngine, clockwise: int, angle: float) -> None:
    upright, centres = draw_page(LINES)
    image = turned(upright, clockwise)
    page = read(engine, image)

    assert [line.text for line in page.lines] == LINES
    assert page.angle == angle
    assert (page.width, page.height) == image.size
    for text in ("quick", "12345", "jugs,"):
        expected = turned_point(centres[text], upright, image, clockwise)
        assert centre(word_polygon(page, text)) == pytest.approx(expected, abs=6)
    for line in page.lines:
        assert all(inside(word.polygon, line.polygon) for word in line.words)


@pytest.mark.parametrize("clockwise", [3.0, -3.0])
def test_skewed_page_is_levelled_and_reports_its_skew(
        engine: TesseractEngine, clockwise: float) -> None:
    upright, centres = draw_page(LINES)
    image = turned(upright, clockwise)
    page = read(engine, image)

    assert [line.text for line in page.lines] == LINES
    assert page.angle == pytest.approx(clockwise, abs=0.5)
    expected = turned_point(centres["quick"], upright, image, clockwise)
    assert centre(word_polygon(page, "quick")) == pytest.approx(expected, abs=6)
    x1, y1, x2, y2, *_ = word_polygon(page, "quick")
    assert math.degrees(math.atan2(y2 - y1, x2 - x1)) == pytest.approx(clockwise, abs=0.5)


def test_orientation_and_skew_are_left_alone_when_not_asked(engine: TesseractEngine) -> None:
    page = read(engine, turned(draw_page(LINES)[0], 3.0), detect_orientation=False, deskew=False)
    assert page.angle == 0.0


def test_threads_reading_at_once_get_what_one_thread_gets(engine: TesseractEngine) -> None:
    images = [draw_page(LINES)[0], turned(draw_page(LINES[::-1])[0], 180)] * 2
    alone = [read(engine, image) for image in images]
    start = threading.Barrier(2)

    def read_after_barrier(image: Image.Image) -> Page:
        start.wait(timeout=30)
        return read(engine, image)

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(read_after_barrier, images))
    assert together == alone


@pytest.mark.parametrize("size", [(800, 600), (1, 1), (3, 700), (700, 3)])
def test_blank_or_degenerate_page_returns_no_lines(
        engine: TesseractEngine, size: tuple[int, int]) -> None:
    page = read(engine, Image.new("RGB", size, "white"))
    assert (page.lines, page.angle, page.width, page.height) == ([], 0.0, *size)


def test_text_drawn_only_in_the_alpha_channel_is_read(engine: TesseractEngine) -> None:
    ink, _ = draw_page(LINES[:2])
    image = Image.new("LA", ink.size, (0, 0))
    image.putalpha(ink.point(lambda v: 255 - v))  # black text, transparent background
    assert [line.text for line in read(engine, image).lines] == LINES[:2]


def test_sixteen_bit_page_is_read_not_clipped_to_white(engine: TesseractEngine) -> None:
    grey_ink = draw_page(LINES[:2])[0].point(lambda v: max(v, 60))  # clipped, all of it is white
    image = grey_ink.convert("I").point(lambda v: v * 257).convert("I;16")
    assert [line.text for line in read(engine, image).lines] == LINES[:2]


def test_page_over_its_time_limit_fails_with_a_timeout(engine: TesseractEngine) -> None:
    with pytest.raises(ProcessingError) as caught:
        read(engine, draw_page(LINES)[0], timeout_seconds=1e-9, page_number=7)
    assert caught.value.code is ErrorCode.PROCESSING_TIMEOUT
    assert "page 7" in caught.value.detail


def test_closed_engine_refuses_pages_and_closes_twice_quietly() -> None:
    engine = TesseractEngine()
    image = draw_page(LINES[:1])[0]
    assert read(engine, image).lines
    engine.close()
    engine.close()
    with pytest.raises(ProcessingError):
        read(engine, image)
    other_thread = ThreadPoolExecutor(1)
    with pytest.raises(ProcessingError):
        other_thread.submit(read, engine, image).result()
    other_thread.shutdown()


def test_a_thread_keeps_only_a_few_language_sets_loaded() -> None:
    engine = TesseractEngine()
    image = Image.new("L", (50, 50), "white")
    for languages in [("eng",), ("deu",), ("eng", "deu"), ("deu", "eng"), ("fra",), ("spa",)]:
        read(engine, image, languages=languages)
    gc.collect()
    assert len(engine._slots) == 4
    engine.close()


class OddIterator:
    """A ResultIterator (tesserocr's method names) over one line of odd words."""

    def __init__(self, words: list[tuple[object, object, object]]) -> None:
        self.words, self.index = words, 0

    def Empty(self, level: int) -> bool:
        return not self.words

    def IsAtBeginningOf(self, level: int) -> bool:
        return self.index == 0

    def BoundingBox(self, level: int) -> tuple[int, int, int, int] | None:
        if level == RIL.TEXTLINE:
            return (0, 0, 400, 50)
        return self.words[self.index][1]  # type: ignore[return-value]

    def GetUTF8Text(self, level: int) -> str:
        text = self.words[self.index][0]
        if isinstance(text, Exception):
            raise text
        return text  # type: ignore[return-value]

    def Confidence(self, level: int) -> float:
        return self.words[self.index][2]  # type: ignore[return-value]

    def Next(self, level: int) -> bool:
        self.index += 1
        return self.index < len(self.words)


def test_odd_engine_output_is_replaced_not_raised() -> None:
    bad_utf8 = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    iterator = OddIterator([
        ("ok", (10, 10, 50, 40), 150.0),
        (bad_utf8, (60, 10, 90, 40), float("nan")),
        ("  ", (100, 10, 120, 40), 90.0),
        (RuntimeError("No text returned"), (130, 10, 150, 40), 90.0),
        ("nobox", None, 90.0),
        ("neg", (160, 10, 190, 40), -5.0),
        ("junk", (10, 10, 50, 40), "not a number"),
    ])
    [line] = _read_lines(iterator, _View.of((500, 100), 0.0, 1.0))
    assert [(w.text, w.confidence) for w in line.words] == [
        ("ok", 1.0), ("\N{REPLACEMENT CHARACTER}", 0.0), ("neg", 0.0), ("junk", 0.0)]


def test_tessdata_named_by_argument_must_hold_english(tmp_path: Path) -> None:
    with pytest.raises(ProcessingError) as caught:
        TesseractEngine(tmp_path)
    assert str(tmp_path) in caught.value.detail


def test_tessdata_comes_from_the_environment_before_the_system(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "eng.traineddata").write_bytes(b"")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert find_tessdata() == tmp_path


def test_tessdata_defaults_to_the_newest_system_version_with_english(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSDATA_PREFIX", raising=False)
    for version, files in [("4.00", ["eng"]), ("5", ["eng"]), ("10", ["deu"])]:
        folder = tmp_path / version / "tessdata"
        folder.mkdir(parents=True)
        for name in files:
            (folder / f"{name}.traineddata").write_bytes(b"")
    assert find_tessdata(system_root=tmp_path) == tmp_path / "5" / "tessdata"
    with pytest.raises(ProcessingError):
        find_tessdata(system_root=tmp_path / "nothing")
