"""Open data: public spaces as the 公共施設一覧 of the 自治体標準オープンデータセット.

The column list, its source and what we cannot fill are written down once, in
booking/data/opendata_public_facilities.json; this module reads the columns from there so
that the CSV, the JSON twin and the tests cannot drift apart.

Decisions (the issue is silent on them):
- A municipality's file holds the public spaces LOCATED in it (the standard is per 自治体,
  about the facilities in its area), whoever runs them. A prefecture's code gives every
  public space in the prefecture.
- Campaign slots have no dataset of their own in the standard: each public slot of a
  public campaign is written into its space's 備考, with the fees, so one file stays one
  table with exactly the official columns.
- CSV in UTF-8 with a BOM (Excel shows the Japanese; pandas reads it with utf-8-sig).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import Session, selectinload

from booking import clock, labels, prefectures
from booking.formatting import hhmm, thousands
from booking.models import Campaign, CampaignSlot, Space, Unit
from booking.services.spaces import public_spaces

LIST_FILE = Path(__file__).resolve().parent.parent / "data" / "opendata_public_facilities.json"
LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/deed.ja"

# 5-digit 団体コード (without the check digit) of the municipalities the site knows
# spaces in, by (prefecture code, name). Only these; any other city falls back to its
# prefecture's code. 札幌市 and 静岡市 are checked against published 6-digit codes
# (011002, 221007) in the tests; extend the table as operators join from more places.
MUNICIPALITY_CODES: dict[tuple[int, str], str] = {
    (1, "札幌市"): "01100",
    (11, "吉川市"): "11243",
    (13, "府中市"): "13206",
    (20, "駒ヶ根市"): "20210",
    (20, "立科町"): "20324",
    (22, "静岡市"): "22100",
    (35, "柳井市"): "35212",
    (36, "徳島市"): "36201",
}


def check_digit(code5: str) -> str:
    """The check digit of a 5-digit 団体コード (JIS X 0402 / 総務省): weights 6,5,4,3,2,
    then (11 − sum mod 11), its last digit. 01100 → 2 (札幌市 011002)."""
    if len(code5) != 5 or not code5.isdigit():
        raise ValueError(code5)
    total = sum(int(d) * w for d, w in zip(code5, (6, 5, 4, 3, 2), strict=True))
    return str((11 - total % 11) % 10)


def full_code(code5: str) -> str:
    return code5 + check_digit(code5)


def valid_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit() and check_digit(code[:5]) == code[5]


def prefecture_code6(prefecture: int) -> str:
    return full_code(f"{prefecture:02d}000")


@cache
def definition() -> dict:
    return json.loads(LIST_FILE.read_text(encoding="utf-8"))


def columns() -> list[str]:
    """The official columns, in the official order (from the list file)."""
    return [c["name"] for c in definition()["columns"]]


@dataclass(frozen=True)
class Municipality:
    code: str  # 6 digits with the check digit
    prefecture_code: int
    name: str  # "" for a prefecture

    @property
    def label(self) -> str:
        pref = prefectures.by_code(self.prefecture_code)
        return (pref.name if pref else "") + self.name


def municipality_of(space: Space) -> Municipality:
    """The municipality a space is located in: the longest known name its city begins
    with (静岡市葵区 → 静岡市); its prefecture when none is known."""
    best = ""
    for (pref, name), _code in MUNICIPALITY_CODES.items():
        if pref == space.prefecture_code and space.city.startswith(name) and len(name) > len(best):
            best = name
    if best:
        return Municipality(full_code(MUNICIPALITY_CODES[(space.prefecture_code, best)]),
                            space.prefecture_code, best)
    return Municipality(prefecture_code6(space.prefecture_code), space.prefecture_code, "")


def _in(space: Space, code: str | None) -> bool:
    if code is None:
        return True
    if code[2:5] == "000":  # a prefecture's code: every space in it
        return space.prefecture_code == int(code[:2])
    return municipality_of(space).code == code


def _spaces(session: Session) -> list[Space]:
    return list(session.scalars(public_spaces().options(selectinload(Space.organisation))
                                .order_by(Space.prefecture_code, Space.id)))


def municipalities(session: Session) -> list[tuple[Municipality, int]]:
    """Every municipality with at least one public space, with the count, by code."""
    counts: dict[str, tuple[Municipality, int]] = {}
    for space in _spaces(session):
        m = municipality_of(space)
        counts[m.code] = (m, counts.get(m.code, (m, 0))[1] + 1)
    return [counts[k] for k in sorted(counts)]


def known(session: Session, code: str) -> bool:
    """A code the site publishes a file for: a valid code with a public space in it."""
    return valid_code(code) and any(_in(s, code) for s in _spaces(session))


def _slots(session: Session, space_ids: Iterable[int]) -> dict[int, list[CampaignSlot]]:
    """Public campaigns' slots not yet over, by space."""
    rows = session.execute(
        sa.select(Unit.space_id, CampaignSlot)
        .join(Unit, Unit.id == CampaignSlot.unit_id)
        .join(Campaign, Campaign.id == CampaignSlot.campaign_id)
        .where(Campaign.is_public, Unit.space_id.in_(list(space_ids)),
               CampaignSlot.end_date >= clock.today())
        .options(selectinload(CampaignSlot.campaign))
        .order_by(CampaignSlot.start_date, CampaignSlot.id))
    out: dict[int, list[CampaignSlot]] = {}
    for space_id, slot in rows:
        out.setdefault(space_id, []).append(slot)
    return out


