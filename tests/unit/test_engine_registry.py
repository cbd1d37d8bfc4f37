"""Engines are chosen by name; tesseract is there by default and fakes can be added."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocrvault.config import Settings
from ocrvault.engines import registry
from ocrvault.engines.base import OcrEngine
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.errors import ErrorCode, InputRejected
from tests.engine_fakes import FixedEngine


def test_tesseract_is_registered_and_uses_the_configured_tessdata() -> None:
    settings = Settings(tessdata_dir=Path("/usr/share/tesseract-ocr/5/tessdata"))
    engine = registry.create("tesseract", settings)
    assert isinstance(engine, TesseractEngine)
    assert engine.tessdata_dir == settings.tessdata_dir
    engine.close()


def test_a_registered_fake_is_created_by_name() -> None:
    registry.register("fake-fixed", lambda settings: FixedEngine())
    engine = registry.create("fake-fixed", Settings())
    assert isinstance(engine, FixedEngine) and isinstance(engine, OcrEngine)
    assert {"tesseract", "fake-fixed"} <= registry.available()


def test_unknown_engine_name_is_rejected_listing_the_known_ones() -> None:
    with pytest.raises(InputRejected) as caught:
        registry.create("nope", Settings())
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert "tesseract" in caught.value.detail
