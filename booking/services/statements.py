"""The operator's monthly statement (月次明細): per space and Tokyo month, the bookings that
count, what the companies paid, what each municipality owes for its share, and the
amounts by tax rate.

Which bookings count (by the Tokyo date the booking starts on, so a stay over the turn
of a month is in the month it begins):
- confirmed, checked in, no-show and released (a no-show whose seats the unit's rule
  gave back): the company booked and was not refunded, so the price stands, as the
  campaign report counts them (services/reports.py).
- cancelled: nothing. This product has no cancellation fee; a cancelled booking is
  not charged, so it is no sale.
- offered and expired (NOT_MADE_STATUSES): a waitlist's offer is no booking a company
  made; it never enters.

Tax (総額表示: every amount is tax-included; services/pricing.py): the statement's
consumption tax is worked out ONCE per rate on the total of that rate and rounded down,
as the qualified-invoice rules (適格請求書) ask per document per rate. It can differ by a
few yen from the sum of the taxes on each booking's own receipt, which is given beside
it (`receipts_tax`) so the operator sees both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session, selectinload

from booking.formatting import current_locale, local_stamp
from booking.labels import booking_status_label
from booking.models import (
    Booking,
    BookingStatus,
    Campaign,
    CampaignSlot,
    Organisation,
    Space,
    Unit,
    User,
)
from booking.services import access
from booking.services.availability import at
from booking.services.csvexport import csv_text
from booking.services.pricing import CONSUMPTION_TAX_PERCENT, of_booking, tax_included_in

# The statuses whose price is earned (see the module's docstring).
COUNTED_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.NO_SHOW,
                    BookingStatus.RELEASED)


@dataclass(frozen=True)
class Line:
    """One booking of the statement."""

    booking: Booking
    starts_at: datetime
    ends_at: datetime
    unit_name: str
    company_name: str
    seats: int
    status: BookingStatus
    company_pays: int  # tax-included yen
    tax: int  # the tax inside company_pays (the booking's own receipt)
    subsidy: int  # the municipality's share to claim
    campaign_name: str
    municipality_name: str
    tax_percent: int


@dataclass(frozen=True)
class Claim:
    """What one municipality owes the operator for the month."""

    municipality_id: int
    name: str
    bookings: int
    amount: int
    tax: int  # inside `amount`, once on the total


@dataclass(frozen=True)
class RateTotal:
    """The month's amounts at one tax rate, tax-included, each tax once on its total."""

    percent: int
    company_paid: int
    company_tax: int
    subsidies: int
    subsidies_tax: int
    total: int
    tax: int
    receipts_tax: int  # the sum of each booking's own tax on what the company paid


