"""Open data: public spaces as the 公共施設一覧 of the 自治体標準オープンデータセット.

The column list, its source and what we cannot fill are written down once, in
booking/data/opendata_public_facilities.json; this module reads the columns from there so
that the CSV, the JSON twin and the tests cannot drift apart.

Decisions (the issue is silent on them):
- A municipality's file holds the public spaces LOCATED in it (the standard is per 自治体,
  about the facilities in its area), whoever runs them. A prefecture's code gives every
  public space in the prefecture.
- Campaign slots have no dataset of their own in the standard: each public slot of a
  public campaign is written into its space's 備考, and the fees (the standard has no fee
  column) follow the description in 説明, so one file stays one table with exactly the
  official columns.
- Every municipality of Japan has its code (booking/municipalities.py, from KEN_ALL); a
  ward's space belongs to its designated city's file, its ward in 所在地_*.
- CSV in UTF-8 with a BOM (Excel shows the Japanese; pandas reads it with utf-8-sig).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from flask_babel import force_locale
from sqlalchemy.orm import Session, selectinload

from booking import clock, labels, prefectures
from booking import municipalities as codes
from booking.formatting import hhmm, thousands
from booking.models import Campaign, CampaignSlot, Space, Unit
from booking.municipalities import Municipality, prefecture_code6, valid_code
from booking.services import postal
from booking.services.errors import DomainError
from booking.services.spaces import public_spaces

LIST_FILE = Path(__file__).resolve().parent.parent / "data" / "opendata_public_facilities.json"
LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/deed.ja"

@cache
def definition() -> dict:
    return json.loads(LIST_FILE.read_text(encoding="utf-8"))


def columns() -> list[str]:
    """The official columns, in the official order (from the list file)."""
    return [c["name"] for c in definition()["columns"]]


def municipality_of(space: Space) -> Municipality:
    """The 地方公共団体 a space lies in (a designated city for its wards); its prefecture
    when its city string names no municipality of that prefecture."""
    place = codes.locate(space.prefecture_code, space.city)
    if place:
        return place.body
    return Municipality(prefecture_code6(space.prefecture_code), space.prefecture_code, "")


def location_of(space: Space) -> Municipality:
    """The municipality of the address itself: the ward in a designated city."""
    place = codes.locate(space.prefecture_code, space.city)
    return place.location if place else municipality_of(space)


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


def _fees(space: Space) -> str:
    """The fees (tax-included) of the units open to the public, as text."""
    with force_locale("ja"):
        fees = [f"{u.name} {labels.price_label(u.price_amount, u.price_per)}"
                for u in space.units if not u.members_only]
    return "料金: " + ", ".join(fees) if fees else ""


def _slots_text(space: Space, slots: list[CampaignSlot]) -> str:
    """The public campaign slots, as text."""
    parts = []
    for slot in slots:
        price = "無料" if not slot.price_amount else f"¥{thousands(slot.price_amount)}(税込)"
        unit = next((u.name for u in space.units if u.id == slot.unit_id), "")
        parts.append(f"キャンペーン「{slot.campaign.name}」 {unit} "
                     f"{slot.start_date.isoformat()}〜{slot.end_date.isoformat()} "
                     f"{hhmm(slot.daily_start_min)}-{hhmm(slot.daily_end_min)} "
                     f"{slot.seats}席 {price}")
    return " / ".join(parts)


def _address_parts(space: Space, pref_name: str, location: Municipality) -> tuple[str, str, str]:
    """所在地_連結表記, 所在地_町字, 所在地_番地以下. The town is the postal code's 町域 when
    the address goes on with it; otherwise the address is not split (no guessing)."""
    address = space.address if space.address.startswith(pref_name) else pref_name + space.address
    rest = address.removeprefix(pref_name)
    for city in (location.name, codes.short_name(location.name), space.city):
        if city and rest.startswith(city):
            rest = rest.removeprefix(city)
            break
    else:
        return address, "", ""
    town = ""
    if space.postal_code:
        try:
            town = postal.lookup(space.postal_code).town
        except DomainError:
            town = ""
    if town and rest.startswith(town):
        return address, town, rest.removeprefix(town).strip()
    return address, "", ""


def _postal_code(space: Space) -> str:
    code = postal.normalise_code(space.postal_code)
    return f"{code[:3]}-{code[3:]}" if code else ""


def rows(session: Session, space_url: Callable[[Space], str],
         code: str | None = None) -> list[dict[str, str]]:
    """One row per public space (in the municipality `code`, or all), with exactly the
    official columns in the official order, every value a string ("" when unknown)."""
    spaces = [s for s in _spaces(session) if _in(s, code)]
    slots = _slots(session, [s.id for s in spaces])
    out = []
    for space in spaces:
        body, location = municipality_of(space), location_of(space)
        pref = prefectures.by_code(space.prefecture_code)
        pref_name = pref.name if pref else ""
        days, start, end, note = _hours(space)
        address, town, block = _address_parts(space, pref_name, location)
        values = {
            "全国地方公共団体コード": body.code,
            "ID": str(space.id),
            "地方公共団体名": body.label,
            "名称": space.name,
            "名称_英字": space.name_en,
            "所在地_全国地方公共団体コード": location.code,
            "所在地_連結表記": address,
            "所在地_都道府県": pref_name,
            "所在地_市区町村": location.name,
            "所在地_町字": town,
            "所在地_番地以下": block,
            "緯度": "" if space.lat is None else f"{space.lat:.6f}",
            "経度": "" if space.lon is None else f"{space.lon:.6f}",
            "電話番号": space.contact_phone,
            "連絡先メールアドレス": space.contact_email,
            "郵便番号": _postal_code(space),
            "団体名": space.organisation.name,
            "利用可能曜日": days,
            "開始時間": start,
            "終了時間": end,
            "利用可能時間特記事項": note,
            "説明": "\n".join(t for t in (space.description, _fees(space)) if t),
            "URL": space_url(space),
            "備考": _slots_text(space, slots.get(space.id, [])),
        }
        unknown = set(values) - set(columns())
        assert not unknown, unknown  # a misspelt column would silently stay empty
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
