"""ALTO 4.4 (https://www.loc.gov/standards/alto/): the result as library-grade XML.

``Page`` > ``PrintSpace`` > ``TextBlock`` > ``TextLine`` > ``String`` (with ``HPOS VPOS
WIDTH HEIGHT CONTENT WC``) and ``SP`` between the strings of a line, measured in pixels.
Lines follow one another in a block until a gap of more than two median line heights
opens (a new paragraph or column). Validated against the published XSD by
tests/unit/test_render_markup.py; no ``sourceImageInformation``: it would name the upload.
"""

from __future__ import annotations

import statistics
from xml.sax.saxutils import quoteattr

from ocrvault import __version__
from ocrvault.model import Document, Line, OutputFormat, Page
from ocrvault.render.base import DocumentRenderer
from ocrvault.render.markup import Box, box_of, union, xml_text

NAMESPACE = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
_BLOCK_GAP_LINES = 2.0

_HEAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="{NAMESPACE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      xsi:schemaLocation="{NAMESPACE} {SCHEMA}" SCHEMAVERSION="4.4">
 <Description>
  <MeasurementUnit>pixel</MeasurementUnit>
  <Processing ID="processing_1">
   <processingCategory>contentGeneration</processingCategory>
   <processingStepSettings>{{settings}}</processingStepSettings>
   <processingSoftware>
    <softwareName>ocrvault</softwareName>
    <softwareVersion>{__version__}</softwareVersion>
   </processingSoftware>
  </Processing>
 </Description>
 <Layout>
"""


def _pos(box: Box) -> str:
    left, top, right, bottom = box
    return f'HPOS="{left}" VPOS="{top}" WIDTH="{right - left}" HEIGHT="{bottom - top}"'


def _blocks(lines: list[Line]) -> list[list[Line]]:
    """Consecutive lines, split where the vertical gap exceeds two median line heights."""
    if not lines:
        return []
    boxes = [box_of(line.polygon) for line in lines]
    height = statistics.median(b[3] - b[1] for b in boxes) or 1
    blocks: list[list[Line]] = [[lines[0]]]
    for previous, box, line in zip(boxes, boxes[1:], lines[1:], strict=False):
        if box[1] - previous[3] > _BLOCK_GAP_LINES * height or box[3] < previous[1]:
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def _text_line(line: Line, line_id: str) -> list[str]:
    words = [(xml_text(w.text).strip(), box_of(w.polygon), w.confidence) for w in line.words]
    words = [word for word in words if word[0] and " " not in word[0]]
    if not words:
        return []
    out = [f'     <TextLine ID="{line_id}" {_pos(box_of(line.polygon))}>']
    for number, (text, box, confidence) in enumerate(words, start=1):
        if number > 1:
            gap_left = words[number - 2][1][2]
            out.append(f'      <SP WIDTH="{max(box[0] - gap_left, 0)}" HPOS="{gap_left}" '
                       f'VPOS="{box[1]}"/>')
        out.append(f'      <String ID="{line_id}_{number}" CONTENT={quoteattr(text)} '
                   f'{_pos(box)} WC="{confidence:.2f}"/>')
    out.append("     </TextLine>")
    return out


def _page(page: Page) -> list[str]:
    out = [f'  <Page ID="page_{page.number}" PHYSICAL_IMG_NR="{page.number}" '
           f'WIDTH="{page.width}" HEIGHT="{page.height}" PROCESSINGREFS="processing_1">',
           f'   <PrintSpace {_pos((0, 0, page.width, page.height))}>']
    for block_number, block in enumerate(_blocks(page.lines), start=1):
        block_id = f"block_{page.number}_{block_number}"
        rows: list[str] = []
        for line_number, line in enumerate(block, start=1):
            rows.extend(_text_line(line, f"line_{page.number}_{block_number}_{line_number}"))
        if rows:
            box = union([box_of(line.polygon) for line in block])
            out.extend([f'    <TextBlock ID="{block_id}" {_pos(box)}>', *rows,
                        "    </TextBlock>"])
    out.extend(["   </PrintSpace>", "  </Page>"])
    return out


def render_alto(document: Document) -> bytes:
    settings = xml_text(f"engine={document.engine.name} {document.engine.version}; "
                        f"languages={'+'.join(document.languages)}")
    parts = [_HEAD.replace("{settings}", _escape(settings))]
    for page in document.pages:
        parts.extend(f"{row}\n" for row in _page(page))
    parts.append(" </Layout>\n</alto>\n")
    return "".join(parts).encode("utf-8")


def _escape(text: str) -> str:
    return quoteattr(text)[1:-1]


RENDERER = DocumentRenderer(OutputFormat.ALTO, render_alto)
