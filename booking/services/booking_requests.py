"""What a company asks for, in one shape for the booking form and the JSON API.

Both edges parse their input into a `BookingRequest` (or `ChangeRequest`) and call `place`
(or `change`). Everything between the request and booking.services.reservations happens
here, once: which unit, which campaign slot (`resolve_slot`), which periods (`periods_for`:
ranges, closed days, nights, single days, hours). So the same request gets the same
price and the same refusal whichever way it came.

A cheaper campaign slot is never left unused by accident: a request that names no slot
gets the cheapest slot offered on that unit for all its days to a company the slot
admits (its prefecture rule); its seats, hours and per-company counts are decided under
the booking's locks, and when they refuse, the booking is made at the unit's own price
instead (the company asked for a seat, not for the campaign).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager, selectinload

from booking import clock
from booking.formatting import hhmm
from booking.models import (
    Booking,
    Campaign,
    CampaignExtra,
    CampaignSlot,
    Eligibility,
    PricePer,
    Space,
    Unit,
    User,
)
from booking.services import access, campaign_extras, reservations
from booking.services.availability import (
    TOKYO,
    at,
    regular_window,
    slot_is_offered,
    slot_window,
    tokyo_days,
)
from booking.services.errors import DomainError


@dataclass(frozen=True)
class BookingRequest:
    """A booking as asked for. When: exactly one of `first_date` (with `last_date` for a
    range of days, or `nights` for a stay), `dates` (a set of days), or `start`/`end`."""

    unit_id: int
    first_date: date | None = None
    last_date: date | None = None
    dates: tuple[date, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    nights: int | None = None
    seats: int = 1
    attendees: tuple[str, ...] = ()
    note: str = ""
    slot_id: int | None = None  # the booking page names a slot by id
    campaign: str | None = None  # the API names it by its campaign's slug
    extras: Mapping[int, int] = field(default_factory=dict)

    @property
    def names_slot(self) -> bool:
        return self.slot_id is not None or bool(self.campaign)


@dataclass(frozen=True)
class ChangeRequest:
    """New times, seats or attendees for a booking (None: keep what it has)."""

    first_date: date | None = None
    start: datetime | None = None
    end: datetime | None = None
    nights: int | None = None
    seats: int | None = None
    attendees: tuple[str, ...] | None = None


# --------------------------------------------------------------------------- loading


def bookable_unit(session: Session, unit_id: int | None) -> Unit:
    """The unit, when the public may book it (its space public); "unavailable" otherwise.

    Read with whether any campaign slot is offered on it from today on (unit.has_offers),
    so that a unit without campaigns costs no query for them."""
    row = session.execute(_bookable_statement(),
                          {"unit_id": unit_id or 0, "today": clock.today()}).unique().first()
    if row is None:
        raise DomainError("unavailable")
    unit, has_offers = row
    unit.has_offers = has_offers  # type: ignore[attr-defined]  # a fact of this load only
    return unit


@cache
def _bookable_statement() -> sa.Select:
    """bookable_unit's one statement (the unit `:unit_id`, its space, operator and opening
    hours joined, and whether a slot is offered on it from `:today` on), built once:
    building it took longer than running it."""
    offered = (sa.select(CampaignSlot.id)
               .where(CampaignSlot.unit_id == Unit.id, slot_is_offered(),
                      # ~CampaignSlot.ended(today), with today bound at each execution
                      # (the hybrid wants a date, not a bind parameter)
                      CampaignSlot.end_date >= sa.bindparam("today", type_=sa.Date))
               .exists())
    return (sa.select(Unit, offered).join(Unit.space)
            .where(Unit.id == sa.bindparam("unit_id"), Space.is_public)
            .options(contains_eager(Unit.space).joinedload(Space.opening_hours),
                     contains_eager(Unit.space).joinedload(Space.organisation)))


def named_slot(session: Session, unit: Unit, slot_id: int | None) -> CampaignSlot | None:
    """The slot the booking page was opened for (its own link), if it is on this unit."""
    if not slot_id:
        return None
    slot = session.get(CampaignSlot, slot_id)
    if slot is None or slot.unit_id != unit.id:
        raise DomainError("campaign_closed", field="first_date")
    return slot


# --------------------------------------------------------------------------- when


def days_of(unit: Unit, request: BookingRequest | ChangeRequest) -> list[date]:
    """The Tokyo days a request asks for (the days a slot must offer)."""
    if request.start is not None and request.end is not None:
        return tokyo_days(request.start, request.end)
    dates = getattr(request, "dates", ())
    if dates:
        return sorted(set(dates))
    first = request.first_date
    if first is None:
        raise DomainError("bad_dates")
    if unit.price_per == PricePer.NIGHT:
        return [first + timedelta(days=i) for i in range(max(1, request.nights or 1))]
    last = getattr(request, "last_date", None) or first
    if last < first or (last - first).days >= reservations.MAX_PERIODS:
        raise DomainError("bad_dates")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def periods_for(unit: Unit, slot: CampaignSlot | None,
                request: BookingRequest | ChangeRequest) -> list[reservations.Period]:
    """The periods a request books, one booking each (all or none).

    Explicit times as given; a unit let by the night: one stay from the first day (a set
    or range of days is refused: "whole_stays"); one day: its opening hours (or the slot's
    window), today from now on once they have begun (a drop-in, reservations.day_period);
    several days: each day that is open, closed days left out ("closed" when none is
    open)."""
    if request.start is not None and request.end is not None:
        return [(request.start, request.end)]
    several = bool(getattr(request, "dates", ())) or bool(getattr(request, "last_date", None))
    if unit.price_per == PricePer.NIGHT:
        if several:
            raise DomainError("whole_stays", field="first_date",
                              checkin=hhmm(unit.checkin_min), checkout=hhmm(unit.checkout_min))
        if request.first_date is None:
            raise DomainError("bad_dates")
        return [reservations.nights_period(unit, request.first_date, request.nights or 1)]
    days = days_of(unit, request)
    if len(days) > reservations.MAX_PERIODS:
        raise DomainError("bad_dates")
    if len(days) == 1:
        return [reservations.day_period(unit, days[0], slot)]
    open_days = [d for d in days
                 if (slot_window(slot, d) if slot is not None else regular_window(unit, d))]
    if not open_days:
        raise DomainError("closed")
    return [reservations.day_period(unit, d, slot) for d in open_days]


# --------------------------------------------------------------------------- which slot


def _offered_on(unit: Unit, days: Sequence[date]) -> sa.Select:
    """Slots offered on this unit for every one of `days` (an ended slot offers nothing)."""
    return (sa.select(CampaignSlot)
            .where(CampaignSlot.unit_id == unit.id, slot_is_offered(),
                   ~CampaignSlot.ended(clock.today()),
                   CampaignSlot.start_date <= min(days), CampaignSlot.end_date >= max(days))
            .options(selectinload(CampaignSlot.campaign))
            .order_by(CampaignSlot.id))


def _admits(slot: CampaignSlot, user: User, unit: Unit) -> bool:
    """The slot's fixed rule about who may book it (the counting rules are decided under
    the booking's locks)."""
    company = user.company
    return company is not None and not (
        slot.eligibility == Eligibility.OUTSIDE_PREFECTURE
        and company.prefecture_code == unit.space.prefecture_code)


