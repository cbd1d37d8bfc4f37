"""Hostile files made in the test run: bombs, lies and traps, each a few bytes to build.

Every builder returns bytes that a real client could send. PDFs are written by hand
(``raw_pdf``), so that each trap is exactly what its name says and nothing else.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence

import pikepdf
from PIL import Image

from tests.docgen import encode, text_page

HELLO = "Hello hostile world"

# EXIF GPS of the Eiffel tower, as degrees/minutes/seconds and as the decimals they make.
GPS_LATITUDE = (48.0, 51.0, 29.88)
GPS_LONGITUDE = (2.0, 17.0, 40.2)
GPS_DECIMALS = ("48.8583", "2.2945")
CAMERA_MAKE = "CanaryCam Optics"
CAMERA_MODEL = "Canary-77 serial 5550199"
JPEG_COMMENT = "shot at 48.8583N 2.2945E by Jane Canary"


def raw_pdf(objects: Sequence[bytes], *, info: bytes | None = None) -> bytes:
    """A PDF of ``objects`` (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate([*objects, *([info] if info else [])], start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info_ref = b" /Info %d 0 R" % len(offsets) if info else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(offsets) + 1, info_ref, xref)
    return bytes(out)


def stream(data: bytes, compress: bool = False) -> bytes:
    if compress:
        data = zlib.compress(data, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)


def text_pdf(text: str = HELLO, *, catalog_extra: bytes = b"", page_extra: bytes = b"",
             extra_objects: Sequence[bytes] = (), media_box: tuple[int, int] = (612, 792),
             info: bytes | None = None) -> bytes:
    """One page showing ``text`` in 36 pt Helvetica; extra objects are numbered from 5."""
    content = b"BT /F1 36 Tf 72 %d Td (%s) Tj ET" % (media_box[1] - 120, text.encode("latin-1"))
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R %s>>" % catalog_extra,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R "
        b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
        b" %s>>" % (*media_box, page_extra),
        stream(content),
        *extra_objects,
    ], info=info)


def pdf_with_javascript(url: str) -> bytes:
    """JavaScript on open, at document level and on the page, each reaching for ``url``."""
    script = (f'app.launchURL("{url}/launch", true); this.submitForm("{url}/submit"); '
              f'this.getURL("{url}/get");').encode()
    return text_pdf(
        catalog_extra=b"/OpenAction 5 0 R /Names << /JavaScript << /Names [(boot) 6 0 R] >> >> ",
        page_extra=b"/AA << /O 6 0 R >> /Annots [7 0 R] ",
        extra_objects=[
            b"<< /S /JavaScript /JS (%s) /Next 8 0 R >>" % script,
            b"<< /S /JavaScript /JS (%s) >>" % script,
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 612 792] /A 8 0 R >>",
            b"<< /S /URI /URI (%s/uri) >>" % url.encode(),
        ],
    )


def pdf_with_launch(path: str) -> bytes:
    """An /OpenAction that launches a shell to create ``path``, and one that imports it."""
    command = f"touch {path}".encode()
    return text_pdf(
        catalog_extra=b"/OpenAction 5 0 R ",
        extra_objects=[
            b"<< /S /Launch /F (/bin/sh) /Unix << /F (/bin/sh) /P (-c \"%s\") >> "
            b"/Win << /F (cmd.exe) /P (/c \"%s\") >> /NewWindow true /Next 6 0 R >>"
            % (command, command),
            b"<< /S /ImportData /F << /Type /Filespec /F (%s) >> >>" % path.encode(),
        ],
    )


ATTACHED_CANARY = b"attached canary 7f3a: payroll.xlsx"


def pdf_with_attachment_annotation(page: int = 1, pages: int = 1) -> bytes:
    """``pages`` pages of text; page ``page`` carries a FileAttachment annotation whose file
    holds ATTACHED_CANARY. No EmbeddedFiles name tree: the annotation is the only way in."""
    annotated = b"/Annots [%d 0 R] " % (4 + pages)
    kids = b" ".join(b"%d 0 R" % (3 + n) for n in range(pages))
    content = b"BT /F1 36 Tf 72 672 Td (%s) Tj ET" % HELLO.encode()
    font = (b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 "
            b"/BaseFont /Helvetica >> >> >>")
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        *(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R %s %s>>"
          % (3 + pages, font, annotated if n + 1 == page else b"") for n in range(pages)),
        stream(content),
        b"<< /Type /Annot /Subtype /FileAttachment /Rect [72 72 92 92] /Name /PushPin "
        b"/FS << /Type /Filespec /F (payroll.xlsx) /UF (payroll.xlsx) /EF << /F %d 0 R >> >> >>"
        % (5 + pages),
        b"<< /Type /EmbeddedFile /Length %d >>\nstream\n%s\nendstream"
        % (len(ATTACHED_CANARY), ATTACHED_CANARY),
    ])


