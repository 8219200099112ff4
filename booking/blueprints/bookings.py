"""Booking pages for companies: book, confirmation, my bookings, change, cancel, .ics, feeds.

Thin: each view parses its form, calls one function of booking.services.reservations (or
calendars), and renders or redirects. Every rule lives in the service.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date, time, timedelta

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy.orm import selectinload
from wtforms import HiddenField, IntegerField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from booking import clock, dates
from booking.extensions import db
from booking.forms import DateField, form_status
from booking.models import Booking, CampaignSlot, PricePer, Space, Unit, User
from booking.services import access, calendars, campaigns, reservations
from booking.services.availability import TOKYO, at, regular_window, slot_window
from booking.services.errors import DomainError
from booking.web import current_locale

bp = Blueprint("bookings", __name__)

MAX_RANGE_DAYS = reservations.MAX_PERIODS

# Which field a domain error belongs beside (the rest are shown above the form).
FIELD_OF = {
    "bad_seats": "seats", "whole_unit": "seats", "not_enough_seats": "seats",
    "too_many_attendees": "attendees", "bad_email": "attendees", "email_unverified": "attendees",
    "bad_range": "end_time", "outside_hours": "start_time",
    "closed": "first_date", "in_past": "first_date", "lead_time": "first_date",
    "too_short": "last_date", "too_long": "last_date", "bad_dates": "first_date",
    "campaign_closed": "first_date",
}


STATUS_LABELS = {
    "confirmed": _l("確定"),
    "checked_in": _l("チェックイン済み"),
    "no_show": _l("不参加"),
    "cancelled": _l("キャンセル済み"),
}


@bp.app_template_global()
def booking_status_label(status) -> str:
    """A global (not a context variable) so that imported macros see it too."""
    return str(STATUS_LABELS.get(getattr(status, "value", status), status))


@bp.app_template_global()
def booking_extra_lines(booking: Booking) -> list:
    """The extras a booking holds, for its receipt and mail (only campaign bookings have
    any: no query for the others)."""
    if booking.campaign_slot_id is None:
        return []
    return campaigns.booking_extras(db.session, booking)


# --------------------------------------------------------------------------- forms


class BookingForm(FlaskForm):
    first_date = DateField(_l("日付"), validators=[DataRequired()])
    last_date = DateField(_l("最終日(複数日の場合)"), validators=[Optional()],
                          description=_l("営業日ごとに1件ずつ予約します。休業日は除きます。"))
    start_time = TimeField(_l("開始時刻"), validators=[Optional()])
    end_time = TimeField(_l("終了時刻"), validators=[Optional()])
    nights = IntegerField(_l("泊数"), validators=[Optional(), NumberRange(min=1, max=60)])
    seats = IntegerField(_l("席数"), default=1,
                         validators=[DataRequired(), NumberRange(min=1, max=reservations.MAX_SEATS)])
    attendees = TextAreaField(
        _l("参加者のメールアドレス"), validators=[Optional(), Length(max=10000)],
        description=_l("1行に1件。参加者それぞれにカレンダーの招待が届きます。あなたには必ず届きます。"),
    )
    note = TextAreaField(_l("施設へのメモ"), validators=[Optional(), Length(max=500)])
    # A fresh token per form shown: a second click of the same form books nothing more.
    submission = HiddenField()


def _extra_field(extra_id: int) -> str:
    return f"extra_{extra_id}"


def _booking_form(slot: CampaignSlot | None) -> tuple[BookingForm, list[str]]:
    """The booking form, with a quantity field (0 by default) for each extra the slot's
    campaign lends; and the names of those fields."""
    if slot is None:
        return BookingForm(), []
    loc = current_locale()
    extras = campaigns.campaign_extras(db.session, slot.campaign)
    form_class = type("BookingFormWithExtras", (BookingForm,), {
        _extra_field(e.id): IntegerField(
            e.display_name(loc), default=0,
            validators=[Optional(), NumberRange(min=0, max=e.max_per_booking)])
        for e in extras
    })
    return form_class(), [_extra_field(e.id) for e in extras]


def _extras_wanted(form: BookingForm, names: list[str]) -> dict[int, int]:
    return {int(n.removeprefix("extra_")): form[n].data for n in names if form[n].data}


class ChangeForm(FlaskForm):
    first_date = DateField(_l("日付"), validators=[DataRequired()])
    start_time = TimeField(_l("開始時刻"), validators=[Optional()])
    end_time = TimeField(_l("終了時刻"), validators=[Optional()])
    nights = IntegerField(_l("泊数"), validators=[Optional(), NumberRange(min=1, max=60)])
    seats = IntegerField(_l("席数"),
                         validators=[DataRequired(), NumberRange(min=1, max=reservations.MAX_SEATS)])
    confirm = HiddenField()


class CancelForm(FlaskForm):
    reason = StringField(_l("キャンセルの理由(任意)"), validators=[Optional(), Length(max=500)])


class ActionForm(FlaskForm):
    """A button that changes something: the CSRF token only."""


# --------------------------------------------------------------------------- helpers


def _unit_or_404(unit_id: int | None) -> Unit:
    unit = db.session.scalar(
        sa.select(Unit).where(Unit.id == (unit_id or 0))
        .options(selectinload(Unit.space).selectinload(Space.opening_hours),
                 selectinload(Unit.space).selectinload(Space.organisation))
    )
    if unit is None or not unit.space.published or unit.space.organisation.approved_at is None:
        abort(404)
    return unit


def _slot_for(unit: Unit, slot_id: int | None) -> CampaignSlot | None:
    if not slot_id:
        return None
    slot = db.session.get(CampaignSlot, slot_id)
    if slot is None or slot.unit_id != unit.id:
        abort(404)
    return slot


def _minutes(value: time | None) -> int | None:
    return None if value is None else value.hour * 60 + value.minute


def _periods(unit: Unit, slot: CampaignSlot | None, form) -> list[reservations.Period]:
    """The periods a form asks for, by the unit's price unit."""
    first: date = form.first_date.data
    if unit.price_per == PricePer.NIGHT:
        return [reservations.nights_period(unit, first, form.nights.data or 1)]
    if unit.price_per == PricePer.HOUR:
        start, end = _minutes(form.start_time.data), _minutes(form.end_time.data)
        if start is None or end is None:
            raise DomainError("bad_range")
        return [reservations.hours_period(first, start, end if end > 0 else 1440)]
    last_field = getattr(form, "last_date", None)
    last: date = (last_field.data if last_field is not None else None) or first
    if last < first or (last - first).days >= MAX_RANGE_DAYS:
        raise DomainError("bad_dates")
    if last == first:
        return [reservations.day_period(unit, first, slot)]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    # A range books each open day; days the space (or slot) is closed are left out.
    open_days = [d for d in days
                 if (slot_window(slot, d) if slot is not None else regular_window(unit, d))]
    if not open_days:
        raise DomainError("closed")
    return [reservations.day_period(unit, d, slot) for d in open_days]


