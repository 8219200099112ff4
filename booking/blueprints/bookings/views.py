"""The booking pages' views: each parses its form into the command the API shares
(booking.services.booking_requests), calls one service, and renders or redirects; a
refusal is shown by booking.forms.show_error; booking.unit_of_work commits."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from booking import clock, dates
from booking.blueprints.bookings import bp
from booking.blueprints.bookings.forms import (
    ActionForm,
    CancelForm,
    booking_form,
    booking_request,
    change_form,
    change_request,
    extra_field,
    form_hash,
)
from booking.formatting import parse_hhmm, time_of, yen_taxed
from booking.forms import form_status, show_error, submit
from booking.labels import PER
from booking.models import Booking, CampaignSlot, PricePer, Unit, User
from booking.services import (
    access,
    booking_requests,
    calendars,
    campaign_extras,
    cancellation,
    free_time,
    pricing,
    reservations,
    space_members,
    tokens,
)
from booking.services.availability import TOKYO
from booking.services.errors import DomainError
from booking.unit_of_work import session
from booking.web import api_style, current_locale, problem


@bp.app_template_global()
def booking_extra_lines(booking: Booking) -> list:
    """The extras a booking holds, for its receipt and mail (only campaign bookings have
    any: no query for the others). A mail rendered from its facts (services/mail.py)
    brings the lines as they were at its event."""
    kept = getattr(booking, "mail_extra_lines", None)
    if kept is not None:
        return kept
    if booking.campaign_slot_id is None:
        return []
    return campaign_extras.booking_extras(session(), booking)


@bp.app_template_global()
def price_breakdown(booking: Booking) -> pricing.Breakdown:
    """Who pays what for a stored booking (its page and its mail)."""
    return pricing.of_booking(booking)


@bp.app_template_global()
def cancel_deadline(booking: Booking) -> datetime:
    """The last instant the company may cancel or change the booking (its mail)."""
    return cancellation.deadline_of(booking.unit, booking.starts_at)


@bp.app_template_global()
def per_price(amount: int, per) -> str:
    """A unit's price with its tax stated: '¥1,100(税込) / 1時間', '無料'."""
    if amount == 0:
        return yen_taxed(amount)
    return _("%(price)s / %(per)s", price=yen_taxed(amount), per=PER[str(getattr(per, "value", per))])


# What a search asked for, carried from the results to the space page to the booking form.
WISH_PARAMETERS = ("date", "end_date", "start", "end", "seats")


@bp.app_template_global()
def booking_wish() -> dict[str, str]:
    """The date, hours and seats this page was opened with (for the links onward)."""
    return {k: v for k in WISH_PARAMETERS if (v := request.args.get(k, "")[:10])}


def _found(load, *args):
    """What a service loads, or 404 when it says there is nothing (for this user)."""
    try:
        return load(*args)
    except DomainError:
        abort(404)


# --------------------------------------------------------------------------- booking


def _prefill(form, unit: Unit) -> None:
    """A new form: what the user searched for (date, hours, seats), when it is valid."""
    form.submission.data = secrets.token_urlsafe(16)
    form.first_date.data = dates.parse(request.args.get("date")) or form.first_date.data
    for name in ("start_time", "end_time"):
        try:
            minutes = parse_hhmm(request.args.get(name.removesuffix("_time")))
        except ValueError:  # not a time: the form starts without it
            minutes = None
        if name in form and minutes is not None and minutes < 1440:
            form[name].data = time_of(minutes)
    # A range searched for: the last day of a day unit's booking, or a stay's nights
    # (search's end_date is the last night: check-out is the day after).
    first, last = form.first_date.data, dates.parse(request.args.get("end_date"))
    if first and last and last > first:
        if unit.price_per == PricePer.NIGHT and "nights" in form:
            form.nights.data = (last - first).days + 1
        elif "last_date" in form:
            form.last_date.data = last
    seats = request.args.get("seats", type=int)
    if "seats" in form and seats is not None and 1 <= seats <= reservations.MAX_SEATS:
        form.seats.data = seats


def _describe_extras(form, extras: list, unit: Unit, slot: CampaignSlot) -> None:
    """Tells beside each extra how many are left for the dates the form asks for (for the
    rest of the slot's dates until a date is chosen) and how many one booking may take."""
    try:
        command = booking_request(form, unit, slot.id, [])
        periods = (booking_requests.periods_for(unit, slot, command)
                   if form.first_date.data else [])
    except DomainError:
        periods = []
    loc = current_locale()
    for extra, free in booking_requests.extras_left(session(), slot, periods):
        field = form._fields.get(extra_field(extra.id))
        if field is not None:
            left = _l("残り%(n)d個(1予約につき%(max)d個まで)", n=free, max=extra.max_per_booking)
            about = extra.display_description(loc)
            field.description = f"{about} {left}" if about else left


