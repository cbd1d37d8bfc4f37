"""Reading order over recognised line boxes (engines/layout.py), on synthetic boxes."""

from __future__ import annotations

from ocrvault.engines.layout import Box, order_page, reading_order, row_order
from ocrvault.model import Line, Page, Word

LINE = 20.0  # line height in pixels
PITCH = 30.0  # from one line's top to the next


def column(left: float, right: float, first_top: float, count: int,
           offset: float = 0.0) -> list[Box]:
    return [(left, first_top + offset + k * PITCH, right, first_top + offset + k * PITCH + LINE)
            for k in range(count)]


def two_column_page(offset: float) -> tuple[list[Box], list[str]]:
    """A header across both columns, two columns of 5 lines, a footer across both."""
    header = [(100.0, 40.0, 1100.0, 40.0 + LINE)]
    left = column(100, 560, 120, 5)
    right = column(640, 1100, 120, 5, offset)
    footer = [(100.0, 400.0, 1100.0, 400.0 + LINE)]
    names = (["header"] + [f"L{k}" for k in range(5)] + [f"R{k}" for k in range(5)]
             + ["footer"])
    return header + left + right + footer, names


def read(boxes: list[Box], names: list[str], shuffle: list[int] | None = None) -> list[str]:
    order = shuffle or list(range(len(boxes)))
    given = [boxes[i] for i in order]
    return [names[order[i]] for i in reading_order(given)]


def top_down(boxes: list[Box]) -> list[int]:
    """The order a line detector hands boxes back in: top to bottom, columns interleaved."""
    return sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))


def test_two_columns_are_read_one_after_the_other_between_header_and_footer() -> None:
    boxes, names = two_column_page(offset=12.0)  # baselines of the columns do not line up
    expected = ["header", *(f"L{k}" for k in range(5)), *(f"R{k}" for k in range(5)), "footer"]
    assert read(boxes, names, top_down(boxes)) == expected


def test_two_columns_with_aligned_lines_are_still_columns_not_rows() -> None:
    boxes, names = two_column_page(offset=0.0)
    expected = ["header", *(f"L{k}" for k in range(5)), *(f"R{k}" for k in range(5)), "footer"]
    assert read(boxes, names, top_down(boxes)) == expected


def test_three_columns_are_read_left_to_right() -> None:
    boxes = column(0, 300, 0, 4) + column(360, 660, 0, 4, 7) + column(720, 1020, 0, 4, 3)
    names = [f"{c}{k}" for c in "ABC" for k in range(4)]
    assert read(boxes, names, top_down(boxes)) == names


def test_receipt_prices_stay_in_the_row_of_their_item() -> None:
    """Item names on the left, prices far right on the same rows: a table, not columns;
    the rows are found, and no column cut parts them again."""
    items = column(50, 420, 100, 6)
    prices = [(700.0, top + 2, 790.0, bottom + 1) for _, top, _, bottom in items]
    title = [(150.0, 20.0, 650.0, 20.0 + LINE)]
    boxes = title + items + prices
    names = ["title"] + [f"item{k}" for k in range(6)] + [f"price{k}" for k in range(6)]
    expected = ["title"] + [n for k in range(6) for n in (f"item{k}", f"price{k}")]
    shuffled = list(reversed(range(len(boxes))))
    rows = [shuffled[i] for i in row_order([boxes[i] for i in shuffled])]
    assert [names[i] for i in rows] == expected
    assert read(boxes, names, rows) == expected


def test_boxes_of_one_row_read_left_to_right() -> None:
    boxes = [(500.0, 10.0, 600.0, 30.0), (0.0, 12.0, 100.0, 31.0), (200.0, 9.0, 300.0, 29.0)]
    assert row_order(boxes) == [1, 2, 0]


def test_without_columns_the_engines_order_stands() -> None:
    boxes = [(0.0, 100.0, 400.0, 120.0), (0.0, 10.0, 400.0, 30.0), (0.0, 50.0, 400.0, 70.0)]
    assert reading_order(boxes) == [0, 1, 2]


