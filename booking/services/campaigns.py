"""Campaigns of municipalities: their rules, who pays what, slots, extras, consent,
participation, and what the public may see.

Reservations call `check_rules`, `split_price` and `reserve_extras` inside the booking
transaction; the municipality's pages call the management functions below, which only
flush (the view commits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    BookingExtra,
    Campaign,
    CampaignExtra,
    CampaignSlot,
    Eligibility,
    Organisation,
    OrgKind,
    Space,
    TeleworkCategory,
    Unit,
    User,
)
from booking.services.audit import record
from booking.services.availability import TOKYO, overlaps, tokyo_days
from booking.services.errors import DomainError

# ---------------------------------------------------------------------------------------
# Rules of a slot and who pays what (called by reservations.py; behaviour fixed).


def check_rules(session: Session, slot: CampaignSlot, company: Organisation, start: datetime,
                end: datetime, seats: int, *, exclude_booking_id: int | None = None) -> None:
    """Raises DomainError (403) naming the rule that excludes this company."""
    space = slot.unit.space
    if (slot.eligibility == Eligibility.OUTSIDE_PREFECTURE
            and company.prefecture_code == space.prefecture_code):
        raise DomainError("campaign_outside_prefecture")
    mine = sa.select(Booking).where(
        Booking.campaign_slot_id.in_(
            sa.select(CampaignSlot.id).where(CampaignSlot.campaign_id == slot.campaign_id)
        ),
        Booking.company_id == company.id,
        Booking.status.in_(HOLDING_STATUSES),
    )
    if exclude_booking_id is not None:
        mine = mine.where(Booking.id != exclude_booking_id)
    if slot.max_bookings_per_company is not None:
        count = session.scalar(sa.select(sa.func.count()).select_from(mine.subquery()))
        if count >= slot.max_bookings_per_company:
            raise DomainError("campaign_bookings_per_company",
                              limit=slot.max_bookings_per_company)
    if slot.max_seats_per_company_per_day is not None:
        same_slot = list(session.scalars(mine.where(
            Booking.campaign_slot_id == slot.id,
            overlaps(Booking.starts_at, Booking.ends_at, start, end),
        )))
        for day in tokyo_days(start, end):
            # The days a booking touches: half-open, one rule (a booking that ends at
            # midnight does not touch the next day).
            taken = sum(b.seats for b in same_slot if day in tokyo_days(b.starts_at, b.ends_at))
            if taken + seats > slot.max_seats_per_company_per_day:
                raise DomainError("campaign_seats_per_day",
                                  limit=slot.max_seats_per_company_per_day)


def split_price(slot: CampaignSlot | None, full_price: int) -> tuple[int, int]:
    """(what the company pays, what the municipality pays) for a booking costing full_price
    at the slot's price (or the unit's, when the slot keeps it)."""
    if slot is None or slot.subsidy_cap is None:
        return full_price, 0
    subsidy = min(full_price, slot.subsidy_cap)
    return full_price - subsidy, subsidy


def find_slot(session: Session, campaign_slug: str, unit_id: int, start: datetime,
              end: datetime) -> CampaignSlot:
    """The offered slot of the published campaign `campaign_slug` on this unit whose dates
    cover [start, end); DomainError("campaign_closed") when there is none."""
    days = tokyo_days(start, end)
    slot = session.scalar(
        sa.select(CampaignSlot)
        .join(Campaign, CampaignSlot.campaign_id == Campaign.id)
        .join(Organisation, Campaign.organisation_id == Organisation.id)
        .where(
            Campaign.slug == campaign_slug,
            Campaign.published.is_(True),
            Organisation.approved_at.is_not(None),
            CampaignSlot.unit_id == unit_id,
            CampaignSlot.operator_consent.is_(True),
            CampaignSlot.start_date <= days[0],
            CampaignSlot.end_date >= days[-1],
        )
        .order_by(CampaignSlot.id)
        .limit(1)
    )
    if slot is None:
        raise DomainError("campaign_closed")
    return slot


# ---------------------------------------------------------------------------------------
# Extras lent with a booking (pocket Wi-Fi, projector), limited in number.


def reserve_extras(session: Session, booking: Booking, extras: Mapping[int, int]) -> list[BookingExtra]:
    """Sets the extras the booking holds to `extras` ({extra id: quantity}; 0 removes).

    Call it inside the booking transaction, after the booking row is flushed (it needs
    the booking's id, time range and campaign slot); it locks the extras' rows in id
    order, recounts what other holding bookings hold at every instant of the booking,
    and raises DomainError (nothing written) when an extra is not the slot's campaign's
    (extra_not_offered, 422), more than one booking may take (extra_too_many, 422) or no
    longer there (extra_sold_out, 409, with `available`). Calling it again with the
    booking's current extras re-checks them after a change of dates."""
    wanted = {int(k): int(v) for k, v in extras.items() if int(v) != 0}
    if any(q < 0 for q in wanted.values()):
        raise DomainError("extra_too_many")
    current = {
        line.extra_id: line
        for line in session.scalars(sa.select(BookingExtra).where(BookingExtra.booking_id == booking.id))
    }
    if wanted:
        slot = booking.campaign_slot
        if slot is None:
            raise DomainError("extra_not_offered")
        # Lock what we make less available, in a fixed order (no deadlock), then recount.
        rows = list(session.scalars(
            sa.select(CampaignExtra).where(CampaignExtra.id.in_(sorted(wanted)))
            .order_by(CampaignExtra.id).with_for_update()
        ))
        found = {e.id: e for e in rows}
        for extra_id, quantity in sorted(wanted.items()):
            extra = found.get(extra_id)
            if extra is None or extra.campaign_id != slot.campaign_id:
                raise DomainError("extra_not_offered", extra=extra_id)
            if quantity > extra.max_per_booking:
                raise DomainError("extra_too_many", extra=extra_id, limit=extra.max_per_booking)
        # A guarded write on each row: on SQLite it takes the write lock if the caller's
        # transaction has not yet; on PostgreSQL the rows are already locked FOR UPDATE.
        session.execute(
            sa.update(CampaignExtra).where(CampaignExtra.id.in_(sorted(wanted)))
            .values(lock_version=CampaignExtra.lock_version + 1)
            .execution_options(synchronize_session=False)
        )
        held = extras_held(session, sorted(wanted), booking.starts_at, booking.ends_at,
                           exclude_booking_id=booking.id)
        for extra_id, quantity in sorted(wanted.items()):
            available = found[extra_id].quantity - held.get(extra_id, 0)
            if quantity > available:
                raise DomainError("extra_sold_out", extra=extra_id, available=max(available, 0))
    lines = []
    for extra_id, line in current.items():
        if extra_id not in wanted:
            session.delete(line)
    for extra_id, quantity in sorted(wanted.items()):
        line = current.get(extra_id)
        if line is None:
            line = BookingExtra(booking_id=booking.id, extra_id=extra_id, quantity=quantity)
            session.add(line)
        else:
            line.quantity = quantity
        lines.append(line)
    session.flush()
    return lines


def extras_held(session: Session, extra_ids: list[int], start: datetime, end: datetime, *,
                exclude_booking_id: int | None = None) -> dict[int, int]:
    """The most of each extra held by holding bookings at any instant of [start, end)."""
    if not extra_ids:
        return {}
    query = (
        sa.select(BookingExtra.extra_id, BookingExtra.quantity, Booking.starts_at, Booking.ends_at)
        .join(Booking, BookingExtra.booking_id == Booking.id)
        .where(
            BookingExtra.extra_id.in_(extra_ids),
            Booking.status.in_(HOLDING_STATUSES),
            overlaps(Booking.starts_at, Booking.ends_at, start, end),
        )
    )
    if exclude_booking_id is not None:
        query = query.where(Booking.id != exclude_booking_id)
    events: dict[int, list[tuple[datetime, int]]] = {}
    for extra_id, quantity, b_start, b_end in session.execute(query):
        events.setdefault(extra_id, []).extend(
            [(max(b_start, start), quantity), (min(b_end, end), -quantity)]
        )
    peaks: dict[int, int] = {}
    for extra_id, changes in events.items():
        level = peak = 0
        # Ends sort before starts at the same instant: [start, end) ranges touch, not overlap.
        for _when, change in sorted(changes, key=lambda c: (c[0], c[1])):
            level += change
            peak = max(peak, level)
        peaks[extra_id] = peak
    return peaks


def campaign_extras(session: Session, campaign: Campaign) -> list[CampaignExtra]:
    """The extras the campaign lends, oldest first (the order the booking form shows)."""
    return list(session.scalars(
        sa.select(CampaignExtra).where(CampaignExtra.campaign_id == campaign.id)
        .order_by(CampaignExtra.id)
    ))


def extras_available(session: Session, campaign: Campaign, start: datetime,
                     end: datetime) -> list[tuple[CampaignExtra, int]]:
    """Each extra of the campaign with how many are free during the whole of [start, end)."""
    extras = campaign_extras(session, campaign)
    held = extras_held(session, [e.id for e in extras], start, end)
    return [(e, max(e.quantity - held.get(e.id, 0), 0)) for e in extras]


def booking_extras(session: Session, booking: Booking) -> list[BookingExtra]:
    """The extras a booking holds (for receipts and the API)."""
    return list(session.scalars(
        sa.select(BookingExtra).where(BookingExtra.booking_id == booking.id)
        .options(selectinload(BookingExtra.extra)).order_by(BookingExtra.extra_id)
    ))


# ---------------------------------------------------------------------------------------
# What the public sees.


def public_campaigns() -> sa.Select:
    """Published campaigns of approved municipalities."""
    return (
        sa.select(Campaign)
        .join(Organisation, Campaign.organisation_id == Organisation.id)
        .where(Campaign.published.is_(True), Organisation.approved_at.is_not(None))
    )


def public_campaign(session: Session, slug: str) -> Campaign | None:
    return session.scalar(public_campaigns().where(Campaign.slug == slug))


def offered_slots(session: Session, campaign: Campaign) -> list[CampaignSlot]:
    """The campaign's slots that are offered (operator consent given) on published spaces
    of approved organisations, with unit and space loaded."""
    return list(session.scalars(
        sa.select(CampaignSlot)
        .join(Unit, CampaignSlot.unit_id == Unit.id)
        .join(Space, Unit.space_id == Space.id)
        .join(Organisation, Space.organisation_id == Organisation.id)
        .where(
            CampaignSlot.campaign_id == campaign.id,
            CampaignSlot.operator_consent.is_(True),
            Space.published.is_(True),
            Organisation.approved_at.is_not(None),
        )
        .options(selectinload(CampaignSlot.unit).selectinload(Unit.space))
        .order_by(CampaignSlot.start_date, CampaignSlot.id)
    ))


# ---------------------------------------------------------------------------------------
# Management by the municipality's members.


def municipalities_of(user: User) -> list[Organisation]:
    return user.organisations(OrgKind.MUNICIPALITY) if user.is_authenticated else []


def can_manage(user: User, campaign: Campaign) -> bool:
    return any(o.id == campaign.organisation_id for o in municipalities_of(user))


def campaigns_of(session: Session, organisations: list[Organisation]) -> list[Campaign]:
    ids = [o.id for o in organisations]
    if not ids:
        return []
    return list(session.scalars(
        sa.select(Campaign).where(Campaign.organisation_id.in_(ids))
        .options(selectinload(Campaign.slots), selectinload(Campaign.organisation))
        .order_by(Campaign.starts_on.desc(), Campaign.id.desc())
    ))


@dataclass
class CampaignData:
    slug: str
    name: str
    name_en: str
    description: str
    description_en: str
    starts_on: date
    ends_on: date
    core_days: list[date]
    published: bool


def require_approved(organisation: Organisation) -> None:
    """Campaigns and their slots are run by municipalities the site admin has approved:
    before that (or once approval is revoked) nothing is created or changed, so that an
    organisation nobody checked files no slot request to an operator."""
    if organisation.approved_at is None:
        raise DomainError("not_approved", field="organisation_id")


def save_campaign(session: Session, user: User, organisation: Organisation,
                  data: CampaignData, campaign: Campaign | None = None) -> Campaign:
    """Creates (campaign None) or updates a campaign of `organisation` (approved)."""
    require_approved(organisation)
    if data.starts_on > data.ends_on:
        raise DomainError("bad_range", field="ends_on")
    for day in data.core_days:
        if not data.starts_on <= day <= data.ends_on:
            raise DomainError("campaign_core_day_outside", field="core_days")
    taken = session.scalar(sa.select(Campaign.id).where(Campaign.slug == data.slug))
    if taken is not None and (campaign is None or taken != campaign.id):
        raise DomainError("campaign_slug_taken", field="slug")
    if campaign is not None:
        outside = [s for s in campaign.slots
                   if s.start_date < data.starts_on or s.end_date > data.ends_on]
        if outside:
            raise DomainError("slot_outside_campaign", field="starts_on")
    new = campaign is None
    if campaign is None:
        campaign = Campaign(organisation_id=organisation.id)
        session.add(campaign)
    campaign.slug = data.slug
    campaign.name = data.name.strip()
    campaign.name_en = data.name_en.strip()
    campaign.description = data.description.strip()
    campaign.description_en = data.description_en.strip()
    campaign.starts_on = data.starts_on
    campaign.ends_on = data.ends_on
    campaign.core_days = sorted(d.isoformat() for d in set(data.core_days))
    campaign.published = data.published
    session.flush()
    record(session, user, "campaign.create" if new else "campaign.update", campaign,
           organisation.id, slug=campaign.slug, published=campaign.published)
    return campaign


def set_published(session: Session, user: User, campaign: Campaign, published: bool) -> None:
    campaign.published = published
    record(session, user, "campaign.publish" if published else "campaign.unpublish", campaign,
           campaign.organisation_id)
    session.flush()


def eligible_units(session: Session, organisation: Organisation) -> list[Unit]:
    """Units a municipality may offer: of its own spaces, or, once it is approved, of the
    published spaces of approved operators (those need the operator's consent). An
    operator's space it has not published is nobody else's business."""
    others = sa.and_(Organisation.kind == OrgKind.OPERATOR,
                     Organisation.approved_at.is_not(None), Space.published.is_(True))
    if organisation.approved_at is None:
        others = sa.false()
    return list(session.scalars(
        sa.select(Unit)
        .join(Space, Unit.space_id == Space.id)
        .join(Organisation, Space.organisation_id == Organisation.id)
        .where(sa.or_(Space.organisation_id == organisation.id, others))
        .options(selectinload(Unit.space).selectinload(Space.organisation))
        .order_by(Space.organisation_id != organisation.id, Space.prefecture_code, Space.id,
                  Unit.id)
    ))


@dataclass
class SlotData:
    unit_id: int
    start_date: date
    end_date: date
    daily_start_min: int
    daily_end_min: int
    seats: int
    price_amount: int | None
    subsidy_cap: int | None
    max_seats_per_company_per_day: int | None
    max_bookings_per_company: int | None
    eligibility: Eligibility


def _slot_bookings(session: Session, slot: CampaignSlot) -> list[Booking]:
    return list(session.scalars(sa.select(Booking).where(
        Booking.campaign_slot_id == slot.id, Booking.status.in_(HOLDING_STATUSES)
    )))


def save_slot(session: Session, user: User, campaign: Campaign, data: SlotData,
              slot: CampaignSlot | None = None) -> CampaignSlot:
    """Creates or updates a slot. A slot on an operator's space waits for that operator's
    consent again whenever its terms change (the operator agreed to other terms).
    Only an approved municipality's (require_approved)."""
    require_approved(campaign.organisation)
    if data.start_date > data.end_date or data.daily_start_min >= data.daily_end_min:
        raise DomainError("bad_range", field="end_date")
    if data.start_date < campaign.starts_on or data.end_date > campaign.ends_on:
        raise DomainError("slot_outside_campaign", field="start_date")
    unit = session.get(Unit, data.unit_id)
    if unit is None or unit.id not in {u.id for u in eligible_units(session, campaign.organisation)}:
        raise DomainError("slot_unit_not_allowed", field="unit_id")
    own = unit.space.organisation_id == campaign.organisation_id
    if slot is not None:
        bookings = _slot_bookings(session, slot)
        if bookings and not _bookings_fit(bookings, data):
            raise DomainError("slot_has_bookings", field="seats",
                              bookings=len(bookings))
    new = slot is None
    if slot is None:
        slot = CampaignSlot(campaign_id=campaign.id)
        session.add(slot)
    terms_changed = new or any(
        getattr(slot, name) != getattr(data, name) for name in data.__dataclass_fields__
    )
    for name in data.__dataclass_fields__:
        setattr(slot, name, getattr(data, name))
    if not own and terms_changed:
        slot.operator_consent = False
    elif own:
        slot.operator_consent = True
    session.flush()
    record(session, user, "campaign_slot.create" if new else "campaign_slot.update", slot,
           campaign.organisation_id, unit=unit.id, seats=data.seats, price=data.price_amount,
           subsidy_cap=data.subsidy_cap)
    return slot


def _bookings_fit(bookings: list[Booking], data: SlotData) -> bool:
    """Whether the slot's holding bookings stay inside the new terms: same unit, dates and
    daily window, and no day with more seats booked through the slot than it offers."""
    per_day: dict[date, int] = {}
    for b in bookings:
        if b.unit_id != data.unit_id:
            return False
        start, end = b.starts_at.astimezone(TOKYO), b.ends_at.astimezone(TOKYO)
        for day in tokyo_days(b.starts_at, b.ends_at):
            if not data.start_date <= day <= data.end_date:
                return False
            per_day[day] = per_day.get(day, 0) + b.seats
        if start.date() == end.date():
            minutes = (start.hour * 60 + start.minute, end.hour * 60 + end.minute)
            if minutes[0] < data.daily_start_min or minutes[1] > data.daily_end_min:
                return False
    # Conservative: seats of every booking touching a day, as if they all overlapped.
    return all(seats <= data.seats for seats in per_day.values())


def delete_slot(session: Session, user: User, slot: CampaignSlot) -> None:
    used = session.scalar(sa.select(sa.func.count()).select_from(Booking)
                          .where(Booking.campaign_slot_id == slot.id))
    if used:
        raise DomainError("slot_has_bookings", bookings=used)
    record(session, user, "campaign_slot.delete", slot, slot.campaign.organisation_id)
    session.delete(slot)
    session.flush()


def pending_consents(session: Session, user: User) -> list[CampaignSlot]:
    """Slots on spaces of the operators `user` belongs to, newest campaigns first."""
    ids = [o.id for o in user.organisations(OrgKind.OPERATOR)]
    if not ids:
        return []
    return list(session.scalars(
        sa.select(CampaignSlot)
        .join(Unit, CampaignSlot.unit_id == Unit.id)
        .join(Space, Unit.space_id == Space.id)
        .join(Campaign, CampaignSlot.campaign_id == Campaign.id)
        .where(Space.organisation_id.in_(ids), Campaign.organisation_id.not_in(ids))
        .options(selectinload(CampaignSlot.campaign).selectinload(Campaign.organisation),
                 selectinload(CampaignSlot.unit).selectinload(Unit.space))
        .order_by(CampaignSlot.operator_consent, Campaign.starts_on.desc(), CampaignSlot.id)
    ))


def set_consent(session: Session, user: User, slot: CampaignSlot, consent: bool) -> None:
    """The operator owning the slot's space agrees (or no longer agrees) to the slot.
    Withdrawing keeps bookings already made; it only stops new ones."""
    operator_id = slot.unit.space.organisation_id
    if operator_id not in {o.id for o in user.organisations(OrgKind.OPERATOR)}:
        raise DomainError("not_yours")
    slot.operator_consent = consent
    record(session, user, "campaign_slot.consent" if consent else "campaign_slot.withdraw",
           slot, operator_id, campaign=slot.campaign_id)
    session.flush()


@dataclass
class ExtraData:
    name: str
    name_en: str
    description: str
    description_en: str
    quantity: int
    max_per_booking: int


def save_extra(session: Session, user: User, campaign: Campaign, data: ExtraData,
               extra: CampaignExtra | None = None) -> CampaignExtra:
    clash = session.scalar(sa.select(CampaignExtra.id).where(
        CampaignExtra.campaign_id == campaign.id, CampaignExtra.name == data.name.strip()
    ))
    if clash is not None and (extra is None or clash != extra.id):
        raise DomainError("extra_name_taken", field="name")
    if extra is not None:
        # Fewer than are lent out at some instant ahead would strand a booking.
        held = extras_held(session, [extra.id], clock.now(), datetime(9000, 1, 1, tzinfo=UTC))
        if data.quantity < held.get(extra.id, 0):
            raise DomainError("slot_has_bookings", field="quantity")
    new = extra is None
    if extra is None:
        extra = CampaignExtra(campaign_id=campaign.id)
        session.add(extra)
    extra.name = data.name.strip()
    extra.name_en = data.name_en.strip()
    extra.description = data.description.strip()
    extra.description_en = data.description_en.strip()
    extra.quantity = data.quantity
    extra.max_per_booking = data.max_per_booking
    session.flush()
    record(session, user, "campaign_extra.create" if new else "campaign_extra.update", extra,
           campaign.organisation_id, quantity=data.quantity)
    return extra


def delete_extra(session: Session, user: User, extra: CampaignExtra) -> None:
    used = session.scalar(sa.select(sa.func.count()).select_from(BookingExtra)
                          .where(BookingExtra.extra_id == extra.id))
    if used:
        raise DomainError("extra_in_use")
    record(session, user, "campaign_extra.delete", extra, extra.campaign.organisation_id)
    session.delete(extra)
    session.flush()


# ---------------------------------------------------------------------------------------
# Registration of participation in Telework Days (companies).


def register_participation(session: Session, user: User, company: Organisation,
                           category: TeleworkCategory | None, core_day_staff: int | None) -> None:
    """A company declares how it takes part (実施団体 / 特別協力団体) and how many of its
    staff telework on the core day. Supporter organisations are 応援団体 by their kind."""
    if company.kind != OrgKind.COMPANY or company.id not in {o.id for o in user.organisations()}:
        raise DomainError("no_company")
    if core_day_staff is not None and core_day_staff < 0:
        raise DomainError("bad_seats", field="core_day_staff")
    company.telework_category = category
    company.core_day_staff = core_day_staff
    record(session, user, "participation.register", company, company.id,
           category=category.value if category else None, core_day_staff=core_day_staff)
    session.flush()


def recheck_extras(session: Session, booking: Booking) -> None:
    """After a change of a booking's times or seats: its extras must still be there."""
    current = {line.extra_id: line.quantity for line in session.scalars(
        sa.select(BookingExtra).where(BookingExtra.booking_id == booking.id))}
    if current:
        reserve_extras(session, booking, current)