def _attendees(text: str | None) -> list[str]:
    return [p for p in (text or "").replace(",", "\n").replace(";", "\n").split() if p]


def _show_error(form, error: DomainError) -> None:
    name = FIELD_OF.get(error.code)
    field = getattr(form, name, None) if name else None
    message = error.message
    if error.code == "not_enough_seats" and "available" in error.extra:
        message = _l("空席が足りません(残り%(n)d席)。", n=error.extra["available"])
    if error.code.startswith("extra_") and "extra" in error.extra:
        field = getattr(form, _extra_field(error.extra["extra"]), None)
        if error.code == "extra_sold_out":
            message = _l("貸出品の在庫が足りません(残り%(n)d個)。", n=error.extra["available"])
    if field is not None:
        field.errors = [*list(field.errors or []), message]
    else:
        form.form_errors.append(message)


def _own_booking(reference: str) -> Booking:
    try:
        return reservations.find(db.session, reference, current_user)
    except DomainError:
        abort(404)


def _describe_extras(form: BookingForm, names: list[str], unit: Unit,
                     slot: CampaignSlot | None) -> None:
    """Tells beside each extra how many are left for the dates the form asks for (for the
    rest of the slot's dates until a date is chosen) and how many one booking may take."""
    if not names:
        return
    try:
        periods = _periods(unit, slot, form) if form.first_date.data else []
    except DomainError:
        periods = []
    if periods:
        start, end = min(p[0] for p in periods), max(p[1] for p in periods)
    else:
        today = clock.today()
        start = at(max(slot.start_date, today), 0)
        end = at(max(slot.end_date, today) + timedelta(days=1), 0)
    loc = current_locale()
    for extra, free in campaigns.extras_available(db.session, slot.campaign, start, end):
        field = getattr(form, _extra_field(extra.id), None)
        if field is not None:
            left = _l("残り%(n)d個(1予約につき%(max)d個まで)", n=free, max=extra.max_per_booking)
            about = extra.display_description(loc)
            field.description = f"{about} {left}" if about else left


