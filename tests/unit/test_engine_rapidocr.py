"""The RapidOCR engine: reads with the wheel's own models, says what it reads, refuses the
rest, creates its sessions once per process, and asks for CUDA only where it exists."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ocrvault.engines import rapidocr as module
from ocrvault.engines.base import OcrEngine, RecognizeOptions
from ocrvault.engines.rapidocr import RapidOcrEngine
from ocrvault.errors import ErrorCode, InputRejected, ProcessingError
from tests.docgen import text_page

LINES = ["Invoice 2026-0117", "Total due 58.40 EUR"]


@pytest.fixture(scope="module")
def engine() -> Iterator[RapidOcrEngine]:
    rapid = RapidOcrEngine()
    yield rapid
    rapid.close()


def test_rapidocr_meets_the_engine_protocol(engine: RapidOcrEngine) -> None:
    assert isinstance(engine, OcrEngine)
    assert engine.info.name == "rapidocr"
    assert engine.languages() == {"eng", "chi_sim"}


def test_rapidocr_reads_lines_with_words_polygons_and_confidences(
        engine: RapidOcrEngine) -> None:
    page = engine.recognize(text_page(LINES, size=(1200, 300)), RecognizeOptions(page_number=2))
    assert (page.number, page.width, page.height, page.engine) == (2, 1200, 300, "rapidocr")
    assert [line.text for line in page.lines] == LINES
    for line in page.lines:
        assert " ".join(word.text for word in line.words) == line.text
        assert 0.5 < line.confidence <= 1.0
        xs, ys = line.polygon[0::2], line.polygon[1::2]
        for word in line.words:
            assert word.confidence == line.confidence
            assert min(xs) <= min(word.polygon[0::2]) <= max(word.polygon[0::2]) <= max(xs)
            assert min(ys) <= min(word.polygon[1::2]) <= max(word.polygon[1::2]) <= max(ys)
        lefts = [word.polygon[0] for word in line.words]
        assert lefts == sorted(lefts)


def test_rapidocr_reads_transparent_and_grey_pages(engine: RapidOcrEngine) -> None:
    for mode in ("LA", "L", "RGBA"):
        page = engine.recognize(text_page(LINES[:1], size=(900, 150), mode=mode),
                                RecognizeOptions())
        assert [line.text for line in page.lines] == LINES[:1], mode


def test_rapidocr_refuses_a_language_it_cannot_read_and_names_the_engine_that_can(
        engine: RapidOcrEngine) -> None:
    with pytest.raises(InputRejected) as caught:
        engine.recognize(text_page(LINES), RecognizeOptions(languages=("eng", "deu")))
    assert caught.value.code is ErrorCode.INVALID_PARAMETER
    assert caught.value.detail == ("engine rapidocr reads: chi_sim, eng; "
                                   "use engine=tesseract for deu.")


def test_rapidocr_creates_its_sessions_once_for_every_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import rapidocr

    created: list[Any] = []
    real = rapidocr.RapidOCR

    def counting(**kwargs: Any) -> Any:
        created.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(rapidocr, "RapidOCR", counting)
    engine = RapidOcrEngine()
    image = text_page(LINES[:1], size=(900, 150))
    texts: list[str] = []
    threads = [threading.Thread(target=lambda: texts.append(
        engine.recognize(image, RecognizeOptions()).text)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.close()
    assert texts == [LINES[0]] * 3
    assert len(created) == 1


def test_rapidocr_sessions_use_the_configured_threads_and_cpu_without_cuda(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module.onnxruntime, "get_available_providers",
                        lambda: ["CPUExecutionProvider"])
    params = RapidOcrEngine(threads=3).session_params()
    assert params["EngineConfig.onnxruntime.intra_op_num_threads"] == 3
    assert params["EngineConfig.onnxruntime.use_cuda"] is False
    assert params["Rec.rec_batch_num"] == 1  # no padding to the batch's widest line
    assert params["Global.max_side_len"] == module.MAX_SIDE  # lines cut at full resolution
    for stage in ("Det", "Rec", "Cls"):  # the wheel's files, by path: nothing to download
        assert params[f"{stage}.model_path"].endswith(".onnx")


def test_rapidocr_asks_for_cuda_where_onnxruntime_has_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module.onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    params = RapidOcrEngine().session_params()
    assert params["EngineConfig.onnxruntime.use_cuda"] is True
    assert params["Rec.rec_batch_num"] == 6


def test_rapidocr_refuses_to_start_without_its_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(module.MODELS, "Det", "missing.onnx")
    with pytest.raises(ProcessingError, match=r"missing\.onnx is missing; reinstall"):
        RapidOcrEngine().recognize(text_page(LINES), RecognizeOptions())


def test_a_closed_rapidocr_engine_refuses_to_read() -> None:
    engine = RapidOcrEngine()
    engine.close()
    with pytest.raises(ProcessingError, match="closed"):
        engine.recognize(text_page(LINES), RecognizeOptions())


def test_word_boxes_split_the_line_box_by_characters() -> None:
    words = module.words_of("ab cdef", [0, 0, 70, 0, 70, 10, 0, 10], 0.9)
    assert [(w.text, w.polygon) for w in words] == [
        ("ab", [0, 0, 20, 0, 20, 10, 0, 10]),
        ("cdef", [30, 0, 70, 0, 70, 10, 30, 10]),
    ]


def test_an_english_reading_writes_the_likeliest_english_character_not_a_look_alike() -> None:
    decoder = module.LineDecoder(["blank", "a", "中", "à", "l", " "])
    # Per step: blank, a, 中, à, l, space. Step 1 likeliest 中 (then a), step 3 à (then l).
    preds = np.array([[[0.0, 0.3, 0.6, 0.0, 0.1, 0.0],
                       [0.9, 0.0, 0.0, 0.1, 0.0, 0.0],
                       [0.0, 0.0, 0.0, 0.6, 0.4, 0.0]]], dtype=np.float32)

    def read(languages: tuple[str, ...]) -> str:
        with decoder.reading(RecognizeOptions(languages=languages), None):
            return str(decoder(preds)[0][0][0])

    assert read(("eng",)) == "al"
    assert read(("eng", "chi_sim")) == "中à"  # Chinese's alphabet is the whole dictionary
    assert decoder(preds)[0][0][0] == "中à"  # outside a reading: unrestricted
    seen: list[str] = []
    with decoder.reading(RecognizeOptions(languages=("eng",)), None):
        # another thread's reading has its own alphabets
        thread = threading.Thread(target=lambda: seen.append(read(("chi_sim",))))
        thread.start()
        thread.join()
        assert decoder(preds)[0][0][0] == "al"
    assert seen == ["中à"]


SPACE_STEPS = ["blank", "a", "b", " "]


def steps(*rows: tuple[float, float, float, float]) -> Any:
    return np.array(rows, dtype=np.float32)


def test_a_space_spread_over_steps_is_written_though_no_step_outweighs_its_blank() -> None:
    a, b = (0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0)
    hedged = (0.55, 0.0, 0.0, 0.45)  # the best path drops this space at every step
    assert module.decode(steps(a, hedged, hedged, b), SPACE_STEPS)[0] == "a b"
    assert module.decode(steps(a, hedged, b), SPACE_STEPS)[0] == "ab"  # one step: no space
    assert module.decode(steps(a, (0.2, 0.0, 0.0, 0.8), b), SPACE_STEPS)[0] == "a b"
    assert module.decode(steps(a, (0.9, 0.0, 0.0, 0.1), (0.9, 0.0, 0.0, 0.1), b),
                         SPACE_STEPS)[0] == "ab"


def test_equal_characters_a_blank_may_part_are_read_as_two_though_the_best_path_joins_them(
        ) -> None:
    a, unsure = (0.0, 0.9, 0.0, 0.1), (0.45, 0.5, 0.0, 0.05)
    # Best path: a a a a, one "a". Summed over alignments, "aa" (a blank somewhere between)
    # is likelier (0.53 against 0.20).
    assert module.decode(steps(a, unsure, unsure, a), SPACE_STEPS)[0] == "aa"


def test_decoding_keeps_repeated_characters_apart_and_reports_their_confidence() -> None:
    a, blank = (0.0, 0.8, 0.0, 0.2), (1.0, 0.0, 0.0, 0.0)
    text, confidence = module.decode(steps(a, a, blank, a), SPACE_STEPS)
    assert text == "aa"
    assert confidence == pytest.approx(0.8)
    assert module.decode(steps(blank, blank), SPACE_STEPS) == ("", 0.0)


def test_rapidocr_page_over_its_time_limit_fails_with_a_timeout(engine: RapidOcrEngine) -> None:
    image = text_page(LINES, size=(1200, 300))
    with pytest.raises(ProcessingError) as caught:
        engine.recognize(image, RecognizeOptions(page_number=7, timeout_seconds=1e-9))
    assert caught.value.code is ErrorCode.PROCESSING_TIMEOUT
    assert "page 7" in caught.value.detail
    # The deadline belonged to that reading only: the next one, given time, reads.
    assert engine.recognize(image, RecognizeOptions(timeout_seconds=60)).text.split("\n") == LINES


def test_rapidocr_checks_the_deadline_at_every_line_not_only_once_the_page_is_read(
        engine: RapidOcrEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    # The reading starts at 0 s with 10 s to go; two lines are read at 1 s, then 100 s
    # have passed.
    clock = iter([0.0, 1.0, 1.0] + [100.0] * 100)
    real_decode = module.decode

    def counting(probs: Any, characters: list[str]) -> tuple[str, float]:
        decoded.append(real_decode(probs, characters)[0])
        return real_decode(probs, characters)

    monkeypatch.setattr(module.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(module, "decode", counting)
    with pytest.raises(ProcessingError) as caught:
        engine.recognize(text_page([*LINES, "Paid by card"], size=(1200, 400)),
                         RecognizeOptions(timeout_seconds=10))
    assert caught.value.code is ErrorCode.PROCESSING_TIMEOUT
    assert len(decoded) == 2  # the third line found the deadline passed


def test_rapidocr_decodes_each_reading_in_its_languages_alphabets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    english = module.ALPHABETS["eng"]
    assert english is not None
    monkeypatch.setitem(module.ALPHABETS, "eng", english - set("oO"))
    engine = RapidOcrEngine()
    image = text_page(LINES[:1], size=(900, 150))
    without_o = engine.recognize(image, RecognizeOptions()).text
    everything = engine.recognize(image, RecognizeOptions(languages=("eng", "chi_sim"))).text
    engine.close()
    assert "o" not in without_o.lower() and without_o.startswith("Inv")
    assert everything == LINES[0]
