"""National campaigns (Telework Days 2019, the coming summer's…) and the municipalities'
campaigns that are their local programmes.

A national campaign is one thing: its period, its core day(s) and the categories
organisations take part in (実施団体 / 特別協力団体 / 応援団体, seed-facts.md), kept by the
site admin. A municipality's campaign joins it as a programme (Campaign.national_campaign_id):
its dates lie within the national period, and its slots, subsidies, extras and rules stay
the municipality's. A programme without core days of its own shows the national ones
(inherited for display only: nothing is copied, so an edit of the national campaign shows
at once).

The site admin's roll-up adds up the per-campaign reports of services/reports.py (one
report per programme, the same figures the municipality sees), never a second count.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import Campaign, CampaignSlot, NationalCampaign, Organisation, Space, Unit, User
from booking.services import access, campaign_terms, reports
from booking.services.audit import record
from booking.services.availability import slot_is_offered
from booking.services.csvexport import safe_row
from booking.services.errors import DomainError

# The categories of Telework Days 2019 and their conditions (seed-facts.md): what a new
# national campaign starts with, and the demo's.
TELEWORK_DAYS_CATEGORIES: list[dict[str, str]] = [
    {"code": "implementing", "name": "実施団体", "name_en": "Implementing organisation",
     "conditions": "人数・日数を問わず、テレワークを実施する団体。トライアルでの実施も歓迎します。",
     "conditions_en": "Any organisation that teleworks, with any number of people or days; "
                      "trials are welcome."},
    {"code": "special", "name": "特別協力団体", "name_en": "Special cooperating organisation",
     "conditions": "期間中に5日以上実施し、コア日に100名以上がテレワークを行い、"
                   "効果測定(オフィスの費用や電力使用量など)に協力する団体。",
     "conditions_en": "Teleworks on 5 days or more, with 100 people or more on the core day, "
                      "and cooperates with the measurement of effects (office costs, power use)."},
    {"code": "supporter", "name": "応援団体", "name_en": "Supporter organisation",
     "conditions": "テレワークのノウハウ、場所(サテライトオフィスや自治体の施設など)、"
                   "ソフトウェアを提供する団体。",
     "conditions_en": "Provides telework know-how, workspace (satellite offices, municipal "
                      "spaces…) or software."},
]

CATEGORY_FIELDS = ("code", "name", "name_en", "conditions", "conditions_en")


# ---------------------------------------------------------------------------------------
# What the public sees.


def core_days(national: NationalCampaign) -> list[date]:
    return [date.fromisoformat(d) for d in national.core_days]


def programme_core_days(campaign: Campaign) -> tuple[list[date], bool]:
    """The core days a campaign's page shows, and whether they are the national campaign's:
    its own when it has any, else (a programme) its national campaign's, inherited for
    display only (a published one's: an unpublished national campaign shows nowhere)."""
    own = [date.fromisoformat(d) for d in campaign.core_days]
    national = public_parent(campaign)
    if own or national is None:
        return own, False
    return core_days(national), True


def categories(national: NationalCampaign | None) -> list[Category]:
    return [Category.of(c) for c in (national.categories if national else [])]


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    name_en: str = ""
    conditions: str = ""
    conditions_en: str = ""

    @classmethod
    def of(cls, stored: dict) -> Category:
        return cls(**{k: str(stored.get(k) or "") for k in CATEGORY_FIELDS})

    def display_name(self, locale: str = "ja") -> str:
        return self.name_en if locale == "en" and self.name_en else self.name

    def display_conditions(self, locale: str = "ja") -> str:
        return self.conditions_en if locale == "en" and self.conditions_en else self.conditions


def public_list(session: Session) -> list[NationalCampaign]:
    """The published national campaigns, latest first."""
    return list(session.scalars(sa.select(NationalCampaign)
                                .where(NationalCampaign.published.is_(True))
                                .order_by(NationalCampaign.starts_on.desc(), NationalCampaign.id)))


def public_national(session: Session, slug: str) -> NationalCampaign | None:
    return session.scalar(sa.select(NationalCampaign).where(
        NationalCampaign.slug == slug, NationalCampaign.published.is_(True)))


def current_national(session: Session, today: date | None = None) -> NationalCampaign | None:
    """The published national campaign a company registers for now: the running or next
    one (the earliest not ended), else the latest one."""
    today = today or clock.today()
    published = NationalCampaign.published.is_(True)
    return session.scalar(
        sa.select(NationalCampaign).where(published, NationalCampaign.ends_on >= today)
        .order_by(NationalCampaign.starts_on, NationalCampaign.id).limit(1)
    ) or session.scalar(sa.select(NationalCampaign).where(published)
                        .order_by(NationalCampaign.ends_on.desc(), NationalCampaign.id).limit(1))


@dataclass
class ProgrammeRow:
    """A public programme as the national page lists it: the offered slots (consented, on
    public spaces) and how many of them are free of charge."""

    campaign: Campaign
    slots: int = 0
    free_slots: int = 0
    seats: int = 0


def public_programmes(session: Session,
                      nationals: list[NationalCampaign]) -> dict[int, list[ProgrammeRow]]:
    """The public programmes (Campaign.is_public: published, municipality approved) of each
    national campaign, by its id, in the order of their first day and municipality. Two
    queries whatever the number of campaigns."""
    ids = [n.id for n in nationals]
    result: dict[int, list[ProgrammeRow]] = {i: [] for i in ids}
    if not ids:
        return result
    campaigns = list(session.scalars(
        sa.select(Campaign).where(Campaign.national_campaign_id.in_(ids), Campaign.is_public)
        .options(selectinload(Campaign.organisation))
        .order_by(Campaign.starts_on, Campaign.organisation_id, Campaign.id)))
    rows = {c.id: ProgrammeRow(c) for c in campaigns}
    if rows:
        slots = session.scalars(
            sa.select(CampaignSlot)
            .join(Unit, CampaignSlot.unit_id == Unit.id)
            .join(Space, Unit.space_id == Space.id)
            .where(CampaignSlot.campaign_id.in_(list(rows)), slot_is_offered(),
                   Space.is_public)
            .options(selectinload(CampaignSlot.unit)))
        for slot in slots:
            row = rows[slot.campaign_id]
            row.slots += 1
            row.seats += slot.seats
            row.free_slots += int(slot.price_for() == 0)
    for c in campaigns:
        result[c.national_campaign_id].append(rows[c.id])  # type: ignore[index]
    return result


def public_parent(campaign: Campaign) -> NationalCampaign | None:
    """The published national campaign a campaign is a programme of (its page names it)."""
    national = campaign.national_campaign
    return national if national is not None and national.published else None


@dataclass
class CampaignsIndex:
    nationals: list[NationalCampaign]
    programmes: dict[int, list[ProgrammeRow]]  # by national campaign id
    others: list[Campaign]  # public campaigns of no published national campaign


def campaigns_index(session: Session) -> CampaignsIndex:
    """The public campaigns page: the published national campaigns (latest first) with
    their public programmes, then every other public campaign, latest first."""
    nationals = public_list(session)
    shown = [n.id for n in nationals]
    query = sa.select(Campaign).where(Campaign.is_public)
    if shown:
        query = query.where(sa.or_(Campaign.national_campaign_id.is_(None),
                                   Campaign.national_campaign_id.not_in(shown)))
    others = list(session.scalars(query.options(selectinload(Campaign.organisation))
                                  .order_by(Campaign.starts_on.desc(), Campaign.id)))
    return CampaignsIndex(nationals, public_programmes(session, nationals), others)


# ---------------------------------------------------------------------------------------
# The site admin's management.


def require_admin(user: User | None) -> None:
    """National campaigns are the site admin's; anyone else is told nothing exists."""
    if not access.is_admin(user):
        raise DomainError("not_found")


def all_nationals(session: Session, user: User) -> list[NationalCampaign]:
    require_admin(user)
    return list(session.scalars(sa.select(NationalCampaign)
                                .options(selectinload(NationalCampaign.programmes))
                                .order_by(NationalCampaign.starts_on.desc(), NationalCampaign.id)))


def get_national(session: Session, user: User, national_id: int) -> NationalCampaign:
    require_admin(user)
    found = session.get(NationalCampaign, national_id)
    if found is None:
        raise DomainError("not_found")
    return found


@dataclass
class NationalData:
    slug: str
    name: str
    name_en: str
    description: str
    description_en: str
    starts_on: date
    ends_on: date
    core_days: list[date]
    categories: list[dict[str, str]] = field(default_factory=list)
    published: bool = True


def _lock(session: Session, national_id: int) -> NationalCampaign | None:
    """The national campaign's row, locked and read afresh: a change of its period and a
    programme joining it (or moving its dates) are decided one after the other, so that no
    programme is left outside the period (PostgreSQL: SELECT … FOR UPDATE; SQLite: the
    database's one write lock, whichever writes first)."""
    return session.scalars(
        sa.select(NationalCampaign).where(NationalCampaign.id == national_id)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()


def save_national(session: Session, user: User, data: NationalData,
                  national: NationalCampaign | None = None) -> NationalCampaign:
    """Creates (national None) or updates a national campaign, for the site admin. The
    period is ordered, the core days lie within it, the slug is free, each category has
    a code and a name (codes unique), and the programmes already attached stay inside the
    period (an edit that would leave one outside is refused: change the programme first)."""
    require_admin(user)
    campaign_terms.check(session, NationalCampaign, slug=data.slug, starts_on=data.starts_on,
                         ends_on=data.ends_on, core_days=data.core_days,
                         current_id=national.id if national is not None else None)
    cats = [{k: (c.get(k) or "").strip() for k in CATEGORY_FIELDS} for c in data.categories]
    cats = [c for c in cats if any(c.values())]  # an empty row is no category
    codes = [c["code"] for c in cats]
    if any(not c["code"] or not c["name"] for c in cats) or len(set(codes)) != len(codes):
        raise DomainError("national_category_invalid", field="categories")
    if national is not None:
        _lock(session, national.id)
        # The programmes as committed now (under the lock), not as loaded before it.
        outside = session.scalar(sa.select(sa.func.count()).select_from(Campaign).where(
            Campaign.national_campaign_id == national.id,
            sa.or_(Campaign.starts_on < data.starts_on, Campaign.ends_on > data.ends_on)))
        if outside:
            raise DomainError("national_programmes_outside", field="starts_on")
    new = national is None
    if national is None:
        national = NationalCampaign()
        session.add(national)
    campaign_terms.apply(national, data)
    national.categories = cats
    session.flush()
    record(session, user, "national_campaign.create" if new else "national_campaign.update",
           national, None, slug=national.slug, published=national.published)
    return national


# ---------------------------------------------------------------------------------------
# Programmes: a municipality's campaign joins a national campaign (campaign_management).


def choices_for(session: Session, current: Campaign | None = None) -> list[NationalCampaign]:
    """What a municipality's campaign form offers: the published national campaigns, and
    the one the campaign belongs to already (even if unpublished since)."""
    condition: sa.ColumnElement[bool] = NationalCampaign.published.is_(True)
    if current is not None and current.national_campaign_id is not None:
        condition = sa.or_(condition, NationalCampaign.id == current.national_campaign_id)
    return list(session.scalars(sa.select(NationalCampaign).where(condition)
                                .order_by(NationalCampaign.starts_on.desc(), NationalCampaign.id)))


def check_programme(session: Session, national_id: int | None, starts_on: date, ends_on: date,
                    campaign: Campaign | None = None) -> NationalCampaign | None:
    """The national campaign a municipality's campaign (new: None) is to belong to, after
    the rules: it exists and is published (or is the campaign's already), and the
    campaign's dates lie within its period. None: a campaign of its own."""
    if national_id is None:
        return None
    national = _lock(session, national_id)
    if national is None or not (national.published or (
            campaign is not None and campaign.national_campaign_id == national.id)):
        raise DomainError("not_found", field="national_campaign_id")
    if starts_on < national.starts_on or ends_on > national.ends_on:
        raise DomainError("programme_outside_national", field="starts_on",
                          start=national.starts_on.isoformat(), end=national.ends_on.isoformat())
    return national


# ---------------------------------------------------------------------------------------
# The roll-up (効果測定 of the national campaign), for the site admin.


@dataclass
class ProgrammeFigures:
    campaign: Campaign
    totals: reports.Totals


@dataclass
class RollUp:
    national: NationalCampaign
    programmes: list[ProgrammeFigures]
    total: reports.Totals


def add_totals(parts: list[reports.Totals]) -> reports.Totals:
    """The sum of per-programme totals. Companies are the union of the programmes' sets:
    a company that booked in two programmes is one company of the campaign."""
    total = reports.Totals()
    for t in parts:
        total.bookings += t.bookings
        total.cancelled += t.cancelled
        total.seat_days += t.seat_days
        total.companies |= t.companies
        total.no_shows += t.no_shows
        total.company_paid += t.company_paid
        total.subsidies += t.subsidies
        total.effect.add(t.effect)
    return total


def roll_up(session: Session, user: User, national: NationalCampaign) -> RollUp:
    """Each programme's figures from its own per-campaign report (reports.figures, the one
    the municipality reads) and their sum, for the site admin. Every programme counts,
    published or not: the admin sees what was booked."""
    require_admin(user)
    programmes = list(session.scalars(
        sa.select(Campaign).join(Organisation, Campaign.organisation_id == Organisation.id)
        .where(Campaign.national_campaign_id == national.id)
        .options(selectinload(Campaign.organisation))
        .order_by(Organisation.prefecture_code, Organisation.id, Campaign.starts_on, Campaign.id)))
    figures = [ProgrammeFigures(c, reports.figures(session, c).totals) for c in programmes]
    return RollUp(national, figures, add_totals([f.totals for f in figures]))


def roll_up_columns() -> list[str]:
    return [_("自治体"), _("キャンペーン"), _("期間"), _("予約件数"), _("延べ席日数"),
            _("利用企業数"), _("無断キャンセル(来場なし)"), _("キャンセル"),
            _("企業の支払額(円)"), _("自治体の補助額(円)"), _("削減できたCO2(kg、推計)")]


def _cells(t: reports.Totals) -> list[object]:
    return [t.bookings, t.seat_days, t.company_count, t.no_shows, t.cancelled,
            t.company_paid, t.subsidies, round(t.effect.co2_kg, 1)]


def roll_up_csv(rollup: RollUp, locale: str = "ja") -> bytes:
    """One table, UTF-8 with BOM (Excel in Japanese opens it right): a header, one row per
    programme, the total last. Every cell through the CSV exports' one guard."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(safe_row(roll_up_columns()))
    for p in rollup.programmes:
        c = p.campaign
        w.writerow(safe_row([c.organisation.display_name(locale), c.display_name(locale),
                             f"{c.starts_on.isoformat()}/{c.ends_on.isoformat()}",
                             *_cells(p.totals)]))
    n = rollup.national
    w.writerow(safe_row([_("合計"), n.display_name(locale),
                         f"{n.starts_on.isoformat()}/{n.ends_on.isoformat()}",
                         *_cells(rollup.total)]))
    return ("\ufeff" + out.getvalue()).encode("utf-8")
