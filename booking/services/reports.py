"""What a campaign achieved (効果測定), per campaign and per space: the figures and the
CSV (the page draws its charts from the same figures: booking/blueprints/municipality/charts.py).

Definitions (also on the report page):
- bookings: bookings made through the campaign's slots that hold seats (confirmed,
  checked in, or marked no-show); cancelled ones are counted apart.
- seat-days: seats × the Tokyo dates a booking touches.
- distinct companies, and companies by the prefecture of their registered office.
- occupancy per day: seats booked through the slots on that date / seats the slots offer
  on that date (a slot offers its seats on the dates its space is open).
- no-shows: bookings the operator marked no-show.
- subsidies paid: what the municipality pays (Booking.subsidy_amount) on bookings that
  hold seats; company paid: Booking.price_amount of the same bookings.
- commuting avoided, for bookings that were used (confirmed or checked in; not no-shows):
  one-way km = min(straight-line distance between the company's registered office and
  the space × detour factor, cap); person-days = seat-days; km avoided = 2 × one-way km ×
  person-days; hours = km / speed; CO2 kg = km × (rail share × rail g/pkm + (1 − rail
  share) × car g/pkm) / 1000. The office is the company's lat/lon when registered, else
  its prefecture's office position (booking/prefectures.py); a company with neither is
  counted under "origin unknown" and adds nothing.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, selectinload

from booking.labels import prefecture_name, telework_category_label
from booking.models import (
    HOLDING_STATUSES,
    NOT_MADE_STATUSES,
    Booking,
    BookingStatus,
    Campaign,
    CampaignSlot,
    Organisation,
    ReportFactors,
    Space,
    TeleworkCategory,
    Unit,
    User,
)
from booking.prefectures import by_code
from booking.services import access
from booking.services.audit import record
from booking.services.availability import slot_window, tokyo_days
from booking.services.csvexport import safe_row
from booking.services.errors import DomainError

# name -> (default, unit, source). Shown on the factors page; the municipality may change them.
DEFAULT_FACTORS: dict[str, tuple[float, object, object]] = {
    "detour_factor": (1.3, "", _l(
        "想定値: 実際の経路は直線距離より長いため、直線距離に掛ける迂回率。"
        "道路・鉄道網の迂回率としてよく使われる1.2〜1.4の中間をとった本サービスの既定値です。")),
    "speed_kmh": (30.0, "km/h", _l(
        "想定値: 徒歩・乗り換え・待ち時間を含む通勤の平均速度(首都圏の通勤鉄道の表定速度程度)。"
        "本サービスの既定値です。地域の実態に合わせて変更してください。")),
    "rail_share_pct": (100.0, "%", _l(
        "想定値: 通勤のうち鉄道の割合。テレワーク・デイズは鉄道の混雑緩和(TDM)が目的のため"
        "100パーセントを既定とします。"
        "自動車通勤が多い地域では下げてください(残りは自家用乗用車として計算)。")),
    "rail_g_per_pkm": (17.0, _l("g-CO2/人km"), _l(
        "出典: 国土交通省「運輸部門における二酸化炭素排出量」輸送量当たりの二酸化炭素の排出量"
        "(旅客、2019年度): 鉄道 17 g-CO2/人km。")),
    "car_g_per_pkm": (130.0, _l("g-CO2/人km"), _l(
        "出典: 国土交通省「運輸部門における二酸化炭素排出量」輸送量当たりの二酸化炭素の排出量"
        "(旅客、2019年度): 自家用乗用車 130 g-CO2/人km。")),
    "max_one_way_km": (60.0, "km", _l(
        "想定値: 片道の上限。これより遠い企業の利用は通勤ではなく出張・ワーケーションなので、"
        "避けられた通勤はこの距離までとして数えます(首都圏の通勤圏の目安)。")),
}
FACTOR_LABELS = {
    "detour_factor": _l("迂回率(直線距離に掛ける係数)"),
    "speed_kmh": _l("通勤の平均速度"),
    "rail_share_pct": _l("鉄道通勤の割合"),
    "rail_g_per_pkm": _l("鉄道のCO2排出係数"),
    "car_g_per_pkm": _l("自家用乗用車のCO2排出係数"),
    "max_one_way_km": _l("片道距離の上限"),
}


def factors_of(session: Session, user: User, organisation_id: int) -> ReportFactors:
    """The municipality's factors, for one of its members (not_found for anyone else)."""
    access.require(user, "campaign", organisation_id)
    return _factors(session, organisation_id)


