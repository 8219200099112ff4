"""The series pages' views: each parses its form into a series.Rule, calls one service
(booking.services.series), and renders or redirects; a refusal is shown by
booking.forms.show_error beside its field (the preview shown again when the dates
changed under it); booking.unit_of_work commits."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required

from booking import dates
from booking.blueprints.series import bp
from booking.blueprints.series.forms import (
    ActionForm,
    CancelAllForm,
    attendees_of,
    rule_of,
    seen_dates,
    series_form,
)
from booking.forms import form_status, show_error, submit
from booking.services import calendars, mail, series
from booking.services.errors import DomainError
from booking.unit_of_work import session
from booking.web import current_locale

STATE_LABELS = {
    series.State.FREE: _l("予約できます"),
    series.State.TAKEN: _l("空きなし"),
    series.State.CLOSED: _l("休業日"),
    series.State.OUTSIDE_HOURS: _l("営業時間外"),
    series.State.BEYOND: _l("受付期間外"),
    series.State.PAST: _l("受付終了"),
}


@bp.app_template_global()
def series_state_label(state: series.State) -> str:
    """How the preview names a date's state."""
    return str(STATE_LABELS[state])


@bp.app_template_global()
def series_label(found) -> str:
    """'毎週水曜日 2026年12月9日(水)〜…' of a series, in the page's language."""
    return mail.series_label(found, current_locale())


# Refusals after which the preview is shown again, as the dates are now.
SHOW_AGAIN = ("series_date_taken", "series_changed", "late_unacknowledged",
              "series_nothing_free")


def _found(load, *args):
    """What a service loads, or 404 when it says there is nothing (for this user)."""
    try:
        return load(*args)
    except DomainError:
        abort(404)


@bp.route("/series/new", methods=["GET", "POST"])
@login_required
def new():
    # A house by the night or a members-only unit has no weekly booking: 404, like a
    # unit the public cannot book (the booking form offers no link to it).
    unit = _found(series.unit_for, session(), request.args.get("unit_id", type=int))
    form = series_form(unit)
    if request.method == "GET":
        first = dates.parse(request.args.get("date"))
        if first is not None:
            form.first_date.data = first
            form.weekdays.data = [first.weekday()]
    status = 200
    view = None
    if form.validate_on_submit():
        try:
            rule = rule_of(form, unit)
            if "confirm" in request.form:
                made = series.confirm(session(), unit, current_user, rule, seen_dates(form),
                                      attendees=attendees_of(form), note=form.note.data or "",
                                      locale=current_locale(),
                                      accept_late=bool(form.accept_late.data))
                flash(_l("定期予約が確定しました。確認メールを1通お送りします。"), "success")
                return redirect(url_for("series.show", series_id=made.id))
            view = series.preview(session(), unit, current_user, rule)
        except DomainError as error:
            status = show_error(form, error)
            if error.code in SHOW_AGAIN:
                view = _preview_again(form, unit)
    elif request.method == "POST":
        status = form_status(form)
    form.seen.data = ",".join(d.isoformat() for d in view.free_dates) if view else ""
    return render_template("series/new.html", form=form, unit=unit, space=unit.space,
                           view=view, max_occurrences=series.MAX_OCCURRENCES), status


def _preview_again(form, unit) -> series.Preview | None:
    try:
        return series.preview(session(), unit, current_user, rule_of(form, unit))
    except DomainError:
        return None


@bp.get("/series/<int:series_id>")
@login_required
def show(series_id: int):
    found = _found(series.find, session(), series_id, current_user)
    rows = [(b, series.may_cancel(b, current_user)) for b in found.bookings]
    return render_template("series/show.html", series=found, rows=rows,
                           held=series.held(found), action_form=ActionForm())


@bp.get("/series/<int:series_id>.ics")
@login_required
def ics(series_id: int):
    found = _found(series.find, session(), series_id, current_user)
    return Response(calendars.series_ics(found, calendars.METHOD_PUBLISH),
                    mimetype="text/calendar", headers={
                        "Content-Disposition": f'attachment; filename="series-{found.id}.ics"',
                        "Cache-Control": "private, no-store"})


@bp.post("/series/<int:series_id>/occurrences/<reference>/cancel")
@login_required
def cancel_one(series_id: int, reference: str):
    found = _found(series.find, session(), series_id, current_user)
    form = ActionForm()
    result = submit(form, lambda: series.cancel_one(session(), found, reference, current_user))
    if result.done:
        flash(_l("%(date)sの予約をキャンセルしました。",
                 date=_local_date(result.value.starts_at)), "success")
    else:
        for message in form.form_errors or [_l("キャンセルできませんでした。")]:
            flash(message, "error")
    return redirect(url_for("series.show", series_id=found.id))


@bp.route("/series/<int:series_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel_all(series_id: int):
    found = _found(series.find, session(), series_id, current_user)
    form = CancelAllForm()
    result = submit(form, lambda: series.cancel_all(session(), found, current_user,
                                                    reason=form.reason.data or ""))
    if result.done:
        done = result.value
        flash(ngettext("%(num)d件の予約をキャンセルしました。", "%(num)d件の予約をキャンセルしました。",
                       len(done.cancelled)), "success")
        if done.kept:
            flash(ngettext("%(num)d件はキャンセル期限を過ぎているか終わっているため、そのまま残しました。",
                           "%(num)d件はキャンセル期限を過ぎているか終わっているため、そのまま残しました。",
                           len(done.kept)), "info")
        return redirect(url_for("series.show", series_id=found.id))
    rows = [(b, series.may_cancel(b, current_user)) for b in series.held(found)]
    return render_template("series/cancel.html", series=found, form=form, rows=rows), \
        result.status


def _local_date(value) -> str:
    from booking.formatting import local_date

    return local_date(value)