def _not_offered(session: Session, unit: Unit, request: BookingRequest) -> DomainError:
    """Why the slot named is not offered for the request's days: "campaign_closed", said
    as "its offer has ended" when every slot it names on this unit is history."""
    named = sa.select(CampaignSlot).where(CampaignSlot.unit_id == unit.id)
    if request.slot_id is not None:
        named = named.where(CampaignSlot.id == request.slot_id)
    else:
        named = named.join(Campaign, CampaignSlot.campaign_id == Campaign.id).where(
            Campaign.slug == request.campaign)
    slots = list(session.scalars(named))
    ended = bool(slots) and all(slot.ended() for slot in slots)
    return DomainError("campaign_closed", field="first_date",
                       variant="ended" if ended else None)


def resolve_slot(session: Session, unit: Unit, user: User,
                 request: BookingRequest) -> tuple[CampaignSlot | None, bool]:
    """(the campaign slot the request books through, whether it was chosen for the user).

    Named (by id or campaign slug): that slot, when it is offered on this unit for the
    request's days, else "campaign_closed". Not named: the cheapest slot offered for all
    the days that admits the user's company and costs less than the unit, or None."""
    days = days_of(unit, request)
    if request.names_slot:
        query = _offered_on(unit, days)
        if request.slot_id is not None:
            query = query.where(CampaignSlot.id == request.slot_id)
        else:
            query = query.join(Campaign, CampaignSlot.campaign_id == Campaign.id).where(
                Campaign.slug == request.campaign)
        slot = session.scalars(query.limit(1)).first()
        if slot is None:
            raise _not_offered(session, unit, request)
        return slot, False
    if not getattr(unit, "has_offers", True):
        return None, False
    cheaper = [s for s in session.scalars(_offered_on(unit, days))
               if s.price_for(unit) < unit.price_amount and _admits(s, user, unit)]
    if not cheaper:
        return None, False
    return min(cheaper, key=lambda s: (s.price_for(unit), s.id)), True


# --------------------------------------------------------------------------- deciding


