"""CSV exports that a spreadsheet opens safely.

A cell starting with =, +, -, @ (or a tab / carriage return, which some spreadsheets strip
before looking) is read as a formula by Excel, LibreOffice and Google Sheets ("CSV
injection", OWASP). User-written text (names, notes, company names) can start that way,
so every text cell goes through `safe_cell`, which puts a single quote in front: the
spreadsheet then shows the text as typed. Numbers stay numbers.

    from booking.services.csvexport import csv_text, safe_cell, safe_row
    body = csv_text(header, rows)          # str with a BOM, for Excel to read UTF-8
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def safe_cell(value: object) -> object:
    """The value, with text that a spreadsheet would run as a formula defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value  # a real number is data, even when negative
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def safe_row(row: Iterable[object]) -> list[object]:
    return [safe_cell(v) for v in row]


def csv_text(header: Iterable[object], rows: Iterable[Iterable[object]], *, bom: bool = True) -> str:
    """The whole CSV document; every cell guarded. The BOM makes Excel read UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(safe_row(header))
    for row in rows:
        writer.writerow(safe_row(row))
    return ("\ufeff" if bom else "") + buffer.getvalue()
