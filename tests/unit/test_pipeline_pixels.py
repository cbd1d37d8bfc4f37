"""The pixels an engine is handed: grey from the decode child for an engine that reads grey
levels only (Tesseract), the page's own colour for any other (RapidOCR, plugins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL.Image import Image

from ocrvault.compose.worker import build_pipeline
from ocrvault.config import Settings
from ocrvault.engines.base import RecognizeOptions
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.jobs.pipeline import OcrPipeline
from ocrvault.model import Page
from tests.docgen import encode, pdf_of, text_page
from tests.engine_fakes import FixedEngine


class ModeRecorder(FixedEngine):
    def __init__(self) -> None:
        self.modes: list[str] = []

    def recognize(self, image: Image, options: RecognizeOptions) -> Page:
        self.modes.append(image.mode)
        return super().recognize(image, options)


class GreyModeRecorder(ModeRecorder):
    reads_grey = True


@pytest.fixture
def pipelines(tmp_path: Path) -> Iterator[dict[str, tuple[OcrPipeline, ModeRecorder]]]:
    made = {}
    for name, engine in (("colour", ModeRecorder()), ("grey", GreyModeRecorder())):
        made[name] = build_pipeline(Settings(data_dir=tmp_path / name), engine), engine
    yield made
    for pipeline, _ in made.values():
        pipeline.ingestor.sandbox.close()


def test_tesseract_says_it_reads_grey() -> None:
    assert TesseractEngine.reads_grey is True


@pytest.mark.parametrize("kind", ["png", "pdf"])
def test_a_colour_page_reaches_a_grey_engine_as_grey_and_any_other_in_colour(
        pipelines: dict[str, tuple[OcrPipeline, ModeRecorder]], kind: str) -> None:
    page = text_page(["colour"], size=(300, 100)).convert("RGB")
    data = encode(page, "PNG") if kind == "png" else pdf_of([page, page], dpi=72)
    for name, (pipeline, engine) in pipelines.items():
        params = pipeline.params(None, None, None)
        pipeline.run(data, pipeline.check(data, params), params)
        assert set(engine.modes) == {"L" if name == "grey" else "RGB"}