def place(session: Session, user: User, request: BookingRequest, *,
          locale: str = "ja", idempotency: reservations.Idempotency | None = None,
          unit: Unit | None = None) -> list[Booking]:
    """Book what `request` asks for (see the module docstring); DomainError otherwise.
    `unit`: the request's unit as bookable_unit() loaded it already (the booking page)."""
    user_id = user.id
    if request.extras and any(request.extras.values()) and not request.names_slot:
        # Extras are lent by the campaign the booking names (API.md), never by one chosen.
        reservations.replay_if_seen(session, user_id, idempotency)
        raise DomainError("extra_not_offered")
    if unit is None and not request.names_slot:
        # The unit is read once, by its lock, when no campaign slot can be chosen for it
        # (none on it that has not ended, asked by the lock's statement); else (rolled
        # back, nothing written) the slot is chosen first, below. Its refusals and
        # replays are book()'s, as below.
        try:
            return reservations.book(
                session, request.unit_id or 0, user,
                lambda locked: periods_for(locked, None, request), request.seats,
                attendees=request.attendees, note=request.note, locale=locale,
                idempotency=idempotency, extras=dict(request.extras) or None)
        except reservations.SlotMayApply:
            pass
    try:
        if unit is None or unit.id != request.unit_id:
            unit = bookable_unit(session, request.unit_id)
        slot, chosen = resolve_slot(session, unit, user, request)
    except DomainError:
        # A retry gets the first answer even when the request would now mean something
        # else (a drop-in retried after closing, a slot's last day retried after
        # midnight). Asked on refusal only: a booking that goes through reads no key.
        reservations.replay_if_seen(session, user_id, idempotency)
        raise
    bookable = unit

    def book(slot: CampaignSlot | None) -> list[Booking]:
        try:
            periods = periods_for(bookable, slot, request)
        except DomainError:
            reservations.replay_if_seen(session, user_id, idempotency)
            raise
        return reservations.book(
            session, bookable, user, periods, request.seats, slot=slot,
            attendees=request.attendees, note=request.note, locale=locale,
            idempotency=idempotency, extras=dict(request.extras) or None)

    if not chosen:
        return book(slot)
    try:
        return book(slot)
    except DomainError as refused:
        if refused.code == "busy":  # waited long enough already
            raise
        # The slot the user did not ask for cannot take it (its seats, hours or limits):
        # the booking as asked, at the unit's price; its refusal, if any, is the plain one.
        return book(None)


def change(session: Session, user: User, booking: Booking, request: ChangeRequest,
           *, confirmed: bool = True) -> Booking | reservations.Period:
    """Change the booking as asked. Unconfirmed (the page's first step): check what can be
    checked without deciding and return the new period, so that a change that cannot be
    made is refused before the user confirms it."""
    access.require(user, "manage", booking)
    unit = booking.unit
    if unit.price_per == PricePer.NIGHT and request.nights is None:
        # A stay moves whole: as many nights as booked, from the new check-in day.
        request = replace(request, nights=reservations.length_of(
            unit, booking.starts_at, booking.ends_at))
    period = None
    if request.first_date is not None or request.start is not None:
        period = periods_for(unit, booking.campaign_slot, request)[0]
    if not confirmed:
        seats = booking.seats if request.seats is None else request.seats
        attendees = (reservations.clean_attendees(request.attendees)
                     if request.attendees is not None else [a.email for a in booking.attendees])
        reservations.validate_shape(unit, [period or (booking.starts_at, booking.ends_at)],
                                    seats, attendees)
        return period or (booking.starts_at, booking.ends_at)
    return reservations.change(session, booking, user, seats=request.seats, period=period,
                               attendees=request.attendees)


# --------------------------------------------------------------------------- what to show


def offers(session: Session, unit: Unit, user: User) -> list[CampaignSlot]:
    """Campaign slots on this unit, from today on, that a plain booking on their days
    gets at their lower price (resolve_slot chooses them): said on the booking page."""
    if not getattr(unit, "has_offers", True):
        return []
    today = clock.today()
    return [s for s in session.scalars(
                sa.select(CampaignSlot)
                .where(CampaignSlot.unit_id == unit.id, slot_is_offered(),
                       ~CampaignSlot.ended(today))
                .options(selectinload(CampaignSlot.campaign))
                .order_by(CampaignSlot.start_date, CampaignSlot.id))
            if s.price_for(unit) < unit.price_amount and _admits(s, user, unit)]


def drop_in_hours(unit: Unit, slot: CampaignSlot | None, starts_at: datetime
                  ) -> tuple[int, int] | None:
    """(start, end) in minutes after today's midnight (1440: the next midnight) of a
    booking of a day unit for today that starts after the day's hours have begun (a
    drop-in, reservations.day_period), for the booking form to say "today from … to …,
    at a full day's price"; None for any other booking."""
    day = starts_at.astimezone(TOKYO).date()
    if unit.price_per != PricePer.DAY or day != clock.today():
        return None
    window = slot_window(slot, day, unit) if slot is not None else regular_window(unit, day)
    if window is None or starts_at <= window[0]:
        return None
    midnight = at(day, 0)
    return ((starts_at - midnight) // timedelta(minutes=1),
            (window[1] - midnight) // timedelta(minutes=1))


def extras_left(session: Session, slot: CampaignSlot, periods: Sequence[reservations.Period]
                ) -> list[tuple[CampaignExtra, int]]:
    """(extra, how many are free) for the periods asked for; before a date is chosen, for
    the rest of the slot's dates."""
    if periods:
        start, end = min(p[0] for p in periods), max(p[1] for p in periods)
    else:
        first = slot.bookable_from(clock.today()) or clock.today()  # ended: just today
        start = at(first, 0)
        end = at(max(slot.end_date, first) + timedelta(days=1), 0)
    return list(campaign_extras.extras_available(session, slot.campaign, start, end))
