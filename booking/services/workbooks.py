"""The campaign report (効果測定, services/reports.py) as files a municipality's own tools
read: an XLSX workbook with one sheet per table, and the same tables as plain CSV files,
one table per file, in one zip.

The figures are reports.py's, taken as they are (nothing recomputed here); this module
only lays them out as tables and writes them:

- XLSX: typed cells. Dates are dates; instants are Tokyo wall-clock times written naive
  (Excel has no time zones; the column header says 日本時間); numbers are numbers, yen
  with a yen number format; the header row frozen; text from users never becomes a
  formula (a text cell, marked quotePrefix so that Excel keeps it text when edited).
- CSV: UTF-8 with a BOM, every cell through csvexport.safe_row (the one rule of all our
  CSV files); instants as ISO 8601 in Tokyo time WITH the offset (…T09:00:00+09:00), so
  that a program reading them cannot take them for UTC.
- Labels (headers, sheet names, booking statuses) in the language asked for.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from booking import clock
from booking.labels import booking_status_label, prefecture_name, telework_category_label
from booking.services.csvexport import FORMULA_STARTS, csv_text
from booking.services.reports import DEFAULT_FACTORS, FACTOR_LABELS, Report, summary_rows

# How a column's numbers are shown (Excel number formats); text, dates and times need none
# from the column (their cells get theirs from their type).
TEXT, INT, DECIMAL, YEN, DATE, DATETIME = "text", "int", "decimal", "yen", "date", "datetime"
NUMBER_FORMATS = {INT: "#,##0", DECIMAL: "#,##0.0", YEN: '"¥"#,##0'}
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
# 和暦 as Excel shows it: the cells stay dates (sortable, read by any program as dates),
# only their display is 令和元年… ("-x-gannen": the first year as 元年, as booking/wareki.py).
ERA = '[$-ja-JP-x-gannen]ggge"年"m"月"d"日"'
ERA_DATE_FORMAT, ERA_DATETIME_FORMAT = ERA, ERA + " hh:mm"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Table:
    """One table of the report: `key` names its CSV file (ASCII, the same in every
    language), `title` its sheet; `kinds` says per column how numbers are shown."""

    key: str
    title: str
    headers: list[str]
    kinds: list[str]
    rows: list[list[object]] = field(default_factory=list)
    # A table whose one value column mixes kinds (the summary: counts, yen, estimates):
    # the kind of each row's values instead of the column's.
    row_kinds: list[str] | None = None


def tables(report: Report, locale: str = "ja") -> list[Table]:
    """The report's tables, in the page's order, labels in the current request's language
    (`locale` chooses the names of campaigns, spaces and companies)."""
    campaign = report.campaign
    about = Table("about", _("レポートについて"), [_("事項"), _("内容")], [TEXT, TEXT], [
        [_("キャンペーン"), campaign.display_name(locale)],
        [_("期間の開始"), campaign.starts_on],
        [_("期間の終了"), campaign.ends_on],
        [_("施設"), report.space.display_name(locale) if report.space else _("キャンペーン全体")],
        [_("時刻"), _("日時はすべて日本時間(JST、UTC+9)です。")],
        [_("作成日時"), clock.now()],
    ])

    yen_labels = {_("企業の支払額(円)"), _("自治体の補助額(円)")}
    figures = summary_rows(report)
    summary = Table("summary", _("概要"), [_("指標"), _("値")], [TEXT, DECIMAL],
                    [[label, value] for label, value in figures],
                    row_kinds=[YEN if label in yen_labels else INT if isinstance(value, int)
                               else DECIMAL for label, value in figures])

    days = Table("occupancy", _("日別の稼働"),
                 [_("日付"), _("提供席数"), _("予約席数"), _("稼働率(%)")],
                 [DATE, INT, INT, DECIMAL],
                 [[d.day, d.offered, d.booked, d.rate] for d in report.days])
    prefectures = Table("prefectures", _("企業の所在都道府県"), [_("都道府県"), _("企業数")],
                        [TEXT, INT],
                        [[prefecture_name(code, locale, unknown=_("不明")), n]
                         for code, n in report.by_prefecture])
    categories = Table("participation", _("参加区分"),
                       [_("参加区分"), _("企業数"), _("コア日のテレワーク人数")], [TEXT, INT, INT],
                       [[telework_category_label(code), n, staff]
                        for code, n, staff in report.by_category])
    spaces = Table("spaces", _("施設別"),
                   [_("施設"), _("予約件数"), _("延べ席日数"), _("利用企業数"),
                    _("無断キャンセル(来場なし)"), _("企業の支払額(円)"), _("自治体の補助額(円)"),
                    _("削減できた通勤時間(時間、推計)"), _("削減できたCO2(kg、推計)")],
                   [TEXT, INT, INT, INT, INT, YEN, YEN, DECIMAL, DECIMAL],
                   [[s.space.display_name(locale), s.totals.bookings, s.totals.seat_days,
                     s.totals.company_count, s.totals.no_shows, s.totals.company_paid,
                     s.totals.subsidies, round(s.totals.effect.hours, 1),
                     round(s.totals.effect.co2_kg, 1)] for s in report.spaces])
    bookings = Table("bookings", _("予約一覧"),
                     [_("予約番号"), _("企業"), _("施設"), _("開始日時(日本時間)"),
                      _("終了日時(日本時間)"), _("席数"), _("状態"), _("企業の支払額(円)"),
                      _("自治体の補助額(円)")],
                     [TEXT, TEXT, TEXT, DATETIME, DATETIME, INT, TEXT, YEN, YEN],
                     [[b.reference, b.company.display_name(locale) if b.company else "",
                       b.unit.space.display_name(locale), b.starts_at, b.ends_at, b.seats,
                       booking_status_label(b.status), b.price_amount, b.subsidy_amount]
                      for b in report.bookings])
    factors = Table("factors", _("係数"), [_("係数"), _("値"), _("単位")], [TEXT, DECIMAL, TEXT],
                    [[str(FACTOR_LABELS[name]), getattr(report.factors, name), str(unit)]
                     for name, (_default, unit, _source) in DEFAULT_FACTORS.items()])
    return [about, summary, days, prefectures, categories, spaces, bookings, factors]


def _tokyo(value: datetime) -> datetime:
    """A stored instant as Tokyo wall-clock time."""
    return value.astimezone(clock.TOKYO)


# ------------------------------------------------------------------------------ XLSX


def _sheet_title(title: str, taken: set[str]) -> str:
    """Excel's rules for sheet names: at most 31 characters, none of []:*?/\\, unique."""
    clean = "".join(" " if ch in "[]:*?/\\" else ch for ch in title).strip()[:31] or "Sheet"
    name, n = clean, 2
    while name.lower() in taken:
        name = f"{clean[:28]} {n}"
        n += 1
    taken.add(name.lower())
    return name