def _form_hash(form: BookingForm, unit: Unit, slot: CampaignSlot | None) -> str:
    data = {k: str(v.data) for k, v in form._fields.items()
            if k not in ("csrf_token", "submission")}
    data["unit"], data["slot"] = unit.id, slot.id if slot else None
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- booking


@bp.route("/bookings/new", methods=["GET", "POST"])
@login_required
def new():
    unit = _unit_or_404(request.args.get("unit_id", type=int))
    slot = _slot_for(unit, request.args.get("slot", type=int))
    form, extra_names = _booking_form(slot)
    if request.method == "GET":
        form.submission.data = secrets.token_urlsafe(16)
        # A search result's date, if it is one (and in the range dates.parse accepts).
        form.first_date.data = dates.parse(request.args.get("date")) or form.first_date.data
    status = 200
    if form.validate_on_submit():
        token = form.submission.data or secrets.token_urlsafe(16)
        idem = reservations.Idempotency(
            key=f"form:{token}"[:200], request_hash=_form_hash(form, unit, slot),
            respond=lambda made: (201, {"references": [b.reference for b in made]}),
        )
        try:
            periods = _periods(unit, slot, form)
            made = reservations.book(
                db.session, unit, current_user, periods, form.seats.data, slot=slot,
                attendees=_attendees(form.attendees.data), note=form.note.data or "",
                locale=current_locale(), idempotency=idem,
                extras=_extras_wanted(form, extra_names))
            references = [b.reference for b in made]
            flash(_l("予約が確定しました。確認メールをお送りします。"), "success")
        except reservations.Replay as replay:
            references = replay.response["references"]  # the second click of the same form
        except DomainError as error:
            if error.code == "idempotency_mismatch":
                form.submission.data = secrets.token_urlsafe(16)
            _show_error(form, error)
            status = error.status
            references = []
        if references:
            return redirect(url_for("bookings.show", reference=references[0],
                                    more=",".join(references[1:]) or None))
    elif request.method == "POST":
        status = form_status(form)
    _describe_extras(form, extra_names, unit, slot)
    return render_template("bookings/new.html", form=form, unit=unit, slot=slot,
                           space=unit.space, extras=[form[n] for n in extra_names]), status


@bp.get("/bookings/<reference>")
@login_required
def show(reference: str):
    booking = _own_booking(reference)
    more = [b for ref in (request.args.get("more") or "").split(",") if ref
            for b in [db.session.scalar(sa.select(Booking).where(Booking.reference == ref))]
            if b is not None and access.allowed(current_user, "view", b)]
    return render_template("bookings/show.html", booking=booking, more=more,
                           can_manage=access.allowed(current_user, "manage", booking),
                           action_form=ActionForm())


@bp.get("/bookings/<reference>.ics")
def ics(reference: str):
    user = _calendar_user()
    if user is None:
        return redirect(url_for("account.login", next=request.path))
    try:
        booking = reservations.find(db.session, reference, user)
    except DomainError:
        abort(404)
    body = calendars.booking_ics(booking, calendars.METHOD_PUBLISH)
    return Response(body, mimetype="text/calendar", headers={
        "Content-Disposition": f'attachment; filename="{booking.reference}.ics"',
        "Cache-Control": "private, no-store",
    })


def _calendar_user() -> User | None:
    """The logged-in user, or the owner of a bearer token (the API's .ics link)."""
    if current_user.is_authenticated:
        return current_user
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        from booking.services import tokens

        return tokens.user_for(db.session, token.strip())
    return None