def _estimate(form, unit: Unit, slot: CampaignSlot | None,
              extra_names: list[str]) -> pricing.Estimate | None:
    """The estimate of what the form asks for now (its date, times, seats): None until
    it names a time that could be booked, and while a field it is made of is refused
    (a price for 1,000 seats would only mislead)."""
    fields = ("first_date", "last_date", "start_time", "end_time", "nights", "seats")
    if not form.first_date.data or any(name in form and form[name].errors for name in fields):
        return None
    try:
        command = booking_request(form, unit, slot.id if slot is not None else None,
                                  extra_names)
    except DomainError:  # no hours yet
        return None
    return pricing.estimate(session(), current_user, unit, command)


@bp.route("/bookings/new", methods=["GET", "POST"])
@login_required
def new():
    unit = _found(booking_requests.bookable_unit, session(), request.args.get("unit_id", type=int))
    slot = _found(booking_requests.named_slot, session(), unit, request.args.get("slot", type=int))
    if slot is not None and slot.ended():  # history: said once, never a form (410 Gone)
        return render_template("campaigns/slot_ended.html", slot=slot, unit=unit), 410
    extras = (campaign_extras.campaign_extras(session(), slot.campaign)
              if slot is not None else [])
    form = booking_form(unit, extras, current_locale())
    extra_names = [extra_field(e.id) for e in extras]
    if request.method == "GET":
        _prefill(form, unit)
    status = 200
    full = False  # refused for seats: the form offers the waitlist (blueprints/waitlist)
    # "料金を確認する": the same form shown again with its estimate, nothing booked.
    previewing = request.method == "POST" and "preview" in request.form
    if form.validate_on_submit() and not previewing:
        token = form.submission.data or secrets.token_urlsafe(16)
        slot_id = slot.id if slot is not None else None
        idem = reservations.Idempotency(
            key=f"form:{token}"[:200], request_hash=form_hash(form, unit, slot_id),
            respond=lambda made: (201, {"references": [b.reference for b in made]}),
        )
        try:
            command = booking_request(form, unit, slot_id, extra_names)
            ahead = pricing.estimate(session(), current_user, unit, command)
            if ahead is not None:  # the user saw (and ticked) that it cannot be cancelled
                cancellation.require_acknowledged(unit, ahead.starts_at,
                                                  bool(form.accept_late.data))
            made = booking_requests.place(session(), current_user, command,
                                          locale=current_locale(), idempotency=idem, unit=unit)
            references = [b.reference for b in made]
            flash(_l("予約が確定しました。確認メールをお送りします。"), "success")
        except reservations.Replay as replay:
            references = replay.response["references"]  # the second click of the same form
        except DomainError as error:
            if error.code == "idempotency_mismatch":
                form.submission.data = secrets.token_urlsafe(16)
            if error.code.startswith("extra_") and "extra" in error.extra:
                error.field = extra_field(error.extra["extra"])
            status = show_error(form, error)
            full = error.code == "not_enough_seats"
            references = []
        if references:
            return redirect(url_for("bookings.show", reference=references[0],
                                    more=",".join(references[1:]) or None))
    elif request.method == "POST":
        status = form_status(form)
    if slot is not None:
        _describe_extras(form, extras, unit, slot)
    offers = booking_requests.offers(session(), unit, current_user) if slot is None else []
    estimate = _estimate(form, unit, slot, extra_names)
    deadline = (cancellation.deadline_of(unit, estimate.starts_at)
                if estimate is not None else None)
    return render_template("bookings/new.html", form=form, unit=unit, slot=slot, offers=offers,
                           space=unit.space, extras=[form[n] for n in extra_names],
                           estimate=estimate, deadline=deadline, full=full,
                           drop_in=booking_requests.drop_in_hours(unit, estimate.slot,
                                                                  estimate.starts_at)
                           if estimate is not None and estimate.bookings == 1 else None,
                           late=deadline is not None and cancellation.has_passed(deadline),
                           # What is free: the month of the chosen date, or a room's hours of it.
                           free_view=free_time.for_booking(
                               session(), unit, slot, day=form.first_date.data,
                               month_of=free_time.parse_month(request.args.get("month")),
                               member=unit.members_only and unit.space_id in
                               space_members.spaces_of(session(), current_user))), status


@bp.get("/bookings/<reference>")
@login_required
def show(reference: str):
    booking = _found(reservations.find, session(), reference, current_user)
    more = reservations.find_all(session(), (request.args.get("more") or "").split(","),
                                 current_user)
    return render_template("bookings/show.html", booking=booking, more=more,
                           can_manage=access.allowed(current_user, "manage", booking),
                           can_receipt=access.allowed(current_user, "receipt", booking),
                           policy=cancellation.policy_of(booking, current_user),
                           action_form=ActionForm())