@dataclass
class Statement:
    space: Space
    month: date  # the first day
    lines: list[Line] = field(default_factory=list)
    rates: list[RateTotal] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    @property
    def company_paid(self) -> int:
        return sum(line.company_pays for line in self.lines)

    @property
    def subsidies(self) -> int:
        return sum(line.subsidy for line in self.lines)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of a Tokyo month."""
    first = month.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return at(first, 0), at(following, 0)


def statement(session: Session, user: User, space: Space, month: date) -> Statement:
    """The space's statement for the Tokyo month containing `month`, for a member of the
    space's organisation (not_found for anyone else)."""
    access.require(user, "manage", space)
    locale = current_locale()
    start, end = month_bounds(month)
    query = (
        sa.select(Booking).join(Unit, Booking.unit_id == Unit.id)
        .where(Unit.space_id == space.id, Booking.status.in_(COUNTED_STATUSES),
               Booking.starts_at >= start, Booking.starts_at < end)
        .options(selectinload(Booking.unit), selectinload(Booking.company),
                 selectinload(Booking.campaign_slot).selectinload(CampaignSlot.campaign)
                 .selectinload(Campaign.organisation))
        .order_by(Booking.starts_at, Booking.id)
    )
    result = Statement(space=space, month=month.replace(day=1))
    claims: dict[int, list[Line]] = defaultdict(list)
    municipalities: dict[int, Organisation] = {}
    for b in session.scalars(query):
        money = of_booking(b)
        campaign = b.campaign_slot.campaign if b.campaign_slot else None
        line = Line(
            booking=b, starts_at=b.starts_at, ends_at=b.ends_at,
            unit_name=b.unit.display_name(locale),
            company_name=b.company.display_name(locale) if b.company else "",
            seats=b.seats, status=b.status, company_pays=money.company_pays, tax=money.tax,
            subsidy=money.subsidy,
            campaign_name=campaign.display_name(locale) if campaign else "",
            municipality_name=(campaign.organisation.display_name(locale)
                               if campaign and money.subsidy else ""),
            tax_percent=money.tax_percent)
        result.lines.append(line)
        if campaign is not None and money.subsidy:
            claims[campaign.organisation_id].append(line)
            municipalities[campaign.organisation_id] = campaign.organisation
    for percent in sorted({line.tax_percent for line in result.lines} or
                          {CONSUMPTION_TAX_PERCENT}):
        at_rate = [line for line in result.lines if line.tax_percent == percent]
        paid = sum(line.company_pays for line in at_rate)
        subsidies = sum(line.subsidy for line in at_rate)
        result.rates.append(RateTotal(
            percent=percent, company_paid=paid, company_tax=tax_included_in(paid, percent),
            subsidies=subsidies, subsidies_tax=tax_included_in(subsidies, percent),
            total=paid + subsidies, tax=tax_included_in(paid + subsidies, percent),
            receipts_tax=sum(line.tax for line in at_rate)))
    for org_id, lines in sorted(claims.items(), key=lambda kv: municipalities[kv[0]].name):
        amount = sum(line.subsidy for line in lines)
        result.claims.append(Claim(
            municipality_id=org_id, name=municipalities[org_id].display_name(locale),
            bookings=len(lines), amount=amount,
            tax=tax_included_in(amount, lines[0].tax_percent)))
    return result


# ---------------------------------------------------------------------------------------
# CSV: one table per file (the bookings; the totals in a file of their own).


def _day(value: datetime, dated: Callable[[datetime], str] | None) -> str:
    return dated(value) if dated else local_stamp(value)[:10]


def lines_header() -> list[str]:
    return [_("予約番号"), _("利用日"), _("開始日時"), _("終了日時"), _("区画"), _("会社"), _("席数"),
            _("状態"), _("企業の支払額(円・税込)"), _("うち消費税(円)"), _("税率(%)"),
            _("自治体負担額(円)"), _("請求先の自治体"), _("キャンペーン")]


def lines_rows(found: Statement,
               dated: Callable[[datetime], str] | None = None) -> list[list[object]]:
    """The bookings' rows; `dated` writes the date (the 和暦 option), ISO otherwise."""
    return [[line.booking.reference, _day(line.starts_at, dated), local_stamp(line.starts_at),
             local_stamp(line.ends_at), line.unit_name, line.company_name, line.seats,
             booking_status_label(line.status), line.company_pays, line.tax, line.tax_percent,
             line.subsidy, line.municipality_name, line.campaign_name]
            for line in found.lines]


def totals_header() -> list[str]:
    return [_("内訳"), _("税率(%)"), _("金額(円・税込)"), _("うち消費税(円)")]


def totals_rows(found: Statement) -> list[list[object]]:
    """The totals as rows: per rate (companies, municipalities, all), then each
    municipality's share to claim."""
    rows: list[list[object]] = []
    for rate in found.rates:
        rows += [[_("企業の支払額の合計"), rate.percent, rate.company_paid, rate.company_tax],
                 [_("自治体負担額の合計"), rate.percent, rate.subsidies, rate.subsidies_tax],
                 [_("売上の合計"), rate.percent, rate.total, rate.tax]]
    for claim in found.claims:
        rows.append([_("%(name)sへの請求額", name=claim.name), CONSUMPTION_TAX_PERCENT,
                     claim.amount, claim.tax])
    return rows


def lines_csv(found: Statement, dated: Callable[[datetime], str] | None = None) -> str:
    return csv_text(lines_header(), lines_rows(found, dated))