def pdf_of_pages(count: int) -> bytes:
    """``count`` pages that share one content stream: tiny on disk, huge to render."""
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + index) for index in range(count))
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>")
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        stream(b"BT /F1 24 Tf 72 700 Td (page) Tj ET"),
        *[page] * count,
    ])


def pdf_page_inches(inches: int) -> bytes:
    return text_pdf(media_box=(inches * 72, inches * 72))


def slow_pdf(rectangles: int = 100_000) -> bytes:
    """A 5 KB page of stroked rectangles whose rendering at 300 dpi takes over a minute."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        stream(b"0.5 w " + b"10 10 500 700 re S " * rectangles, compress=True),
    ])


def encrypted_pdf(user_password: str, text: str = HELLO) -> bytes:
    """``text_pdf(text)`` encrypted with AES-128 (R4) under ``user_password``."""
    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(text_pdf(text))) as pdf:
        pdf.save(buf, encryption=pikepdf.Encryption(user=user_password,
                                                    owner=user_password + "-owner", R=4))
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims the size; its pixel data is one small IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))


def memory_hungry_png(side: int = 10_000) -> bytes:
    """A white RGB square within the pixel limits: 300 KB to send, side^2 x 3 bytes to decode."""
    return encode(Image.new("RGB", (side, side), "white"), "PNG")


def tiff_of_pages(count: int) -> bytes:
    """A little-endian baseline TIFF of ``count`` 1 x 1 bilevel pages sharing one data byte."""
    entries = [  # (tag, type, value); type 3 = SHORT, 4 = LONG
        (256, 3, 1), (257, 3, 1), (258, 3, 1), (259, 3, 1), (262, 3, 1),
        (273, 4, 8), (277, 3, 1), (278, 3, 1), (279, 4, 1),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    first = 10  # header (8) + the data byte, padded to a word
    out = bytearray(b"II*\x00" + struct.pack("<I", first) + b"\x00\x00")
    for index in range(count):
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHI", tag, kind, 1)
            out += struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        last = index == count - 1
        out += struct.pack("<I", 0 if last else first + (index + 1) * ifd_size)
    return bytes(out)


def tiff_with_looping_pages(count: int = 2) -> bytes:
    """``tiff_of_pages(count)`` whose last IFD points back to the first: the chain loops."""
    data = bytearray(tiff_of_pages(count))
    data[-4:] = struct.pack("<I", 10)  # the last IFD's next-IFD offset: the first IFD
    return bytes(data)


def bmp_with_width(width: int) -> bytes:
    """A 20 x 20 BMP (40-byte info header) whose header declares ``width``, signed."""
    data = bytearray(encode(Image.new("RGB", (20, 20), "white"), "BMP"))
    data[18:22] = struct.pack("<i", width)
    return bytes(data)


def jpeg_cut_in_half() -> bytes:
    whole = encode(text_page(["Truncated in the middle of the scan"]), "JPEG", quality=90)
    return whole[: len(whole) // 2]


def zip_named_png() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("image.png", b"\x00" * 1_000_000)
    return buf.getvalue()


def svg_named_png() -> bytes:
    return (b'<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text>'
            b'<image href="http://127.0.0.1:9/x.png"/><script>alert(1)</script></svg>')


def gps_jpeg() -> bytes:
    """A readable page photographed "at the Eiffel tower": EXIF GPS, camera, XMP, comment."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKE
    exif[0x0110] = CAMERA_MODEL
    exif[0x8825] = {1: "N", 2: GPS_LATITUDE, 3: "E", 4: GPS_LONGITUDE}
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
           b'22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
           b'exif:GPSLatitude="48,51.498N" exif:GPSLongitude="2,17.67E"/></rdf:RDF></x:xmpmeta>')
    page = text_page(["Geotagged receipt"], size=(900, 300))
    return encode(page, "JPEG", quality=90, exif=exif.tobytes(), comment=JPEG_COMMENT, xmp=xmp)


def gps_rational_bytes(jpeg: bytes) -> list[bytes]:
    """Latitude and longitude as EXIF stores them: three raw rationals, 24 bytes each."""
    with Image.open(io.BytesIO(jpeg)) as image:
        exif = image.getexif()
        order = ">" if image.info["exif"][6:8] == b"MM" else "<"
        gps = exif.get_ifd(0x8825)
    return [b"".join(struct.pack(order + "II", part.numerator, part.denominator)
                     for part in gps[key]) for key in (2, 4)]
