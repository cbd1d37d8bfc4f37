"""Full decode: upright L/RGB pixels of the selected pages, and nothing else."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageDraw

from ocrvault.errors import ErrorCode, InputRejected, ProcessingError
from ocrvault.ingest import DecodedPage, FileFormat, Limits
from ocrvault.ingest.decode import PagePixels, decode_pages
from tests import hostilegen
from tests.docgen import encode, pdf_of

HOSTILE = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "hostile"
LIMITS = Limits(
    max_file_bytes=10_000_000, max_pages=10, max_page_pixels=4_000_000, max_side_px=3000, pdf_dpi=72
)


def decode(
    data: bytes,
    fmt: FileFormat,
    pages: list[int] | None = None,
    limits: Limits = LIMITS,
    password: str | None = None,
) -> list[DecodedPage]:
    pixels = decode_pages(data, fmt, pages or [1], limits, password)
    return [page.to_page() for page in pixels]


def left_half_black(mode: str = "RGB", size: tuple[int, int] = (40, 20)) -> Image.Image:
    image = Image.new(mode, size, "white")
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2 - 1, size[1]), fill="black")
    return image


def grey_at(page: DecodedPage, xy: tuple[int, int]) -> int:
    value = page.image.convert("L").getpixel(xy)
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize(
    ("fmt", "pillow_format", "mode"),
    [
        (FileFormat.PNG, "PNG", "RGB"),
        (FileFormat.JPEG, "JPEG", "L"),
        (FileFormat.BMP, "BMP", "RGB"),
        (FileFormat.TIFF, "TIFF", "RGB"),
        (FileFormat.WEBP, "WEBP", "RGB"),
    ],
)
def test_every_image_format_decodes_to_its_pixels(
    fmt: FileFormat, pillow_format: str, mode: str
) -> None:
    [page] = decode(encode(left_half_black(mode), pillow_format), fmt)
    assert (page.number, page.image.mode, page.image.size) == (1, mode, (40, 20))
    assert grey_at(page, (5, 10)) < 60
    assert grey_at(page, (35, 10)) > 200


def test_a_pdf_page_without_a_covering_image_renders_at_the_configured_dpi() -> None:
    data = hostilegen.text_pdf(media_box=(200, 100))
    [at_72] = decode(data, FileFormat.PDF)
    [at_144] = decode(data, FileFormat.PDF, limits=replace(LIMITS, pdf_dpi=144))
    assert at_72.image.mode == "RGB"
    assert (at_72.image.size, at_144.image.size) == ((200, 100), (400, 200))


def test_a_scanned_pdf_page_renders_at_its_image_resolution_never_above_the_dpi() -> None:
    """An image covering the page keeps its own pixels: upscaling it adds only blur."""
    data = pdf_of([left_half_black(size=(200, 100))], dpi=72)
    [at_144] = decode(data, FileFormat.PDF, limits=replace(LIMITS, pdf_dpi=144))
    assert at_144.image.size == (200, 100)
    assert grey_at(at_144, (10, 50)) < 60
    assert grey_at(at_144, (190, 50)) > 200
    fine = pdf_of([left_half_black(size=(600, 300))], dpi=216)  # 216 dpi, pages at 72
    [capped] = decode(fine, FileFormat.PDF)
    assert capped.image.size == (200, 100)


def test_a_receipt_of_72_dpi_on_a_15_inch_page_renders_to_its_own_1080_px() -> None:
    receipt = pdf_of([left_half_black(size=(1080, 1527))], dpi=72)
    [page] = decode(receipt, FileFormat.PDF, limits=replace(LIMITS, pdf_dpi=300))
    assert page.image.size == (1080, 1527)


def test_only_the_selected_tiff_pages_are_decoded_in_order() -> None:
    shades = [Image.new("L", (8, 8), shade) for shade in (0, 100, 200)]
    data = encode(shades[0], "TIFF", save_all=True, append_images=shades[1:])
    pages = decode(data, FileFormat.TIFF, [1, 3])
    assert [(page.number, grey_at(page, (4, 4))) for page in pages] == [(1, 0), (3, 200)]


def test_only_the_selected_pdf_pages_are_decoded_in_order() -> None:
    data = pdf_of([Image.new("L", (30, 30), shade) for shade in (0, 100, 200)], dpi=72)
    pages = decode(data, FileFormat.PDF, [2, 3])
    assert [page.number for page in pages] == [2, 3]
    assert [grey_at(page, (15, 15)) for page in pages] == pytest.approx([100, 200], abs=3)


def palette_image(transparent_index: int | None) -> Image.Image:
    """A 4x4 palette image of colour 0 (red), optionally marked transparent."""
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 255, 255, 255])
    if transparent_index is not None:
        image.info["transparency"] = transparent_index
    return image


RED_AS_GREY = 76  # ITU-R 601-2 luma of pure red


PNG, BMP, TIFF, JPEG = FileFormat.PNG, FileFormat.BMP, FileFormat.TIFF, FileFormat.JPEG


@pytest.mark.parametrize(
    ("source", "fmt", "mode", "grey"),
    [
        pytest.param(Image.new("LA", (4, 4), (0, 0)), PNG, "L", 255, id="LA"),
        pytest.param(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), PNG, "RGB", 255, id="RGBA"),
        pytest.param(palette_image(0), PNG, "RGB", 255, id="P-transparent"),
        pytest.param(palette_image(None), PNG, "RGB", RED_AS_GREY, id="P"),
        pytest.param(palette_image(None), BMP, "RGB", RED_AS_GREY, id="P-bmp"),
        pytest.param(Image.new("1", (4, 4), 1), PNG, "L", 255, id="1"),
        pytest.param(Image.new("I;16", (4, 4), 65535), PNG, "L", 255, id="I16-png"),
        pytest.param(Image.new("I;16", (4, 4), 65535), TIFF, "L", 255, id="I16-tiff"),
        pytest.param(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), JPEG, "RGB", 255, id="CMYK-jpeg"),
        pytest.param(Image.new("CMYK", (4, 4), (0, 0, 0, 255)), TIFF, "RGB", 0, id="CMYK-tiff"),
    ],
)
def test_every_mode_becomes_grey_or_rgb_with_alpha_on_white(
    source: Image.Image, fmt: FileFormat, mode: str, grey: int
) -> None:
    [page] = decode(encode(source, fmt.name), fmt)
    assert page.image.mode == mode
    assert grey_at(page, (2, 2)) == pytest.approx(grey, abs=2)


def test_a_16_bit_grey_page_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (2, 1), 65535)
    image.putpixel((0, 0), 32768)
    [page] = decode(encode(image, "PNG"), FileFormat.PNG)
    assert grey_at(page, (0, 0)) == pytest.approx(128, abs=1)


def test_exif_orientation_is_applied_before_the_metadata_is_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: displayed turned 90 degrees clockwise
    data = encode(left_half_black(), "JPEG", exif=exif)
    [page] = decode(data, FileFormat.JPEG)
    assert page.image.size == (20, 40)
    assert grey_at(page, (10, 5)) < 60
    assert grey_at(page, (10, 35)) > 200
    assert "exif" in page.metadata_removed


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("gen_jpeg_exif_gps.jpg", {"exif", "gps", "xmp", "comment"}),
        ("pil_exif_gps.jpg", {"exif", "gps"}),
        ("pat_cve_2022_44268.png", {"text"}),
    ],
)
def test_gps_and_other_metadata_are_reported_removed_and_absent(name: str, kinds: set[str]) -> None:
    data = (HOSTILE / name).read_bytes()
    [page] = decode(data, FileFormat.JPEG if name.endswith(".jpg") else FileFormat.PNG)
    assert page.metadata_removed >= kinds
    assert page.image.info == {}
    assert not page.image.getexif()


def test_an_icc_profile_is_reported_removed() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    [page] = decode(encode(left_half_black(), "PNG", icc_profile=profile), FileFormat.PNG)
    assert page.metadata_removed == {"icc_profile"}


def test_a_plain_image_reports_nothing_removed() -> None:
    [page] = decode(encode(left_half_black(), "PNG"), FileFormat.PNG)
    assert page.metadata_removed == set()


def test_pdf_info_and_attachments_are_reported_removed() -> None:
    titled = io.BytesIO()
    Image.new("L", (10, 10), "white").save(titled, "PDF", title="Merger plan")
    [page] = decode(titled.getvalue(), FileFormat.PDF)
    assert "pdf_info" in page.metadata_removed
    [page] = decode((HOSTILE / "pdfjs_attachment.pdf").read_bytes(), FileFormat.PDF)
    assert "attachments" in page.metadata_removed


def test_a_file_attached_through_a_page_annotation_is_reported_removed() -> None:
    """No EmbeddedFiles name tree: the FileAttachment annotation on page 2 is the only way."""
    data = hostilegen.pdf_with_attachment_annotation(page=2, pages=3)
    first, second, third = decode(data, FileFormat.PDF, [1, 2, 3])
    assert "attachments" in second.metadata_removed
    assert "attachments" not in first.metadata_removed | third.metadata_removed


@pytest.mark.parametrize(
    ("data", "fmt", "page"),
    [
        (encode(left_half_black(), "PNG"), FileFormat.PNG, 2),
        (encode(left_half_black(), "TIFF"), FileFormat.TIFF, 2),
        (pdf_of([left_half_black()]), FileFormat.PDF, 3),
        (pdf_of([left_half_black()]), FileFormat.PDF, 0),
    ],
    ids=["png", "tiff", "pdf", "pdf-zero"],
)
def test_a_page_that_does_not_exist_is_an_invalid_parameter(
    data: bytes, fmt: FileFormat, page: int
) -> None:
    with pytest.raises(InputRejected) as rejected:
        decode(data, fmt, [page])
    assert rejected.value.code is ErrorCode.INVALID_PARAMETER


def test_page_sizes_are_checked_again_before_rendering() -> None:
    data = pdf_of([left_half_black(size=(200, 100))], dpi=72)
    with pytest.raises(InputRejected) as rejected:
        decode(data, FileFormat.PDF, limits=replace(LIMITS, max_side_px=150))
    assert rejected.value.code is ErrorCode.IMAGE_TOO_LARGE


def test_pixel_data_cut_short_is_a_corrupt_file() -> None:
    noise = Image.effect_noise((300, 300), 64).convert("RGB")
    data = encode(noise, "PNG")
    with pytest.raises(InputRejected) as rejected:
        decode(data[: len(data) // 2], FileFormat.PNG)
    assert rejected.value.code is ErrorCode.CORRUPT_FILE


@pytest.mark.parametrize(
    "pixels",
    [
        PagePixels(1, "P", (2, 2), bytes(4), frozenset()),
        PagePixels(1, "RGB", (2, 2), bytes(11), frozenset()),
        PagePixels(1, "L", (2, 2), bytes(4), frozenset(), (612.0, -792.0)),
        PagePixels(1, "L", (2, 2), bytes(4), frozenset(), (612.0, float("nan"))),
    ],
    ids=["mode", "length", "negative-points", "nan-points"],
)
def test_the_parent_refuses_a_page_of_the_wrong_shape(pixels: PagePixels) -> None:
    with pytest.raises(ProcessingError):
        pixels.to_page()


@pytest.mark.parametrize(("data", "fmt"), [
    (encode(left_half_black("RGB"), "PNG"), FileFormat.PNG),
    (pdf_of([left_half_black("RGB")], dpi=72), FileFormat.PDF),
])
def test_pages_for_an_engine_that_reads_grey_leave_the_child_as_grey(
        data: bytes, fmt: FileFormat) -> None:
    [colour] = decode_pages(data, fmt, [1], LIMITS)
    [grey] = decode_pages(data, fmt, [1], LIMITS, grey=True)

    assert isinstance(colour, PagePixels) and isinstance(grey, PagePixels)
    assert (colour.mode, grey.mode) == ("RGB", "L")
    assert len(grey.pixels) * 3 == len(colour.pixels)  # a third of the bytes to send
    image = grey.to_page().image
    assert image.getpixel((2, 10)) == 0 and image.getpixel((38, 10)) == 255