def _width(value: object) -> int:
    """Display width of a cell's text: East Asian wide characters take two columns."""
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    if isinstance(value, int | float):
        return len(f"{value:,}") + 2
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))


def _write_table(ws, table: Table, era: bool = False) -> None:
    bold = Font(bold=True)
    ws.append(table.headers)
    for cell in ws[1]:
        cell.font = bold
    for r, row in enumerate(table.rows, start=2):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            kind = table.kinds[c - 1]
            if table.row_kinds is not None and c > 1:
                kind = table.row_kinds[r - 2]
            if isinstance(value, datetime):
                # Excel has no time zones: Tokyo's wall clock, naive (the header says so).
                cell.value = _tokyo(value).replace(tzinfo=None)
                cell.number_format = ERA_DATETIME_FORMAT if era else DATETIME_FORMAT
            elif isinstance(value, date):
                cell.value = value
                cell.number_format = ERA_DATE_FORMAT if era else DATE_FORMAT
            elif isinstance(value, bool) or value is None:
                cell.value = "" if value is None else str(value).lower()
            elif isinstance(value, int | float):
                cell.value = value
                cell.number_format = NUMBER_FORMATS.get(kind, "General")
            else:
                text = ILLEGAL_CHARACTERS_RE.sub("", str(value))
                cell.value = text
                # openpyxl takes text starting with "=" for a formula: say it is text; and
                # quotePrefix keeps Excel from running it when somebody edits the cell.
                cell.data_type = "s"
                if text.startswith(FORMULA_STARTS):
                    cell.quotePrefix = True
    for c, header in enumerate(table.headers, start=1):
        widest = max([_width(header)] + [_width(row[c - 1]) for row in table.rows])
        ws.column_dimensions[get_column_letter(c)].width = min(max(widest + 2, 8), 60)
    ws.freeze_panes = "A2"  # the header row stays in view
    if table.rows:
        ws.auto_filter.ref = ws.dimensions


def to_xlsx(report: Report, locale: str = "ja", era: bool = False) -> bytes:
    """The workbook: one sheet per table of the report, typed cells; `era`: dates shown
    in 和暦 (still dates: ERA)."""
    book = Workbook()
    book.remove(book.active)
    taken: set[str] = set()
    for table in tables(report, locale):
        _write_table(book.create_sheet(_sheet_title(table.title, taken)), table, era)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ------------------------------------------------------------------------------ CSV zip


def _csv_cell(value: object) -> object:
    # Instants in Tokyo time with their offset; everything else as csvexport writes it.
    return _tokyo(value).replace(microsecond=0) if isinstance(value, datetime) else value


def csv_files(report: Report, locale: str = "ja") -> list[tuple[str, str]]:
    """(file name, CSV text with a BOM) per table: 01-about.csv, 02-summary.csv, …"""
    return [(f"{n:02d}-{table.key}.csv",
             csv_text(table.headers, ([_csv_cell(v) for v in row] for row in table.rows)))
            for n, table in enumerate(tables(report, locale), start=1)]


def to_zip(report: Report, locale: str = "ja") -> bytes:
    """The per-table CSV files in one zip (ASCII file names: every unzip tool reads them)."""
    out = io.BytesIO()
    stamp = clock.tokyo_now().timetuple()[:6]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in csv_files(report, locale):
            info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return out.getvalue()
