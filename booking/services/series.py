"""Recurring bookings: "every Wednesday from … to …" or every weekday, one booking per date.

Public functions (the series pages call these):

    rule_for(unit, weekdays, first_date, last_date, start_min, end_min, seats) -> Rule
        The rule as asked, checked against the unit (see `Rule`).
    expand(rule) -> list[date]
        Its dates: every date of its weekdays from first_date to last_date, at most
        MAX_OCCURRENCES ("series_too_many" beside the last date, naming the last date that
        fits). Closed days and the horizon are not left out here: the preview says them.
    preview(session, unit, user, rule) -> Preview
        Each date with whether it can be booked now (free, taken, closed, outside the
        hours, past the unit's horizon, past), decided as reservations.book decides:
        one availability.timelines load over the whole range, one query for closures.
    confirm(session, unit, user, rule, seen, *, attendees, note, locale, accept_late,
            idempotency=None) -> BookingSeries
        Books the dates the user saw free (`seen`) as ONE reservations.book call (one
        unit lock, all or none) and writes the series row in the same transaction; one
        confirmation mail for the series (mail.enqueue_series). A date taken since the
        preview refuses the whole series ("series_date_taken", naming the date).
    find(session, series_id, user) -> BookingSeries       ("not_found" for strangers)
    cancel_all(session, series, user, reason) -> Cancelled
        Cancels every occurrence this user may still cancel, each by its own guarded
        transition (reservations._transition with its expected status); those past their
        deadline (or over) are left and named. One mail for all of it.

Cancelling ONE occurrence is reservations.cancel on its booking: its CANCEL names the
series' UID and the occurrence's RECURRENCE-ID (services/calendars.py).

Why houses let by the night are out: a stay runs from check-in one day to check-out the
next, so "every Wednesday" of a house is a series of stays whose nights and cleaning days
the operator plans by the stay, and whose calendar events cross midnight; the weekly use
this was asked for (a team at the satellite office every Wednesday) is a desk or a room
by the day or the hour. The page and the service refuse a house ("series_nights").

Why the series row is written after the bookings (in the same transaction, before the
edge commits, the unit lock still held) and not passed to book() as series_id: book()
decides in a transaction of its own that must begin before anything is written
(booking.db.begin_write refuses pending changes), and the row cannot be inserted before
its bookings' transaction begins. The bookings get their series_id in that same
transaction: a refusal rolls back both, a commit keeps both.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import (
    Booking,
    BookingSeries,
    BookingStatus,
    Closure,
    PricePer,
    Unit,
    UnitKind,
    User,
)
from booking.services import (
    access,
    audit,
    availability,
    cancellation,
    mail,
    reservations,
    waitlist,
)
from booking.services.availability import at, regular_window
from booking.services.calendars import UID_DOMAIN
from booking.services.errors import MESSAGES, DomainError

# A series books at most this many dates (half a year of one weekday). Well under
# reservations.MAX_PERIODS (62), which one book() call takes at most.
MAX_OCCURRENCES = 26
EVERY_WEEKDAY = (0, 1, 2, 3, 4)  # Monday to Friday

# The series' refusals (their messages live with the others, in errors.MESSAGES).
MESSAGES.update({
    "series_nights": (
        422, _l("宿泊単位の区画は定期予約できません。チェックイン日と泊数で予約してください。")),
    "series_no_weekday": (422, _l("曜日を1つ以上選んでください。")),
    "series_no_dates": (422, _l("この期間に選んだ曜日の日付がありません。")),
    "series_too_many": (
        422, _l("定期予約は最大%(max)d回までです。最終日を%(last)s以前にしてください。")),
    "series_hours": (422, _l("開始時刻と終了時刻を入れてください。")),
    "series_nothing_free": (409, _l("予約できる日がありません。")),
    "series_date_taken": (
        409, _l("%(date)sは確認後に予約が入ったため、予約できなくなりました。"
                "空き状況を更新しましたので、もう一度確認してください(何も予約していません)。")),
    "series_changed": (
        409, _l("確認した後に空き状況が変わりました。"
                "更新した内容を確認してください(何も予約していません)。")),
})


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class Rule:
    """What a company asks for: its weekdays (Monday = 0), first and last date, the hours
    of each occurrence for a unit let by the hour (minutes after midnight, Tokyo; None for
    a unit let by the day: the space's opening hours of each date), and seats."""

    weekdays: tuple[int, ...]
    first_date: date
    last_date: date
    start_min: int | None = None
    end_min: int | None = None
    seats: int = 1


def rule_for(unit: Unit, weekdays: Iterable[int], first_date: date | None,
             last_date: date | None, start_min: int | None = None,
             end_min: int | None = None, seats: int = 1) -> Rule:
    """The rule as asked, checked against how the unit is let (DomainError beside the
    field it concerns otherwise)."""
    if unit.price_per == PricePer.NIGHT:
        raise DomainError("series_nights", field="repeat")
    days = tuple(sorted({int(d) for d in weekdays if 0 <= int(d) <= 6}))
    if not days:
        raise DomainError("series_no_weekday", field="weekdays")
    if first_date is None:
        raise DomainError("bad_dates", field="first_date")
    if last_date is None or last_date < first_date:
        raise DomainError("bad_dates", field="last_date")
    if unit.price_per == PricePer.HOUR:
        if start_min is None or end_min is None:
            raise DomainError("series_hours", field="start_time")
        if end_min <= start_min:
            raise DomainError("bad_range")
        hours = -(-(end_min - start_min) // 60)
        if hours < unit.min_length:
            raise DomainError("too_short", field="end_time", minimum=unit.min_length)
        if hours > unit.max_length:
            raise DomainError("too_long", field="end_time", maximum=unit.max_length)
    else:
        start_min = end_min = None
    if not isinstance(seats, int) or not 1 <= seats <= reservations.MAX_SEATS:
        raise DomainError("bad_seats")
    if unit.kind != UnitKind.DESK and seats != 1:
        raise DomainError("whole_unit")
    return Rule(days, first_date, last_date, start_min, end_min, seats)


def unit_for(session: Session, unit_id: int | None) -> Unit:
    """The unit a series may be asked of: bookable by the public (bookable_unit), let by
    the day or hour ("series_nights" for a house), not members-only ("members_only")."""
    from booking.services.booking_requests import bookable_unit

    unit = bookable_unit(session, unit_id)
    if unit.price_per == PricePer.NIGHT:
        raise DomainError("series_nights", field="repeat")
    if unit.members_only:
        raise DomainError("members_only", field="repeat")
    return unit


def expand(rule: Rule) -> list[date]:
    """Every date of the rule's weekdays from its first to its last date (inclusive),
    at most MAX_OCCURRENCES."""
    out: list[date] = []
    day = rule.first_date
    while day <= rule.last_date:
        if day.weekday() in rule.weekdays:
            if len(out) == MAX_OCCURRENCES:
                raise DomainError("series_too_many", field="last_date", max=MAX_OCCURRENCES,
                                  last=out[-1].isoformat())
            out.append(day)
        day += timedelta(days=1)
    if not out:
        raise DomainError("series_no_dates", field="last_date")
    return out


def period_of(unit: Unit, rule: Rule, day: date) -> reservations.Period | None:
    """What the occurrence of `day` holds: the rule's hours, or the space's opening hours
    that day (None when it is closed by its hours)."""
    if rule.start_min is not None and rule.end_min is not None:
        return reservations.hours_period(day, rule.start_min, rule.end_min)
    return regular_window(unit, day)


# --------------------------------------------------------------------------- preview


class State(enum.StrEnum):
    FREE = "free"
    TAKEN = "taken"  # not enough seats (a room: booked)
    CLOSED = "closed"  # the space's hours, a holiday, or a closure of the unit
    OUTSIDE_HOURS = "outside_hours"  # open that day, but not for the rule's hours
    BEYOND = "beyond"  # after the unit's booking horizon
    PAST = "past"  # begun, or inside the unit's lead time


@dataclass(frozen=True)
class Occurrence:
    day: date
    state: State
    start: datetime | None = None
    end: datetime | None = None
    seats_free: int = 0
    late: bool = False  # free, but its cancellation deadline has passed already

    @property
    def bookable(self) -> bool:
        return self.state == State.FREE


@dataclass(frozen=True)
class Preview:
    unit: Unit
    rule: Rule
    occurrences: list[Occurrence] = field(default_factory=list)

    @property
    def free(self) -> list[Occurrence]:
        return [o for o in self.occurrences if o.bookable]

    @property
    def free_dates(self) -> list[date]:
        return [o.day for o in self.free]

    @property
    def late(self) -> bool:
        return any(o.late for o in self.free)


def _closures(session: Session, unit: Unit, first: date, last: date) -> list[tuple[date, date]]:
    return [(a, b) for a, b in session.execute(
        sa.select(Closure.start_date, Closure.end_date)
        .where(Closure.unit_id == unit.id, Closure.start_date <= last,
               Closure.end_date >= first))]


def preview(session: Session, unit: Unit, user: User, rule: Rule) -> Preview:
    """Each date of the rule and whether it can be booked now (see the module docstring).
    Decided on the same timeline reservations.book reads (availability.timelines), in
    one load for the whole range."""
    if unit.members_only:
        # A members-only unit is booked by its members or through a campaign slot, one
        # booking at a time; a series books the unit at its own public price.
        raise DomainError("members_only", field="repeat")
    days = expand(rule)
    line = availability.timelines(session, [unit], at(days[0], 0),
                                  at(days[-1] + timedelta(days=1), 0))[unit.id]
    closures = _closures(session, unit, days[0], days[-1])
    now, today = clock.now(), clock.today()
    latest = today + timedelta(days=unit.max_days_ahead)  # reservations._within_horizon
    earliest = now + timedelta(hours=unit.lead_time_hours)
    out = []
    for day in days:
        window = regular_window(unit, day)
        period = period_of(unit, rule, day)
        if day < today or (period is not None and period[0] < earliest):
            out.append(Occurrence(day, State.PAST))
        elif window is None or any(a <= day <= b for a, b in closures):
            out.append(Occurrence(day, State.CLOSED))
        elif day > latest:
            out.append(Occurrence(day, State.BEYOND))
        elif period is None or period[0] < window[0] or period[1] > window[1]:
            out.append(Occurrence(day, State.OUTSIDE_HOURS))
        else:
            start, end = period
            free = line.min_free(start, end)
            late = cancellation.has_passed(cancellation.deadline_of(unit, start))
            out.append(Occurrence(day, State.FREE if free >= rule.seats else State.TAKEN,
                                  start, end, free, late))
    return Preview(unit, rule, out)


# --------------------------------------------------------------------------- confirm


def confirm(session: Session, unit: Unit, user: User, rule: Rule, seen: Iterable[date], *,
            attendees: Iterable[str] = (), note: str = "", locale: str = "ja",
            accept_late: bool = False,
            idempotency: reservations.Idempotency | None = None) -> BookingSeries:
    """Book the dates the user saw free (see the module docstring): all of them under
    one unit lock, or none. Refused when the availability changed since the preview
    ("series_date_taken" naming a date the user saw free and is no longer, or
    "series_changed"): nothing is written and the page shows the preview again.
    `idempotency`: as for reservations.book (its answer built from the series' bookings);
    a retry with the same key gets the first answer (reservations.Replay), not the
    refusal its own dates, taken by the first request, would now bring."""
    user_id = user.id
    try:
        return _confirm(session, unit, user, rule, seen, attendees=attendees, note=note,
                        locale=locale, accept_late=accept_late, idempotency=idempotency)
    except DomainError:
        reservations.replay_if_seen(session, user_id, idempotency)
        raise


def _confirm(session: Session, unit: Unit, user: User, rule: Rule, seen: Iterable[date], *,
             attendees: Iterable[str], note: str, locale: str, accept_late: bool,
             idempotency: reservations.Idempotency | None) -> BookingSeries:
    seen_dates = sorted(set(seen))
    ahead = preview(session, unit, user, rule)
    free = {o.day: o for o in ahead.free}
    if not seen_dates:
        raise DomainError("series_nothing_free", field="repeat")
    _refuse_if_changed(seen_dates, free)
    if any(free[d].late for d in seen_dates) and not accept_late:
        raise DomainError("late_unacknowledged", field="accept_late")
    periods = [(free[d].start, free[d].end) for d in seen_dates]
    series = BookingSeries(
        uid=f"series-{secrets.token_hex(12)}@{UID_DOMAIN}", unit_id=unit.id,
        company_id=user.company.id if user.company is not None else None, user_id=user.id,
        weekdays=list(rule.weekdays), first_date=min(expand(rule)),
        last_date=max(expand(rule)), start_min=rule.start_min, end_min=rule.end_min,
        seats=rule.seats, sequence=0)
    try:
        # The series is saved in book()'s transaction, under its lock: all or none.
        made = reservations.book(session, unit, user, periods,  # type: ignore[arg-type]
                                 rule.seats, attendees=attendees, note=note, locale=locale,
                                 series=series, idempotency=idempotency)
    except DomainError as refused:
        if refused.code not in ("not_enough_seats", "closed", "outside_hours",
                                "too_far_ahead", "in_past", "lead_time"):
            raise
        # Taken (or closed) under the lock since the preview: say which date.
        now_free = {o.day: o for o in preview(session, unit, user, rule).free}
        _refuse_if_changed(seen_dates, now_free)
        raise DomainError("series_changed", field="repeat") from None
    session.refresh(series)
    audit.record(session, user, "series.create", series, unit.space.organisation_id,
                 weekdays=",".join(map(str, rule.weekdays)), dates=len(made),
                 first=seen_dates[0].isoformat(), last=seen_dates[-1].isoformat())
    mail.enqueue_series(session, series, made, mail.KIND_SERIES_CONFIRMATION)
    session.flush()
    return series


def _refuse_if_changed(seen: Sequence[date], free: dict[date, Occurrence]) -> None:
    for day in seen:
        if day not in free:
            raise DomainError("series_date_taken", field="repeat", date=day.isoformat())


# --------------------------------------------------------------------------- reading


def _manages(user: User, series: BookingSeries) -> bool:
    """As for one of its bookings (access._manages_booking): the booker, their company's
    owners, the space's operator, a site admin."""
    return (series.user_id == getattr(user, "id", None)
            or access.is_owner(user, series.company_id) or access.is_admin(user)
            or access.is_member(user, series.unit.space.organisation_id))


# Who may see and cancel a series: the rule lives in services/access.py's table.
access.POLICIES[(BookingSeries, "view")] = _manages
access.POLICIES[(BookingSeries, "manage")] = _manages


def find(session: Session, series_id: int, user: User) -> BookingSeries:
    """The series, with its occurrences, when `user` may see it; "not_found" otherwise."""
    series = session.scalar(
        sa.select(BookingSeries).where(BookingSeries.id == series_id)
        .options(selectinload(BookingSeries.bookings).selectinload(Booking.attendees),
                 selectinload(BookingSeries.unit).selectinload(Unit.space)))
    if series is None:
        raise DomainError("not_found")
    access.require(user, "view", series)
    return series


def occurrence_of(series: BookingSeries, reference: str) -> Booking:
    """One occurrence of the series, by its booking reference ("not_yours" otherwise)."""
    for booking in series.bookings:
        if booking.reference == (reference or "").upper():
            return booking
    raise DomainError("not_yours")


def may_cancel(booking: Booking, user: User) -> bool:
    """Whether `user` may cancel this occurrence now (cancellation.policy_of: a company
    until the deadline, the operator until the end)."""
    return cancellation.policy_of(booking, user).may_cancel


def cancel_one(session: Session, series: BookingSeries, reference: str, user: User, *,
               reason: str = "") -> Booking:
    """One occurrence cancelled as any booking is (its own CANCEL, RECURRENCE-ID)."""
    return reservations.cancel(session, occurrence_of(series, reference), user, reason=reason)


@dataclass(frozen=True)
class Cancelled:
    cancelled: list[Booking]
    kept: list[Booking]  # still holding seats: past the deadline, begun or over


def cancel_all(session: Session, series: BookingSeries, user: User, *,
               reason: str = "") -> Cancelled:
    """Cancel every occurrence that `user` may still cancel (each its own transition,
    with the status it was read in), leave the rest and say which. One transaction;
    one mail to everyone invited (mail.enqueue_series)."""
    access.require(user, "manage", series)
    series_id, unit_id = series.id, series.unit_id
    operator = access.allowed(user, "operate", series.bookings[0]) if series.bookings else False
    now = clock.now()

    def work() -> Cancelled:
        # The unit's row lock first: the seats freed are counted one change after another.
        reservations._lock_unit(session, unit_id)
        current = session.get(BookingSeries, series_id, populate_existing=True)
        assert current is not None
        occurrences = list(session.scalars(
            sa.select(Booking).where(Booking.series_id == series_id)
            .order_by(Booking.starts_at).execution_options(populate_existing=True)))
        done, kept = [], []
        for booking in occurrences:
            if not booking.holds_seats:
                continue
            action = "cancel_on_behalf" if operator else "cancel"
            allowed = (reservations.may_cancel_on_behalf(booking, now) if operator else
                       booking.status == BookingStatus.CONFIRMED and not cancellation.has_passed(
                           cancellation.deadline_of(current.unit, booking.starts_at)))
            if not allowed:
                kept.append(booking)
                continue
            try:
                reservations._transition(session, booking, action, cancelled_at=now,
                                         cancel_reason=(reason or "")[:500],
                                         sequence=Booking.sequence + 1)
            except DomainError:  # changed by another request meanwhile: left as it is
                kept.append(booking)
                continue
            audit.record(session, user, "booking.cancel", booking,
                         current.unit.space.organisation_id, reference=booking.reference,
                         reason=reason or "", series=series_id, on_behalf=operator)
            done.append(booking)
            # Its seats go to the unit's waitlist, in this transaction (as reservations.cancel).
            waitlist.offer_freed(session, current.unit_id, booking.starts_at, booking.ends_at)
        if done:
            session.execute(sa.update(BookingSeries).where(BookingSeries.id == series_id)
                            .values(sequence=BookingSeries.sequence + 1))
            session.refresh(current)
            kind = (mail.KIND_SERIES_CANCELLATION if not kept
                    else mail.KIND_SERIES_UPDATE)
            mail.enqueue_series(session, current, done, kind, kept=kept)
        return Cancelled(done, kept)

    return reservations._decide(session, work)


def held(series: BookingSeries) -> list[Booking]:
    """The occurrences still holding seats."""
    return [b for b in series.bookings if b.holds_seats]


def weekday_codes(series: BookingSeries | Rule) -> tuple[int, ...]:
    return tuple(sorted(int(d) for d in series.weekdays))

