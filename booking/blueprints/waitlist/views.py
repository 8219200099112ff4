"""The waitlist's views: each loads through booking.services.waitlist (which asks
booking.services.access), parses its form, calls one service, and renders or redirects;
a refusal is shown by booking.forms; booking.unit_of_work commits."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from booking.blueprints.bookings.forms import ActionForm, booking_form, booking_request
from booking.blueprints.waitlist import bp
from booking.forms import form_status, show_error, submit
from booking.models import Booking, WaitlistEntry, WaitlistStatus
from booking.services import booking_requests, waitlist
from booking.services.errors import DomainError
from booking.unit_of_work import session
from booking.web import current_locale

STATUS_LABELS = {
    WaitlistStatus.WAITING: _l("空き待ち中"),
    WaitlistStatus.OFFERED: _l("ご案内中(確定待ち)"),
    WaitlistStatus.BOOKED: _l("予約済み"),
    WaitlistStatus.EXPIRED: _l("ご案内の期限切れ・辞退"),
    WaitlistStatus.LEFT: _l("登録取り消し"),
}


@bp.app_template_global()
def waitlist_status_label(status: WaitlistStatus) -> str:
    return str(STATUS_LABELS.get(WaitlistStatus(status), status))


@bp.app_template_global()
def waitlist_entry_of(booking: Booking) -> WaitlistEntry | None:
    """The waitlist entry a booking of status offered or expired was its offer of (the
    booking's page links it), for a member of its company."""
    return waitlist.entry_of_offer(session(), current_user, booking)


def _found(load, *args):
    """What a service loads, or 404 when it says there is nothing (for this user)."""
    try:
        return load(*args)
    except DomainError:
        abort(404)


def _entry(entry_id: int) -> WaitlistEntry:
    return _found(waitlist.find, session(), current_user, entry_id)


@bp.get("/")
@login_required
def index():
    return render_template("waitlist/index.html",
                           entries=waitlist.entries_of(session(), current_user),
                           action_form=ActionForm())


@bp.post("/join")
@login_required
def join():
    """The booking form's fields, posted here by its 「空き待ちに登録する」 button."""
    unit = _found(booking_requests.bookable_unit, session(), request.args.get("unit_id", type=int))
    slot = _found(booking_requests.named_slot, session(), unit, request.args.get("slot", type=int))
    form = booking_form(unit, [], current_locale())
    status = 200
    if form.validate_on_submit():
        try:
            command = booking_request(form, unit, slot.id if slot is not None else None, [])
            waitlist.join_request(session(), current_user, unit, slot, command,
                                  locale=current_locale())
        except DomainError as error:
            status = show_error(form, error)
        else:
            flash(_l("空き待ちに登録しました。空きが出たらメールでお知らせします。"), "success")
            return redirect(url_for("waitlist.index"))
    else:
        status = form_status(form)
    return render_template("waitlist/join.html", form=form, unit=unit, slot=slot,
                           space=unit.space), status


@bp.get("/<int:entry_id>")
@login_required
def show(entry_id: int):
    entry = _entry(entry_id)
    return _offer_page(entry, ActionForm(), 200)


def _offer_page(entry: WaitlistEntry, form: ActionForm, status: int):
    return render_template("waitlist/show.html", entry=entry, form=form,
                           live=waitlist.is_live(entry), breakdown=waitlist.price_of(entry)
                           ), status


@bp.post("/<int:entry_id>/confirm")
@login_required
def confirm(entry_id: int):
    entry = _entry(entry_id)
    form = ActionForm()
    result = submit(form, lambda: waitlist.confirm(session(), current_user, entry.id))
    if result.done:
        flash(_l("予約が確定しました。確認メールをお送りします。"), "success")
        return redirect(url_for("bookings.show", reference=result.value.reference))
    return _offer_page(entry, form, result.status)


@bp.post("/<int:entry_id>/decline")
@login_required
def decline(entry_id: int):
    entry = _entry(entry_id)
    form = ActionForm()
    result = submit(form, lambda: waitlist.decline(session(), current_user, entry.id))
    if result.done:
        flash(_l("ご案内をお断りしました。次に並んでいる方にご案内します。"), "success")
        return redirect(url_for("waitlist.index"))
    return _offer_page(entry, form, result.status)


@bp.post("/<int:entry_id>/leave")
@login_required
def leave(entry_id: int):
    entry = _entry(entry_id)
    form = ActionForm()
    result = submit(form, lambda: waitlist.leave(session(), current_user, entry.id))
    if result.done:
        flash(_l("空き待ちの登録を取り消しました。"), "success")
        return redirect(url_for("waitlist.index"))
    return _offer_page(entry, form, result.status)