def totals_csv(found: Statement) -> str:
    return csv_text(totals_header(), totals_rows(found))


def filename(found: Statement, part: str, extension: str) -> str:
    return f"statement-{found.space.id}-{found.month:%Y-%m}{part}.{extension}"



# ---------------------------------------------------------------------------------------
# PDF (services/pdf_documents.py draws it).


def pdf_bytes(found: Statement, *, issued_on: date,
              dated: Callable[[datetime], str] | None = None,
              month_label: str | None = None) -> bytes:
    """The statement as an A4 PDF: who and which month, the bookings, the totals per rate
    and each municipality's share to claim, and how the tax was worked out."""
    from booking.services.pdf_documents import PdfDocument  # ReportLab: loaded when drawn

    locale = current_locale()
    space = found.space
    operator = space.organisation
    title = _("月次明細")
    doc = PdfDocument(title, author=operator.display_name(locale))
    doc.title(title)
    issued = dated(at(issued_on, 0)) if dated else issued_on.isoformat()
    doc.pairs([
        (_("施設"), space.display_name(locale)),
        (_("運営者"), operator.display_name(locale)),
        (_("登録番号"), operator.invoice_registration_number or _("なし")),
        (_("対象月"), month_label or f"{found.month:%Y-%m}"),
        (_("作成日"), issued),
    ])
    doc.space(6)
    doc.big_amount(_("売上の合計(税込)"), yen_text(sum(r.total for r in found.rates)))
    header = [_("利用日"), _("区画"), _("会社"), _("席数"), _("状態"), _("企業の支払額"),
              _("自治体負担額"), _("キャンペーン")]
    rows = [[_day(line.starts_at, dated), line.unit_name, line.company_name, str(line.seats),
             booking_status_label(line.status), yen_text(line.company_pays),
             yen_text(line.subsidy), line.campaign_name]
            for line in found.lines]
    if rows:
        doc.table(header, rows, widths=[0.17, 0.1, 0.15, 0.05, 0.09, 0.11, 0.11, 0.22],
                  aligns=["left", "left", "left", "right", "left", "right", "right", "left"],
                  size=8)
    else:
        doc.paragraph(_("この月に数える予約はありません。"))
    doc.space(8)
    doc.table(totals_header(), [[str(c) if not isinstance(c, int) or i == 1 else yen_text(c)
                                 for i, c in enumerate(row)] for row in totals_rows(found)],
              widths=[0.46, 0.14, 0.2, 0.2], aligns=["left", "right", "right", "right"])
    doc.space(6)
    doc.paragraph(tax_note(found), size=8)
    return doc.to_bytes()


def yen_text(amount: int) -> str:
    return f"¥{amount:,}"


def tax_note(found: Statement) -> str:
    """How the tax was worked out, and the receipts' own sum (which may differ by yen)."""
    receipts = sum(r.receipts_tax for r in found.rates)
    return _("消費税は税率ごとの合計額から一度だけ計算し、1円未満を切り捨てています"
             "(適格請求書の端数処理)。予約ごとの領収書の消費税の合計は%(amount)sです。",
             amount=yen_text(receipts))


def month_label(month: date, *, era: bool = False) -> str:
    """'2026年12月', '令和8年12月' (和暦), 'December 2026', 'Reiwa 8 (2026), December'."""
    from babel.dates import format_date

    from booking.wareki import era_of

    locale = current_locale()
    if era:
        name, name_en, year = era_of(month)
        if locale == "en":
            return f"{name_en} {year} ({month.year}), {format_date(month, 'MMMM', locale='en')}"
        return f"{name}{'元' if year == 1 else year}年{month.month}月"
    if locale == "en":
        return format_date(month, "MMMM y", locale="en")
    return f"{month.year}年{month.month}月"


def era_dates(era: bool) -> Callable[[datetime], str] | None:
    """The 和暦 writer of dates for the statement's files, None for ISO dates."""
    if not era:
        return None
    from booking.wareki import wareki

    locale = current_locale()
    return lambda value: wareki(value, locale)
