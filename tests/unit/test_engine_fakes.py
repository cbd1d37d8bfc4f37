"""The fake engines behave as the pipeline and queue tests rely on."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from ocrvault.engines.base import OcrEngine, RecognizeOptions
from tests.engine_fakes import FIXED_LINES, BlockingEngine, FailingEngine, FixedEngine

IMAGE = Image.new("L", (300, 200), "white")


@pytest.mark.parametrize("engine", [FixedEngine(), FailingEngine(), BlockingEngine()])
def test_fakes_meet_the_engine_contract(engine: OcrEngine) -> None:
    assert isinstance(engine, OcrEngine)
    assert "eng" in engine.languages()


def test_fixed_engine_returns_its_lines_on_the_asked_page() -> None:
    page = FixedEngine().recognize(IMAGE, RecognizeOptions(page_number=4))
    assert (page.number, page.width, page.height) == (4, 300, 200)
    assert page.text == "\n".join(FIXED_LINES)


def test_failing_engine_raises() -> None:
    with pytest.raises(RuntimeError):
        FailingEngine().recognize(IMAGE, RecognizeOptions())


def test_blocking_engine_holds_the_page_until_released() -> None:
    engine = BlockingEngine()
    results = []
    worker = threading.Thread(
        target=lambda: results.append(engine.recognize(IMAGE, RecognizeOptions())))
    worker.start()
    assert engine.started.wait(timeout=30)
    assert not results
    engine.release.set()
    worker.join(timeout=30)
    assert [page.text for page in results] == ["\n".join(FIXED_LINES)]


def test_blocking_engine_gives_up_rather_than_hang_for_ever() -> None:
    with pytest.raises(RuntimeError):
        BlockingEngine(timeout=0).recognize(IMAGE, RecognizeOptions())
