"""和暦 (booking/wareki.py): each era boundary, the first year as 元年, English."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from booking.wareki import era_of, wareki


@pytest.mark.parametrize(("day", "expected"), [
    (date(2019, 4, 30), "平成31年4月30日"),
    (date(2019, 5, 1), "令和元年5月1日"),
    (date(2020, 1, 1), "令和2年1月1日"),
    (date(2027, 7, 24), "令和9年7月24日"),
    (date(1989, 1, 7), "昭和64年1月7日"),
    (date(1989, 1, 8), "平成元年1月8日"),
    (date(1926, 12, 24), "大正15年12月24日"),
    (date(1926, 12, 25), "昭和元年12月25日"),
    (date(1912, 7, 29), "明治45年7月29日"),
    (date(1912, 7, 30), "大正元年7月30日"),
    (date(1873, 1, 1), "明治6年1月1日"),
])
def test_each_era_boundary(day, expected):
    assert wareki(day) == expected


def test_a_datetime_is_read_in_tokyo():
    # 2019-04-30T15:00Z is already 1 May in Tokyo: the first day of Reiwa.
    assert wareki(datetime(2019, 4, 30, 15, 0, tzinfo=UTC)) == "令和元年5月1日"
    assert wareki(datetime(2019, 4, 30, 14, 59, tzinfo=UTC)) == "平成31年4月30日"


def test_english_and_the_table_edge():
    assert wareki(date(2027, 7, 24), "en") == "Reiwa 9 (2027), July 24"
    assert era_of(date(2019, 5, 1)) == ("令和", "Reiwa", 1)
    with pytest.raises(ValueError):
        era_of(date(1872, 12, 31))
