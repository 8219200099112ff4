"""和暦: Japanese era dates (令和9年7月24日), where the public sector writes them.

Our own table of the modern eras rather than a package: five rows that change once a
generation, each starting on the day the era's first year began (the day after the
previous emperor's last day; 明治 from the Gregorian calendar's adoption on 1873-01-01
is out of scope: no booking predates 2000). The first year of an era is written 元年.
"""

from __future__ import annotations

from datetime import date, datetime

from booking.clock import TOKYO

# (first day, name in Japanese, name in English), newest first.
ERAS: tuple[tuple[date, str, str], ...] = (
    (date(2019, 5, 1), "令和", "Reiwa"),
    (date(1989, 1, 8), "平成", "Heisei"),
    (date(1926, 12, 25), "昭和", "Showa"),
    (date(1912, 7, 30), "大正", "Taisho"),
    (date(1873, 1, 1), "明治", "Meiji"),  # Meiji 6, the first Gregorian year
)
_MEIJI_FIRST_YEAR = 1868


def era_of(day: date) -> tuple[str, str, int]:
    """(era in Japanese, era in English, year of the era) of a Gregorian date."""
    for first, name, name_en, in ERAS:
        if day >= first:
            base = _MEIJI_FIRST_YEAR if name == "明治" else first.year
            return name, name_en, day.year - base + 1
    raise ValueError(f"{day} is before the dates this table covers (1873-01-01)")


def wareki(value: date | datetime, locale: str = "ja") -> str:
    """令和9年7月24日 (元年 for an era's first year); in English, "Reiwa 9 (2027), July 24".
    A datetime is read in Tokyo time."""
    day = value.astimezone(TOKYO).date() if isinstance(value, datetime) else value
    name, name_en, year = era_of(day)
    if locale == "en":
        return f"{name_en} {year} ({day.year}), {day.strftime('%B')} {day.day}"
    return f"{name}{'元' if year == 1 else year}年{day.month}月{day.day}日"
