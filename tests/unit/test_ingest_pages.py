"""Page selections: "1-3,5" style, 1-based, validated against the page count."""

from __future__ import annotations

import pytest

from ocrvault.errors import ErrorCode, InputRejected
from ocrvault.ingest import parse_page_selection
from ocrvault.ingest.pages import missing_pages, parse_page_ranges


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, [1, 2, 3, 4, 5, 6]),
        ("1-3,5", [1, 2, 3, 5]),
        ("4", [4]),
        (" 5 , 2 - 3 ", [2, 3, 5]),
        ("2-4,3,3-4", [2, 3, 4]),
        ("6-6", [6]),
    ],
)
def test_selection_is_sorted_unique_and_one_based(spec: str | None, expected: list[int]) -> None:
    assert parse_page_selection(spec, page_count=6) == expected


@pytest.mark.parametrize(
    "spec",
    ["", "1,,2", "a", "1-", "-2", "1-2-3", "3-1", "0", "0-2", "1;2", "\u0663"],
)
def test_bad_syntax_is_an_invalid_parameter(spec: str) -> None:
    with pytest.raises(InputRejected) as rejected:
        parse_page_selection(spec, page_count=6)
    assert rejected.value.code is ErrorCode.INVALID_PARAMETER
    assert "'1-3,5'" in rejected.value.detail


@pytest.mark.parametrize(
    ("spec", "pages", "missing"),
    [
        ("1-3", [1], "2-3"),
        ("2-7", [2, 3, 4, 5, 6], "7"),
        ("1,3,9-12,10-20,30", [1, 3], "9-20,30"),
        ("1-6", [1, 2, 3, 4, 5, 6], None),
        (None, [1, 2, 3, 4, 5, 6], None),
    ],
)
def test_a_range_past_the_last_page_selects_the_pages_that_exist(
    spec: str | None, pages: list[int], missing: str | None
) -> None:
    count = 1 if spec == "1-3" else 6
    assert parse_page_selection(spec, page_count=count) == pages[:count]
    assert missing_pages(spec, page_count=count) == missing


@pytest.mark.parametrize("spec", ["7", "7-9,12", "100000"])
def test_a_selection_of_no_existing_page_is_pages_out_of_range(spec: str) -> None:
    with pytest.raises(InputRejected) as rejected:
        parse_page_selection(spec, page_count=6)
    assert rejected.value.code is ErrorCode.PAGES_OUT_OF_RANGE
    assert "has 6 pages" in rejected.value.detail and "1 to 6" in rejected.value.detail


def test_a_huge_range_is_refused_before_it_is_expanded() -> None:
    with pytest.raises(InputRejected) as rejected:
        parse_page_selection("1-99999999999999999999", page_count=3)
    assert "at most 100000" in rejected.value.detail


@pytest.mark.parametrize(
    "spec",
    ["9" * 5000, "1-" + "9" * 5000, "100001", "1-100001", "0" * 5000 + "1-" + "9" * 7,
     "1," * 100 + "1", "1" + " " * 1000],
)
def test_a_selection_too_long_or_a_page_number_too_large_is_refused_by_its_shape(
        spec: str) -> None:
    with pytest.raises(InputRejected) as rejected:
        parse_page_ranges(spec)
    assert rejected.value.code is ErrorCode.INVALID_PARAMETER


def test_leading_zeros_do_not_count_against_the_bound() -> None:
    assert parse_page_ranges("0002-00100000") == ((2, 100_000),)
