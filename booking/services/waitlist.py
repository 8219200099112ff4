"""The waitlist of a full unit: a company waits in line for seats of one period (a day,
hours or a stay); when seats free up, those first in line are offered them by mail, held
for a limited time; nothing is booked until the company confirms.

Public functions:

    join(session, user, unit, period, seats, *, slot=None, note="", locale="ja")
        -> WaitlistEntry                       (join_request: from a BookingRequest;
                                                join_asked: one naming its unit by id)
        In line for `seats` of `unit` during `period` (one period per entry). Refused when
        the seats are free now ("waitlist_seats_free": book instead), for a period the
        company already waits for ("waitlist_duplicate"), in the past, on a members-only
        unit without the right, or closed / outside the hours (the booking's refusals),
        for more seats than the unit has then ("bad_seats": never to be offered).
    leave(session, user, entry_id) -> WaitlistEntry
        Out of the line (an offer held is declined first, and passed on).
    offer_freed(session, unit_id, start, end) -> list[WaitlistEntry]
        Seats of the unit may have freed during [start, end): offer them. Called in the
        transaction that freed them (cancel, change, capacity raised, closure or override
        removed, an offer expired or declined, a no-show released).
    expire_offers(session) -> int
        The worker's scheduled job: offers whose time is up become expired, their seats go
        to the next in line. Returns how many offers expired.
    confirm(session, user, entry_id, *, idempotency=None) -> Booking
        The company takes the offer: the held booking becomes confirmed (the normal
        confirmation mail with its .ics). Refused once the offer has expired. With an
        idempotency key, a retry gets the first answer again (as reservations.book).
    decline(session, user, entry_id) -> WaitlistEntry
        The company lets the offer go at once: its seats go to the next in line.
    entries_of(session, user) / find(session, user, entry_id)
        The user's companies' entries; one of them ("not_found" for anyone else's).

An offer IS a booking of status `offered` (HOLDING_STATUSES): it holds its seats in
availability, the unit's loads and search like any booking, and it is made under the
unit's lock after the same availability check as a booking (reservations._lock_unit,
_check_availability), so an offer and a direct booking can never both take the last seat.
Every status change carries the status it expects in its UPDATE's WHERE (and an expiry
the deadline too), so a confirmation racing the expiry job gives one answer only.

The line's rule ("who is offered"): first come, first served among the entries that fit.
Freed seats are offered to each waiting entry in the order they joined whose whole request
(its seats, its period) is now free; an entry asking for more than is free is skipped and
keeps its place for the next time seats free up. So one big request never blocks the smaller
ones behind it (its price: it may wait longer while smaller ones are served).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.db import campaign_company_lock
from booking.formatting import local_period
from booking.models import (
    Booking,
    BookingStatus,
    CampaignSlot,
    CapacityOverride,
    IdempotencyRecord,
    Membership,
    OutboxMessage,
    PricePer,
    Role,
    Unit,
    User,
    WaitlistEntry,
    WaitlistStatus,
)
from booking.services import access, audit, booking_requests, pricing, reservations
from booking.services.availability import tokyo_days
from booking.services.booking_requests import BookingRequest
from booking.services.calendars import public_url
from booking.services.campaign_rules import check_rules
from booking.services.errors import DomainError

KIND_OFFER = "waitlist_offer"
DEFAULT_HOLD_MINUTES = 120  # config WAITLIST_HOLD_MINUTES: see booking/config.py
# Entries still in line (an entry offered seats is still the company's request).
OPEN = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


def hold_time() -> timedelta:
    """How long an offer is held for the company (never past the booking's start)."""
    minutes = (current_app.config.get("WAITLIST_HOLD_MINUTES", DEFAULT_HOLD_MINUTES)
               if has_app_context() else DEFAULT_HOLD_MINUTES)
    return timedelta(minutes=max(1, int(minutes)))


def offer_url(entry: WaitlistEntry) -> str:
    return f"{public_url()}/waitlist/{entry.id}"


# --------------------------------------------------------------------------- reading


def _manages(user: User, entry: WaitlistEntry) -> bool:
    """As for a booking (access._manages_booking): the person who joined, or an admin of
    their company (a company's members see the entries they made themselves)."""
    return entry.user_id == user.id or access.is_owner(user, entry.company_id)


def entries_of(session: Session, user: User) -> list[WaitlistEntry]:
    """The entries the user manages (_manages), those still in line first (soonest
    first), then the rest (newest first)."""
    administered = sa.select(Membership.organisation_id).where(
        Membership.user_id == user.id, Membership.role == Role.OWNER)
    rows = list(session.scalars(
        sa.select(WaitlistEntry).where(sa.or_(WaitlistEntry.user_id == user.id,
                                              WaitlistEntry.company_id.in_(administered)))
        .options(selectinload(WaitlistEntry.unit).selectinload(Unit.space),
                 selectinload(WaitlistEntry.offer_booking))
        .order_by(WaitlistEntry.starts_at.desc(), WaitlistEntry.id.desc()).limit(500)))
    open_ = sorted((e for e in rows if e.status in OPEN), key=lambda e: (e.starts_at, e.id))
    return open_ + [e for e in rows if e.status not in OPEN]


def find(session: Session, user: User, entry_id: int) -> WaitlistEntry:
    """The entry when `user` manages it (_manages); "not_found" otherwise (a stranger
    cannot tell whether it exists)."""
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None or not _manages(user, entry):
        raise DomainError("not_found")
    return entry


def entry_of_offer(session: Session, user: User, booking: Booking) -> WaitlistEntry | None:
    """The entry whose offer `booking` is (or was), when `user` manages it."""
    if booking.status not in (BookingStatus.OFFERED, BookingStatus.EXPIRED):
        return None
    entry = session.scalar(sa.select(WaitlistEntry).where(
        WaitlistEntry.offer_booking_id == booking.id).limit(1))
    return entry if entry is not None and _manages(user, entry) else None


def is_live(entry: WaitlistEntry, now: datetime | None = None) -> bool:
    """An offer the company can still confirm."""
    moment = clock.now() if now is None else now
    return (entry.status == WaitlistStatus.OFFERED and entry.offer_expires_at is not None
            and moment < entry.offer_expires_at)


def price_of(entry: WaitlistEntry) -> pricing.Breakdown | None:
    """What the offered booking costs (tax included), as its page shows it."""
    booking = entry.offer_booking
    return pricing.of_booking(booking) if booking is not None else None


# --------------------------------------------------------------------------- join


def _periods_overlap(query: sa.Select, start: datetime, end: datetime) -> sa.Select:
    return query.where(WaitlistEntry.starts_at < end, WaitlistEntry.ends_at > start)


def join(session: Session, user: User, unit: Unit, period: reservations.Period, seats: int,
         *, slot: CampaignSlot | None = None, note: str = "", locale: str = "ja"
         ) -> WaitlistEntry:
    """Put the user's company in line for `seats` of `unit` during `period`."""
    reservations.validate_shape(unit, [period], seats, [])
    company = user.company
    if company is None:
        raise DomainError("no_company")
    unit_id, company_id, user_id = unit.id, company.id, user.id
    slot_id = slot.id if slot is not None else None
    campaign_id = slot.campaign_id if slot is not None else None
    start, end = period
    lock = campaign_company_lock(campaign_id, company_id) if campaign_id is not None else None

    def work() -> WaitlistEntry:
        locked = reservations._lock_unit(session, unit_id)
        reservations._bookable(locked)
        the_slot = (reservations._usable_slot(session, slot_id, campaign_id, locked)
                    if slot_id is not None and campaign_id is not None else None)
        reservations._check_times(locked, [period])
        member = the_slot is None and reservations._is_member(session, locked, company_id,
                                                              user.email)
        try:
            reservations._check_availability(session, locked, the_slot, [period], seats,
                                             member=member)
        except DomainError as refused:
            if refused.code != "not_enough_seats":
                raise  # closed, outside the hours, members only: no line to wait in
        else:
            raise DomainError("waitlist_seats_free")
        most = _most_seats(session, locked, start, end)
        if seats > most:  # more than the unit has then: no cancellation could free them
            raise DomainError("bad_seats", minimum=1, maximum=most)
        if the_slot is not None:
            check_rules(session, the_slot, company, start, end, seats)
        twice = session.scalar(_periods_overlap(
            sa.select(WaitlistEntry.id).where(
                WaitlistEntry.unit_id == unit_id, WaitlistEntry.company_id == company_id,
                WaitlistEntry.status.in_(OPEN)), start, end).limit(1))
        if twice is not None:
            raise DomainError("waitlist_duplicate")
        entry = WaitlistEntry(unit_id=unit_id, company_id=company_id, user_id=user_id,
                              campaign_slot_id=slot_id, starts_at=start, ends_at=end,
                              seats=seats, status=WaitlistStatus.WAITING,
                              locale=locale if locale in ("ja", "en") else "ja",
                              note=(note or "")[:500], created_at=clock.now())
        session.add(entry)
        session.flush()
        audit.record(session, user, "waitlist.join", entry, company_id, unit_id=unit_id,
                     start=start.isoformat(), seats=seats)
        return entry

    return reservations._decide(session, work, lock)


def _most_seats(session: Session, unit: Unit, start: datetime, end: datetime) -> int:
    """The most seats the unit has on the Tokyo days of [start, end): its capacity, or
    more on a day whose override says so (only those days' overrides are read)."""
    most_override = session.scalar(
        sa.select(sa.func.max(CapacityOverride.capacity)).where(
            CapacityOverride.unit_id == unit.id,
            CapacityOverride.day.in_(tokyo_days(start, end))))
    return max(unit.capacity, most_override or 0)


def join_request(session: Session, user: User, unit: Unit, slot: CampaignSlot | None,
                 request: BookingRequest, *, locale: str = "ja") -> WaitlistEntry:
    """join() for what the booking form asked (its one period: "waitlist_one_period"
    for a range of days; the form's seats and note)."""
    periods = booking_requests.periods_for(unit, slot, request)
    if len(periods) != 1:
        raise DomainError("waitlist_one_period", field="last_date")
    return join(session, user, unit, periods[0], request.seats, slot=slot, note=request.note,
                locale=locale)


def join_asked(session: Session, user: User, request: BookingRequest, *, locale: str = "ja"
               ) -> WaitlistEntry:
    """join_request for a request that names its unit by id and its campaign, if any, by
    slot id or slug (the API): the unit as the public may book it ("unavailable"), the
    slot it names offered on its days ("campaign_closed"). A slot is never chosen for
    the company here: the line is for what it asked."""
    unit = booking_requests.bookable_unit(session, request.unit_id)
    slot = (booking_requests.resolve_slot(session, unit, user, request)[0]
            if request.names_slot else None)
    return join_request(session, user, unit, slot, request, locale=locale)


# --------------------------------------------------------------------------- offer


def offer_freed(session: Session, unit_id: int, start: datetime, end: datetime
                ) -> list[WaitlistEntry]:
    """Offer seats of `unit_id` that may have freed during [start, end) to the line (see
    the module's rule). Runs in the caller's transaction, under the unit's lock (taken
    here if the caller has not: the same lock a booking takes), after the change that
    freed the seats is flushed. Returns the entries offered."""
    now = clock.now()
    if end <= now:
        return []
    session.flush()
    waiting = list(session.scalars(_periods_overlap(
        sa.select(WaitlistEntry).where(WaitlistEntry.unit_id == unit_id,
                                       WaitlistEntry.status == WaitlistStatus.WAITING),
        start, end).order_by(WaitlistEntry.created_at, WaitlistEntry.id)))
    if not waiting:
        return []
    unit = reservations._lock_unit(session, unit_id)
    offered = []
    for entry in waiting:
        session.refresh(entry)  # as the lock holder sees it
        if entry.status != WaitlistStatus.WAITING:
            continue
        if entry.ends_at <= now:
            _set_status(session, entry, WaitlistStatus.WAITING, WaitlistStatus.LEFT)
            continue
        if _offer(session, unit, entry, now):
            offered.append(entry)
    return offered


def offer_unit(session: Session, unit_id: int) -> list[WaitlistEntry]:
    """offer_freed for everything ahead on the unit (its capacity was raised)."""
    now = clock.now()
    return offer_freed(session, unit_id, now, now + timedelta(days=3660))


def _set_status(session: Session, entry: WaitlistEntry, expected: WaitlistStatus,
                new: WaitlistStatus, *, where: Sequence[sa.ColumnElement[bool]] = (),
                **values) -> bool:
    """Move the entry from `expected` to `new` in one UPDATE guarded by `expected` (and
    `where`); False when another transaction moved it first (nothing written)."""
    done = session.execute(
        sa.update(WaitlistEntry)
        .where(WaitlistEntry.id == entry.id, WaitlistEntry.status == expected, *where)
        .values(status=new, updated_at=clock.now(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
    session.refresh(entry)
    return done == 1


def _rest_of(unit: Unit, start: datetime, end: datetime, now: datetime
             ) -> reservations.Period | None:
    """What a period still offers at `now`: all of it before it begins; once begun (a
    no-show's seat released during the day), the rest of it from the start a booking
    made now gets (reservations.first_start: a day's drop-in, an hourly unit's next
    hour), as the booking form would give it; a stay, never."""
    if start > now:
        return start, end
    if unit.price_per == PricePer.NIGHT:
        return None
    step = reservations.HOUR_STEP if unit.price_per == PricePer.HOUR else None
    rest = reservations.first_start(now, start, step)
    return (rest, end) if rest < end else None


def _offer(session: Session, unit: Unit, entry: WaitlistEntry, now: datetime) -> bool:
    """Hold the entry's seats as an offered booking, if they are free now for it."""
    period = _rest_of(unit, entry.starts_at, entry.ends_at, now)
    if period is None:
        return False
    slot = None
    try:
        if entry.campaign_slot_id is not None and entry.campaign_slot is not None:
            slot = reservations._usable_slot(session, entry.campaign_slot_id,
                                             entry.campaign_slot.campaign_id, unit)
        reservations._check_times(unit, [period])
        member = slot is None and reservations._is_member(
            session, unit, entry.company_id, entry.user.email if entry.user else None)
        reservations._check_availability(session, unit, slot, [period], entry.seats,
                                         member=member)
    except DomainError:
        return False  # does not fit (yet): keeps its place in line
    start, end = period
    price, subsidy = reservations._price(unit, slot, start, end, entry.seats)
    booking = Booking(
        reference=reservations.new_reference(), unit_id=unit.id, company_id=entry.company_id,
        user_id=entry.user_id, campaign_slot_id=slot.id if slot is not None else None,
        starts_at=start, ends_at=end, seats=entry.seats,
        price_amount=price, subsidy_amount=subsidy, status=BookingStatus.OFFERED, sequence=0,
        locale=entry.locale, note=entry.note, created_at=now)
    session.add(booking)
    session.flush()
    # Held for hold_time(), and never past the start: a booking cannot begin before its
    # company has said yes. A period begun already (a released seat) is held at most
    # until its end; confirming it then books the rest of it from then on (confirm).
    expires = min(now + hold_time(), entry.starts_at if entry.starts_at > now else end)
    if not _set_status(session, entry, WaitlistStatus.WAITING, WaitlistStatus.OFFERED,
                       offer_booking_id=booking.id, offered_at=now, offer_expires_at=expires):
        session.delete(booking)
        session.flush()
        return False
    reservations._bump_unit(session, unit.id)
    audit.record(session, None, "waitlist.offer", entry, unit.space.organisation_id,
                 reference=booking.reference, seats=entry.seats, expires=expires.isoformat())
    _mail_offer(session, entry, booking)
    return True


def _recipient(entry: WaitlistEntry) -> tuple[str, str, str] | None:
    """(address, name, language) the offer is mailed to: the person who joined, or while
    they are gone, the company's first member."""
    user = entry.user
    if user is None:
        members = sorted(entry.company.memberships, key=lambda m: m.id)
        user = members[0].user if members else None
    if user is None:
        return None
    return user.email, user.name, entry.locale or user.locale


def _mail_offer(session: Session, entry: WaitlistEntry, booking: Booking) -> OutboxMessage | None:
    from booking.services import mail

    who = _recipient(entry)
    if who is None:
        return None
    email, name, loc = who
    loc = loc if loc in ("ja", "en") else "ja"
    space = entry.unit.space

    def subject() -> str:
        return _("【空き待ち】%(space)s %(when)s に空きが出ました",
                 space=space.display_name(loc),
                 when=local_period(entry.starts_at, entry.ends_at, loc))

    def context() -> dict:
        return {"entry": entry, "booking": booking, "unit": entry.unit, "space": space,
                "when": local_period(entry.starts_at, entry.ends_at, loc),
                "breakdown": pricing.of_booking(booking), "url": offer_url(entry),
                "expires": entry.offer_expires_at, "recipient_name": name}

    return mail.enqueue_notice(session, KIND_OFFER, email, loc, "waitlist/mail/offer",
                               subject, context, booking_id=booking.id)


# --------------------------------------------------------------------------- expire, decline


def _let_go(session: Session, entry: WaitlistEntry, *, due_by: datetime | None = None,
            new: WaitlistStatus = WaitlistStatus.EXPIRED) -> bool:
    """The offer ends without a booking: the entry becomes `new`, its held booking
    expired. `due_by`: only if the offer's time was up by then (the expiry job). Under
    the unit's lock. False when the entry was no longer offered (confirmed meanwhile)."""
    where = [WaitlistEntry.offer_expires_at <= due_by] if due_by is not None else []
    if not _set_status(session, entry, WaitlistStatus.OFFERED, new, where=where):
        return False
    if entry.offer_booking_id is not None:
        held = reservations._reread(session, entry.offer_booking_id)
        if held.status == BookingStatus.OFFERED:
            reservations._transition(session, held, "expire_offer")
    return True


def expire_offers(session: Session) -> int:
    """Expire every offer whose time is up (offered -> expired, with the deadline in the
    WHERE) and offer the seats to the next in line; entries whose period is over leave
    the line. The worker's scheduled job: call it with a session holding no changes (it
    decides in a transaction of its own, booking.db.begin_write, and flushes; the caller
    commits). Returns how many offers expired."""
    now = clock.now()
    due = session.execute(
        sa.select(WaitlistEntry.id, WaitlistEntry.unit_id)
        .where(WaitlistEntry.status == WaitlistStatus.OFFERED,
               WaitlistEntry.offer_expires_at <= now)
        .order_by(WaitlistEntry.unit_id, WaitlistEntry.id)).all()
    stale = session.scalar(sa.select(WaitlistEntry.id).where(
        WaitlistEntry.status == WaitlistStatus.WAITING, WaitlistEntry.ends_at <= now).limit(1))
    if not due and stale is None:
        return 0  # nothing to do: no write lock taken

    def work() -> int:
        expired = 0
        by_unit: dict[int, list[int]] = {}
        for entry_id, unit_id in due:
            by_unit.setdefault(unit_id, []).append(entry_id)
        for unit_id in sorted(by_unit):  # units locked in id order
            reservations._lock_unit(session, unit_id)
            freed = []
            for entry_id in by_unit[unit_id]:
                entry = session.get(WaitlistEntry, entry_id, populate_existing=True)
                if entry is not None and _let_go(session, entry, due_by=now):
                    expired += 1
                    freed.append((entry.starts_at, entry.ends_at))
            for start, end in freed:
                offer_freed(session, unit_id, start, end)
        # Nobody can be offered a period that is over: those entries leave the line.
        session.execute(
            sa.update(WaitlistEntry)
            .where(WaitlistEntry.status == WaitlistStatus.WAITING, WaitlistEntry.ends_at <= now)
            .values(status=WaitlistStatus.LEFT, updated_at=now)
            .execution_options(synchronize_session=False))
        return expired

    return reservations._decide(session, work)


def decline(session: Session, user: User, entry_id: int) -> WaitlistEntry:
    """The company lets the offer go now: its seats are offered to the next in line."""
    entry = find(session, user, entry_id)

    def work() -> WaitlistEntry:
        reservations._lock_unit(session, entry.unit_id)
        session.refresh(entry)
        if entry.status != WaitlistStatus.OFFERED or not _let_go(session, entry):
            raise DomainError("waitlist_not_offered")
        audit.record(session, user, "waitlist.decline", entry, entry.company_id)
        offer_freed(session, entry.unit_id, entry.starts_at, entry.ends_at)
        return entry

    return reservations._decide(session, work)


def leave(session: Session, user: User, entry_id: int) -> WaitlistEntry:
    """Out of the line; an offer held is declined (its seats go to the next)."""
    entry = find(session, user, entry_id)

    def work() -> WaitlistEntry:
        reservations._lock_unit(session, entry.unit_id)
        session.refresh(entry)
        if entry.status == WaitlistStatus.OFFERED:
            if not _let_go(session, entry, new=WaitlistStatus.LEFT):
                raise DomainError("waitlist_not_waiting")
            offer_freed(session, entry.unit_id, entry.starts_at, entry.ends_at)
        elif not _set_status(session, entry, WaitlistStatus.WAITING, WaitlistStatus.LEFT):
            raise DomainError("waitlist_not_waiting")
        audit.record(session, user, "waitlist.leave", entry, entry.company_id)
        return entry

    return reservations._decide(session, work)


# --------------------------------------------------------------------------- confirm


def confirm(session: Session, user: User, entry_id: int, *,
            idempotency: reservations.Idempotency | None = None) -> Booking:
    """Book the offered seats: the held booking becomes confirmed and the confirmation
    (with its .ics) is mailed, as for any booking. Refused once the offer has expired
    ("waitlist_offer_expired"), whether the expiry job has run yet or not.
    `idempotency`: as for reservations.book, a retry with the same key gets the first
    answer again (reservations.Replay) instead of "waitlist_not_offered"."""
    user_id = user.id
    try:
        return _confirm(session, user, entry_id, idempotency)
    except (DomainError, sa.exc.IntegrityError):
        # Refused, or the key committed first by a racing retry: the first answer, if any.
        reservations.replay_if_seen(session, user_id, idempotency)
        raise


def _confirm(session: Session, user: User, entry_id: int,
             idempotency: reservations.Idempotency | None) -> Booking:
    from booking.services import mail

    entry = find(session, user, entry_id)
    slot = entry.campaign_slot
    lock = (campaign_company_lock(slot.campaign_id, entry.company_id)
            if slot is not None else None)

    def work() -> Booking:
        unit = reservations._lock_unit(session, entry.unit_id)
        session.refresh(entry)
        now = clock.now()
        if entry.status != WaitlistStatus.OFFERED or entry.offer_booking_id is None:
            raise DomainError("waitlist_offer_expired" if entry.status == WaitlistStatus.EXPIRED
                              else "waitlist_not_offered")
        held = reservations._reread(session, entry.offer_booking_id)
        moved: dict[str, object] = {}
        if held.starts_at <= now:  # an offer of the rest of a begun day: from now on
            rest = _rest_of(unit, held.starts_at, held.ends_at, now)
            if rest is None:
                raise DomainError("waitlist_offer_expired")
            price, subsidy = reservations._price(unit, slot, rest[0], rest[1], held.seats)
            moved = {"starts_at": rest[0], "price_amount": price, "subsidy_amount": subsidy}
        if slot is not None and entry.company is not None:
            # The campaign's rules, counted without the held booking itself.
            check_rules(session, slot, entry.company, held.starts_at, held.ends_at, held.seats,
                        exclude_booking_id=held.id)
        if not _set_status(session, entry, WaitlistStatus.OFFERED, WaitlistStatus.BOOKED,
                           where=[WaitlistEntry.offer_expires_at > now]):
            raise DomainError("waitlist_offer_expired")
        # Made now, as far as reports and the company's limits are concerned.
        reservations._transition(session, held, "confirm_offer", created_at=now,
                                 user_id=user.id, **moved)
        reservations._bump_unit(session, unit.id)
        audit.record(session, user, "booking.create", held, unit.space.organisation_id,
                     reference=held.reference, seats=held.seats,
                     start=held.starts_at.isoformat(), price=held.price_amount,
                     subsidy=held.subsidy_amount, waitlist=entry.id)
        mail.enqueue_confirmation(session, held)
        if idempotency is not None:
            # The answer, built once here: stored for replays and sent by the edge.
            idempotency.answer = status, body = idempotency.respond([held])
            session.add(IdempotencyRecord(user_id=user.id, key=idempotency.key,
                                          request_hash=idempotency.request_hash,
                                          status_code=status, response=body))
        return held

    return reservations._decide(session, work, lock)