_WEEKDAYS = "月火水木金土日"


def _hours(space: Space) -> tuple[str, str, str, str]:
    """利用可能曜日, 開始時間, 終了時間, 利用可能日時特記事項."""
    hours = sorted(space.opening_hours, key=lambda h: h.weekday)
    days = "".join(_WEEKDAYS[h.weekday] for h in hours)
    start = hhmm(min(h.opens_min for h in hours)) if hours else ""
    end = hhmm(max(h.closes_min for h in hours)) if hours else ""
    notes = []
    if len({(h.opens_min, h.closes_min) for h in hours}) > 1:
        notes.append(" ".join(f"{_WEEKDAYS[h.weekday]} {hhmm(h.opens_min)}-{hhmm(h.closes_min)}"
                              for h in hours))
    if space.closed_on_holidays:
        notes.append("祝日休業")
    return days, start, end, ";".join(notes)


def _remarks(space: Space, slots: list[CampaignSlot]) -> str:
    """Fees (tax-included, per unit open to the public) and campaign slots, as text."""
    parts = []
    with force_locale("ja"):
        fees = [f"{u.name} {labels.price_label(u.price_amount, u.price_per)}"
                for u in space.units if not u.members_only]
        if fees:
            parts.append("料金: " + ", ".join(fees))
        for slot in slots:
            price = ("無料" if not slot.price_amount
                     else f"¥{thousands(slot.price_amount)}(税込)")
            unit = next((u.name for u in space.units if u.id == slot.unit_id), "")
            parts.append(f"キャンペーン「{slot.campaign.name}」 {unit} "
                         f"{slot.start_date.isoformat()}〜{slot.end_date.isoformat()} "
                         f"{hhmm(slot.daily_start_min)}-{hhmm(slot.daily_end_min)} "
                         f"{slot.seats}席 {price}")
    return " / ".join(parts)


def rows(session: Session, space_url: Callable[[Space], str],
         code: str | None = None) -> list[dict[str, str]]:
    """One row per public space (in the municipality `code`, or all), with exactly the
    official columns in the official order, every value a string ("" when unknown)."""
    spaces = [s for s in _spaces(session) if _in(s, code)]
    slots = _slots(session, [s.id for s in spaces])
    out = []
    for space in spaces:
        m = municipality_of(space)
        pref = prefectures.by_code(space.prefecture_code)
        pref_name = pref.name if pref else ""
        days, start, end, note = _hours(space)
        address = space.address if space.address.startswith(pref_name) else pref_name + space.address
        values = {
            "都道府県コード又は市区町村コード": m.code,
            "NO": str(space.id),
            "都道府県名": pref_name,
            "市区町村名": m.name,
            "名称": space.name,
            "住所": address,
            "緯度": "" if space.lat is None else f"{space.lat:.6f}",
            "経度": "" if space.lon is None else f"{space.lon:.6f}",
            "電話番号": space.contact_phone,
            "団体名": space.organisation.name,
            "利用可能曜日": days,
            "開始時間": start,
            "終了時間": end,
            "利用可能日時特記事項": note,
            "説明": space.description,
            "URL": space_url(space),
            "備考": _remarks(space, slots.get(space.id, [])),
        }
        out.append({c: values.get(c, "") for c in columns()})
    return out


def to_csv(table: list[dict[str, str]]) -> bytes:
    """UTF-8 with a BOM, CRLF line ends (RFC 4180), a header of the official columns."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue().encode("utf-8-sig")


def to_json(table: list[dict[str, str]], *, title: str, url: str) -> dict:
    """The JSON twin: the same rows and fields, with the metadata the CSV cannot carry."""
    meta = definition()
    return {
        "dataset": meta["dataset"],
        "title": title,
        "standard": meta["standard"],
        "columns": columns(),
        "licence": LICENCE,
        "licence_url": LICENCE_URL,
        "source": url,
        "generated_at": clock.now().isoformat(),
        "facilities": table,
    }