def _factors(session: Session, organisation_id: int) -> ReportFactors:
    """The municipality's factors; the documented defaults when it has not changed them
    (a transient row, not added to the session)."""
    found = session.scalar(sa.select(ReportFactors)
                           .where(ReportFactors.organisation_id == organisation_id))
    if found is not None:
        return found
    return ReportFactors(organisation_id=organisation_id,
                         **{name: value for name, (value, _u, _s) in DEFAULT_FACTORS.items()})


def save_factors(session: Session, user: User, organisation_id: int,
                 values: dict[str, float]) -> ReportFactors:
    access.require(user, "campaign", organisation_id)
    factors = session.scalar(sa.select(ReportFactors)
                             .where(ReportFactors.organisation_id == organisation_id))
    if factors is None:
        factors = _factors(session, organisation_id)
        session.add(factors)
    if values["detour_factor"] < 1 or values["speed_kmh"] <= 0 or values["max_one_way_km"] <= 0 \
            or not 0 <= values["rail_share_pct"] <= 100:
        raise DomainError("bad_range")
    for name in DEFAULT_FACTORS:
        setattr(factors, name, float(values[name]))
    session.flush()
    record(session, user, "report_factors.update", factors, organisation_id,
           **{k: float(v) for k, v in values.items()})
    return factors


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on a sphere of the mean Earth radius (6371.0088 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def office_position(company: Organisation | None) -> tuple[float, float] | None:
    if company is None:
        return None
    if company.lat is not None and company.lon is not None:
        return company.lat, company.lon
    pref = by_code(company.prefecture_code)
    return (pref.lat, pref.lon) if pref else None


def space_position(space: Space) -> tuple[float, float] | None:
    if space.lat is not None and space.lon is not None:
        return space.lat, space.lon
    pref = by_code(space.prefecture_code)
    return (pref.lat, pref.lon) if pref else None


@dataclass
class Effect:
    """Commuting avoided (summed over bookings)."""

    person_days: int = 0
    km: float = 0.0
    hours: float = 0.0
    co2_kg: float = 0.0
    unknown_origin: int = 0  # bookings whose company has no known office position

    def add(self, other: Effect) -> None:
        self.person_days += other.person_days
        self.km += other.km
        self.hours += other.hours
        self.co2_kg += other.co2_kg
        self.unknown_origin += other.unknown_origin


def booking_effect(booking: Booking, factors: ReportFactors) -> Effect:
    origin = office_position(booking.company)
    target = space_position(booking.unit.space)
    person_days = booking.seats * len(tokyo_days(booking.starts_at, booking.ends_at))
    if origin is None or target is None:
        return Effect(person_days=person_days, unknown_origin=1)
    one_way = min(haversine_km(*origin, *target) * factors.detour_factor, factors.max_one_way_km)
    km = 2 * one_way * person_days
    share = factors.rail_share_pct / 100
    grams = km * (share * factors.rail_g_per_pkm + (1 - share) * factors.car_g_per_pkm)
    return Effect(person_days=person_days, km=km, hours=km / factors.speed_kmh,
                  co2_kg=grams / 1000)


@dataclass
class Totals:
    bookings: int = 0
    cancelled: int = 0
    seat_days: int = 0
    companies: set[int] = field(default_factory=set)
    no_shows: int = 0
    company_paid: int = 0
    subsidies: int = 0
    effect: Effect = field(default_factory=Effect)

    @property
    def company_count(self) -> int:
        return len(self.companies)


@dataclass
class DayRow:
    day: date
    offered: int
    booked: int

    @property
    def rate(self) -> float:
        """Percent of offered seats booked, one decimal."""
        return round(100 * self.booked / self.offered, 1) if self.offered else 0.0


@dataclass
class SpaceRow:
    space: Space
    totals: Totals


@dataclass
class Report:
    campaign: Campaign
    space: Space | None
    factors: ReportFactors
    totals: Totals
    by_prefecture: list[tuple[int | None, int]]  # (prefecture code or None, companies)
    by_category: list[tuple[str, int, int]]  # (category code, companies, core-day staff)
    days: list[DayRow]
    spaces: list[SpaceRow]
    bookings: list[Booking]
    campaign_spaces: list[Space]  # every space with a slot of the campaign (to choose one)

    @property
    def has_subsidy(self) -> bool:
        return any(b.subsidy_amount for b in self.bookings)


def campaign_spaces(session: Session, campaign: Campaign) -> list[Space]:
    """Spaces with a slot of the campaign, for the per-space choice."""
    # IN, not DISTINCT: PostgreSQL cannot compare the JSON column for DISTINCT.
    return list(session.scalars(
        sa.select(Space).where(Space.id.in_(
            sa.select(Unit.space_id).join(CampaignSlot, CampaignSlot.unit_id == Unit.id)
            .where(CampaignSlot.campaign_id == campaign.id)
        )).order_by(Space.id)
    ))


def build(session: Session, user: User, campaign: Campaign, space_id: int | None = None) -> Report:
    """The report of a campaign, or of one of its spaces (`space_id`; not_found when the
    campaign has no slot there), for its municipality's members. A constant number of
    queries."""
    access.require(user, "view", campaign)
    return figures(session, campaign, space_id)


def figures(session: Session, campaign: Campaign, space_id: int | None = None) -> Report:
    """The report itself, for a caller that asked access already (build; the site admin's
    roll-up of a national campaign, services/national_campaigns.py)."""
    spaces = campaign_spaces(session, campaign)
    space = None
    if space_id is not None:
        space = next((s for s in spaces if s.id == space_id), None)
        if space is None:
            raise DomainError("not_found")
    factors = _factors(session, campaign.organisation_id)
    slot_query = (
        sa.select(CampaignSlot).join(Unit, CampaignSlot.unit_id == Unit.id)
        .where(CampaignSlot.campaign_id == campaign.id)
        .options(selectinload(CampaignSlot.unit).selectinload(Unit.space)
                 .selectinload(Space.opening_hours))
        .order_by(CampaignSlot.id)
    )
    if space is not None:
        slot_query = slot_query.where(Unit.space_id == space.id)
    slots = list(session.scalars(slot_query))
    slot_ids = [s.id for s in slots]
    bookings = list(session.scalars(
        sa.select(Booking).where(Booking.campaign_slot_id.in_(slot_ids),
                                 # A waitlist's offer is not (yet) a booking made; an
                                 # expired one never was (services/waitlist.py).
                                 Booking.status.not_in(NOT_MADE_STATUSES))
        .options(selectinload(Booking.company),
                 selectinload(Booking.unit).selectinload(Unit.space))
        .order_by(Booking.starts_at, Booking.id)
    )) if slot_ids else []

    totals = Totals()
    per_space: dict[int, Totals] = defaultdict(Totals)
    booked_per_day: dict[date, int] = defaultdict(int)
    companies: dict[int, Organisation] = {}
    for b in bookings:
        sid = b.unit.space_id
        for t in (totals, per_space[sid]):
            _count(t, b, factors)
        if b.status in HOLDING_STATUSES:
            for day in tokyo_days(b.starts_at, b.ends_at):
                booked_per_day[day] += b.seats
            if b.company is not None:
                companies[b.company.id] = b.company

    offered_per_day: dict[date, int] = defaultdict(int)
    for slot in slots:
        if not slot.operator_consent:  # not offered (yet): the operator has not agreed
            continue
        day = slot.start_date
        while day <= slot.end_date:
            if slot_window(slot, day) is not None:
                offered_per_day[day] += slot.seats
            day += timedelta(days=1)
    days = [DayRow(d, offered_per_day.get(d, 0), booked_per_day.get(d, 0))
            for d in sorted(set(offered_per_day) | set(booked_per_day))]

    prefectures: dict[int | None, int] = defaultdict(int)
    categories: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for company in companies.values():
        prefectures[company.prefecture_code] += 1
        key = company.telework_category.value if company.telework_category else "none"
        categories[key][0] += 1
        categories[key][1] += company.core_day_staff or 0
    by_prefecture = sorted(prefectures.items(), key=lambda kv: (-kv[1], kv[0] or 99))
    order = [c.value for c in TeleworkCategory] + ["none"]
    by_category = [(k, categories[k][0], categories[k][1]) for k in order if k in categories]

    spaces_by_id = {s.unit.space.id: s.unit.space for s in slots}
    space_rows = [SpaceRow(spaces_by_id[sid], per_space.get(sid, Totals()))
                  for sid in sorted(spaces_by_id)]
    return Report(campaign=campaign, space=space, factors=factors, totals=totals,
                  by_prefecture=by_prefecture, by_category=by_category, days=days,
                  spaces=space_rows, bookings=bookings, campaign_spaces=spaces)


def _count(t: Totals, b: Booking, factors: ReportFactors) -> None:
    if b.status == BookingStatus.CANCELLED:
        t.cancelled += 1
        return
    t.bookings += 1
    t.seat_days += b.seats * len(tokyo_days(b.starts_at, b.ends_at))
    if b.company_id is not None:
        t.companies.add(b.company_id)
    t.company_paid += b.price_amount
    t.subsidies += b.subsidy_amount
    # A seat released by the unit's no-show rule (services/no_shows.py): nobody came.
    if b.status in (BookingStatus.NO_SHOW, BookingStatus.RELEASED):
        t.no_shows += 1
    else:
        t.effect.add(booking_effect(b, factors))


# ---------------------------------------------------------------------------------------
# The numbers as rows (the page's tables and the CSV share them).


def summary_rows(report: Report) -> list[tuple[str, int | float]]:
    t = report.totals
    return [
        (_("予約件数"), t.bookings),
        (_("延べ席日数"), t.seat_days),
        (_("利用企業数"), t.company_count),
        (_("無断キャンセル(来場なし)"), t.no_shows),
        (_("キャンセル"), t.cancelled),
        (_("企業の支払額(円)"), t.company_paid),
        (_("自治体の補助額(円)"), t.subsidies),
        (_("削減できた通勤距離(km、推計)"), round(t.effect.km, 1)),
        (_("削減できた通勤時間(時間、推計)"), round(t.effect.hours, 1)),
        (_("削減できたCO2(kg、推計)"), round(t.effect.co2_kg, 1)),
        (_("所在地不明の企業の予約"), t.effect.unknown_origin),
    ]




def to_csv(report: Report, locale: str = "ja") -> bytes:
    """UTF-8 with BOM (Excel in Japanese opens it right), the same figures as the page.
    Every cell goes through the one guard of all CSV exports (services/csvexport.py)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")

    def row(*cells: object) -> None:
        w.writerow(safe_row(cells))

    campaign = report.campaign
    row(_("キャンペーン"), campaign.display_name(locale))
    row(_("期間"), campaign.starts_on.isoformat(), campaign.ends_on.isoformat())
    if report.space is not None:
        row(_("施設"), report.space.display_name(locale))
    row()
    row(_("指標"), _("値"))
    for label, value in summary_rows(report):
        row(label, value)
    row()
    row(_("日付"), _("提供席数"), _("予約席数"), _("稼働率(%)"))
    for d in report.days:
        row(d.day.isoformat(), d.offered, d.booked, d.rate)
    row()
    row(_("企業の所在都道府県"), _("企業数"))
    for prefecture, n in report.by_prefecture:
        row(prefecture_name(prefecture, locale, unknown=_("不明")), n)
    row()
    row(_("参加区分"), _("企業数"), _("コア日のテレワーク人数"))
    for category, n, staff in report.by_category:
        row(telework_category_label(category), n, staff)
    row()
    row(_("施設"), _("予約件数"), _("延べ席日数"), _("利用企業数"), _("無断キャンセル(来場なし)"),
        _("企業の支払額(円)"), _("自治体の補助額(円)"), _("削減できた通勤時間(時間、推計)"),
        _("削減できたCO2(kg、推計)"))
    for s in report.spaces:
        t = s.totals
        row(s.space.display_name(locale), t.bookings, t.seat_days, t.company_count, t.no_shows,
            t.company_paid, t.subsidies, round(t.effect.hours, 1), round(t.effect.co2_kg, 1))
    row()
    row(_("予約番号"), _("企業"), _("施設"), _("開始"), _("終了"), _("席数"), _("状態"),
        _("企業の支払額(円)"), _("自治体の補助額(円)"))
    for b in report.bookings:
        row(b.reference, b.company.display_name(locale) if b.company else "",
            b.unit.space.display_name(locale), b.starts_at.isoformat(), b.ends_at.isoformat(),
            b.seats, b.status.value, b.price_amount, b.subsidy_amount)
    row()
    row(_("係数"), _("値"), _("単位"))
    for name, (_default, unit, _source) in DEFAULT_FACTORS.items():
        row(str(FACTOR_LABELS[name]), getattr(report.factors, name), unit)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