@bp.get("/bookings")
@login_required
def mine():
    now = clock.tokyo_now()
    rows = db.session.scalars(reservations.visible_to(current_user).limit(500)).all()
    upcoming = sorted((b for b in rows if b.ends_at > now), key=lambda b: b.starts_at)
    past = [b for b in rows if b.ends_at <= now]
    company = current_user.company
    return render_template(
        "bookings/mine.html", upcoming=upcoming, past=past, company=company,
        user_feed=_feed_links(current_user.calendar_secret),
        company_feed=_feed_links(company.calendar_secret if company else None),
        action_form=ActionForm(),
    )


def _feed_links(secret: str | None) -> dict | None:
    if not secret:
        return None
    return {"https": calendars.feed_url(secret), "webcal": calendars.webcal_url(secret)}


@bp.post("/bookings/feeds/<owner>/<action>")
@login_required
def feed_secret(owner: str, action: str):
    if owner not in ("user", "company") or action not in ("renew", "revoke"):
        abort(404)
    target = current_user if owner == "user" else current_user.company
    if target is None:
        abort(404)
    if ActionForm().validate_on_submit():
        if action == "renew":
            calendars.renew_secret(target)
            flash(_l("新しい購読URLを作りました。以前のURLは使えなくなりました。"), "success")
        else:
            calendars.revoke_secret(target)
            flash(_l("購読URLを無効にしました。"), "success")
    return redirect(url_for("bookings.mine"))


@bp.get("/calendar/<secret>.ics")
def feed(secret: str):
    owner = calendars.owner_of(db.session, secret)
    if owner is None:
        abort(404)
    name = calendars.feed_name(owner, getattr(owner, "locale", "ja"))
    # The ETag before the body: a booking changed in between makes the body newer than
    # its ETag (one needless fetch later), never older (a stale calendar kept by a 304).
    etag = calendars.feed_etag(db.session, owner, name)
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(calendars.feed_body(db.session, owner, name, etag),
                            mimetype="text/calendar")
    response.set_etag(etag, weak=True)
    response.headers.update({"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"})
    return response


# --------------------------------------------------------------------------- change, cancel


@bp.route("/bookings/<reference>/cancel", methods=["GET", "POST"])
@login_required
def cancel(reference: str):
    booking = _own_booking(reference)
    if not access.allowed(current_user, "manage", booking):
        abort(404)
    form = CancelForm()
    error = None
    if form.validate_on_submit():
        try:
            reservations.cancel(db.session, booking, current_user, reason=form.reason.data or "")
        except DomainError as failed:
            error = failed
        else:
            flash(_l("予約をキャンセルしました。"), "success")
            return redirect(url_for("bookings.show", reference=booking.reference))
    status = error.status if error else form_status(form)
    return render_template("bookings/cancel.html", booking=booking, form=form,
                           error=error), status


@bp.route("/bookings/<reference>/change", methods=["GET", "POST"])
@login_required
def change(reference: str):
    booking = _own_booking(reference)
    if not access.allowed(current_user, "manage", booking):
        abort(404)
    unit = booking.unit
    form = ChangeForm()
    if request.method == "GET":
        start, end = booking.starts_at.astimezone(TOKYO), booking.ends_at.astimezone(TOKYO)
        form.first_date.data = start.date()
        form.start_time.data, form.end_time.data = start.time(), end.time()
        form.nights.data = max(1, (end.date() - start.date()).days)
        form.seats.data = booking.seats
    status = 200
    if form.validate_on_submit():
        try:
            period = _periods(unit, booking.campaign_slot, form)[0]
            if form.confirm.data != "yes":
                # The confirmation step: show old and new side by side, change nothing yet.
                return render_template("bookings/change_confirm.html", booking=booking,
                                       form=form, new_start=period[0], new_end=period[1])
            reservations.change(db.session, booking, current_user, seats=form.seats.data,
                                period=period)
        except DomainError as error:
            _show_error(form, error)
            status = error.status
        else:
            flash(_l("予約を変更しました。新しい招待をお送りします。"), "success")
            return redirect(url_for("bookings.show", reference=booking.reference))
    elif request.method == "POST":
        status = form_status(form)
    form.confirm.data = ""
    return render_template("bookings/change.html", booking=booking, form=form,
                           unit=unit), status