@bp.get("/bookings/<reference>.ics")
def ics(reference: str):
    user = _calendar_user()
    if user is None:
        # The API's ics_url asked by a client (a token sent, or JSON wanted): a 401 problem
        # it can read; a browser goes to the log-in page.
        if api_style():
            return problem(401, "unauthorized", "Log in or send a valid bearer token.")
        return redirect(url_for("account.login", next=request.path))
    booking = _found(reservations.find, session(), reference, user)
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
        return tokens.user_for(session(), token.strip())
    return None


@bp.get("/bookings")
@login_required
def mine():
    now = clock.now()
    rows = reservations.listed_for(session(), current_user)
    upcoming = sorted((b for b in rows if b.ends_at > now), key=lambda b: b.starts_at)
    past = [b for b in rows if b.ends_at <= now]
    company = current_user.company
    # The company's feed holds all its bookings: its admins' (a member sees their own).
    admin = company is not None and access.allowed(current_user, "own", company)
    return render_template(
        "bookings/mine.html", upcoming=upcoming, past=past, company=company, admin=admin,
        user_feed=_feed_links(current_user.calendar_secret),
        company_feed=_feed_links(company.calendar_secret if admin and company else None),
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
    if target is None or (owner == "company" and not access.allowed(current_user, "own", target)):
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
    # The validator before the body: a booking changed in between makes the body newer
    # than its ETag (one needless fetch later), never older (a stale calendar kept by a
    # 304). Exact on every app server (calendars.feed_version): a client's copy with the
    # current ETag is current, and so is this process's copy kept under it.
    found = calendars.feed_version(session(), secret)
    if found is None:
        abort(404)
    if request.if_none_match.contains_weak(found.etag):
        response = Response(status=304)
    else:
        response = Response(calendars.feed_body(session(), found), mimetype="text/calendar")
    response.set_etag(found.etag, weak=True)
    response.headers.update({"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"})
    return response


# --------------------------------------------------------------------------- change, cancel


def _managed_booking(reference: str) -> Booking:
    """The booking, when the user may change or cancel it; 404 otherwise."""
    booking = _found(reservations.find, session(), reference, current_user)
    if not access.allowed(current_user, "manage", booking):
        abort(404)
    return booking


@bp.route("/bookings/<reference>/cancel", methods=["GET", "POST"])
@login_required
def cancel(reference: str):
    booking = _managed_booking(reference)
    form = CancelForm()
    result = submit(form, lambda: reservations.cancel(session(), booking, current_user,
                                                      reason=form.reason.data or ""))
    if result.done:
        flash(_l("予約をキャンセルしました。"), "success")
        return redirect(url_for("bookings.show", reference=booking.reference))
    return render_template("bookings/cancel.html", booking=booking, form=form,
                           policy=cancellation.policy_of(booking, current_user)), result.status


def _attendees_after(booking: Booking, command) -> list[str]:
    if command.attendees is None:
        return [a.email for a in booking.attendees]
    return list(command.attendees)


@bp.route("/bookings/<reference>/change", methods=["GET", "POST"])
@login_required
def change(reference: str):
    booking = _managed_booking(reference)
    unit = booking.unit
    form = change_form(unit)
    if request.method == "GET":
        start, end = booking.starts_at.astimezone(TOKYO), booking.ends_at.astimezone(TOKYO)
        form.first_date.data = start.date()
        if "start_time" in form:
            form.start_time.data, form.end_time.data = start.time(), end.time()
        if "nights" in form:
            form.nights.data = max(1, (end.date() - start.date()).days)
        if "seats" in form:
            form.seats.data = booking.seats
        form.attendees.data = "\n".join(a.email for a in booking.attendees)
    status = 200
    if form.validate_on_submit():
        confirmed = form.confirm.data == "yes"
        try:
            command = change_request(form, unit)
            done = booking_requests.change(session(), current_user, booking, command,
                                           confirmed=confirmed)
            if not confirmed:
                # The confirmation step: old and new side by side, nothing changed yet.
                return render_template("bookings/change_confirm.html", booking=booking,
                                       form=form, new_start=done[0], new_end=done[1],
                                       attendees=_attendees_after(booking, command))
        except DomainError as error:
            status = show_error(form, error)
        else:
            flash(_l("予約を変更しました。新しい招待をお送りします。"), "success")
            return redirect(url_for("bookings.show", reference=booking.reference))
    elif request.method == "POST":
        status = form_status(form)
    form.confirm.data = ""
    return render_template("bookings/change.html", booking=booking, form=form, unit=unit,
                           policy=cancellation.policy_of(booking, current_user)), status