def test_empty_and_single_box_pages() -> None:
    assert reading_order([]) == [] == row_order([])
    assert reading_order([(0.0, 0.0, 10.0, 10.0)]) == [0] == row_order([(0.0, 0.0, 10.0, 10.0)])


def polygon(box: Box) -> list[float]:
    left, top, right, bottom = box
    return [left, top, right, top, right, bottom, left, bottom]


def test_order_page_keeps_each_lines_words_polygons_and_confidences() -> None:
    boxes, names = two_column_page(offset=12.0)
    order = top_down(boxes)
    lines = [Line(text=names[i], polygon=polygon(boxes[i]), confidence=0.5 + i / 100,
                  words=[Word(text=names[i], polygon=polygon(boxes[i]), confidence=0.9)])
             for i in order]
    page = Page(number=1, width=1200, height=500, angle=0.0, lines=lines)
    ordered = order_page(page)
    assert [line.text for line in ordered.lines][:3] == ["header", "L0", "L1"]
    assert sorted(ordered.lines, key=lambda line: line.text) == sorted(
        lines, key=lambda line: line.text)


def words_line(words: list[tuple[str, Box]]) -> Line:
    xs = [v for _, box in words for v in (box[0], box[2])]
    ys = [v for _, box in words for v in (box[1], box[3])]
    union = (min(xs), min(ys), max(xs), max(ys))
    return Line(text=" ".join(text for text, _ in words), polygon=polygon(union),
                confidence=0.8,
                words=[Word(text=text, polygon=polygon(box), confidence=0.8)
                       for text, box in words])


def test_a_line_that_joins_two_columns_is_split_at_the_gutter_and_read_by_column() -> None:
    """Tesseract joins the lines of two columns whose baselines meet into one line."""
    spans = {"a": (100.0, 300.0), "b": (310.0, 500.0), "c": (640.0, 900.0), "d": (910.0, 1100.0)}
    rows = [[(f"{name}{k}", (left, top, right, top + LINE))
             for name, (left, right) in spans.items()]
            for k, top in enumerate((100.0, 130.0, 160.0))]
    page = Page(number=1, width=1200, height=300, angle=0.0,
                lines=[words_line(row) for row in rows])
    ordered = order_page(page)
    assert [line.text for line in ordered.lines] == [
        "a0 b0", "a1 b1", "a2 b2", "c0 d0", "c1 d1", "c2 d2"]
    first = ordered.lines[0]
    assert first.polygon == [100.0, 100.0, 500.0, 100.0, 500.0, 120.0, 100.0, 120.0]
    assert [word.polygon for word in first.words] == [
        word.polygon for word in page.lines[0].words[:2]]


def test_words_at_ordinary_spacing_stay_one_line() -> None:
    line = words_line([("Total", (0.0, 0.0, 100.0, LINE)), ("9.99", (120.0, 0.0, 200.0, LINE))])
    page = Page(number=1, width=300, height=50, angle=0.0, lines=[line])
    assert order_page(page) is page


def turn(box: Box, height: float) -> list[float]:
    """The box's corners, clockwise from the text's top-left, on a page turned 90 degrees
    counter-clockwise (PIL's rotate(90)): a point (x, y) lands at (y, height - x)."""
    left, top, right, bottom = box
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    return [v for x, y in corners for v in (y, height - x)]


def test_a_turned_page_is_ordered_in_its_upright_frame() -> None:
    boxes, names = two_column_page(offset=12.0)
    width = 1200.0
    lines = [Line(text=names[i], polygon=turn(boxes[i], width), confidence=0.9, words=[])
             for i in top_down(boxes)]
    page = Page(number=1, width=500, height=1200, angle=-90.0, lines=lines)
    expected = ["header", *(f"L{k}" for k in range(5)), *(f"R{k}" for k in range(5)), "footer"]
    assert [line.text for line in order_page(page).lines] == expected
