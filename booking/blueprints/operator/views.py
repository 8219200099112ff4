"""The console's pages: load through a service (whose refusal of access ends the
request: see `_refused`), parse a form, call one service, redirect; a refused change
is shown on its page with the refusal's status. The request's edge commits or rolls
back (booking.unit_of_work); the services decide who may do what (booking.services.access).
"""

from __future__ import annotations

from datetime import date

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import default_exceptions

from booking import clock
from booking.blueprints.operator import bp
from booking.blueprints.operator.forms import (
    ActionForm,
    CancelForm,
    ClosureForm,
    DayForm,
    ExportForm,
    HoursForm,
    MonthForm,
    OverrideForm,
    PhotoForm,
    SpaceForm,
    UnitForm,
)
from booking.forms import form_status, show_error
from booking.models import Booking, Space
from booking.services import (
    access,
    calendars,
    campaign_management,
    closures,
    console_home,
    exports,
    front_desk,
    space_admin,
)
from booking.services import photos as photo_service
from booking.services.errors import DomainError
from booking.unit_of_work import session

DAY_STATES = {
    "closed": _l("休業"),
    "full": _l("満席"),
    "few": _l("残りわずか"),
    "free": _l("空きあり"),
}


@bp.errorhandler(DomainError)
def _refused(error: DomainError):
    """A refusal no view shows on its own page (what the user may not see, or may not
    do: a loader's "not found", an owner's action asked by staff): the HTTP error page
    with the refusal's status."""
    return current_app.handle_http_exception(default_exceptions[error.status]())


def _geocoder():
    """The online geocoder when configured (GEOCODER=nominatim), else None: offline."""
    from booking.services import geocoding

    return geocoding.geocoder_from_config(current_app.config)


# --------------------------------------------------------------------------------------
# Spaces


@bp.get("/")
def index():
    orgs = space_admin.organisations_of(current_user)
    return render_template("operator/index.html", organisations=orgs,
                           spaces=space_admin.spaces_of(session(), orgs), today=clock.today(),
                           consents=campaign_management.waiting_consents(session(), current_user),
                           home=console_home.today_for(session(), current_user),
                           action=ActionForm())


def _space_form_page(form: SpaceForm, space: Space | None = None, organisation=None,
                     status: int = 200):
    return render_template("operator/space_form.html", form=form, space=space,
                           organisation=organisation,
                           tile_url=current_app.config["MAP_TILE_URL"],
                           tile_attribution=current_app.config["MAP_TILE_ATTRIBUTION"]), status


@bp.route("/organisations/<int:org_id>/spaces/new", methods=["GET", "POST"])
def space_new(org_id: int):
    org = space_admin.get_organisation(session(), current_user, org_id)
    form = SpaceForm()
    if not form.is_submitted():
        form.prefecture_code.data = org.prefecture_code or 0
    if form.wants_address():  # 「住所を入力」: the form again, filled, nothing saved
        return _space_form_page(form, organisation=org, status=form.fill_address_from_code())
    if form.validate_on_submit():
        try:
            space = space_admin.create_space(
                session(), current_user, org, form.values(),
                hours=dict.fromkeys(range(5), (540, 1080)),  # a start; edited on the hours page
                geocoder=_geocoder())
        except DomainError as error:
            return _space_form_page(form, organisation=org, status=show_error(form, error))
        flash(_l("施設を登録しました。営業時間と区画を設定してください。"), "success")
        return redirect(url_for("operator.space", space_id=space.id))
    return _space_form_page(form, organisation=org, status=form_status(form))


@bp.get("/spaces/<int:space_id>")
def space(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    feed = webcal = None
    if found.calendar_secret:
        feed = calendars.feed_url(found.calendar_secret)
        webcal = calendars.webcal_url(found.calendar_secret)
    today = clock.today()
    return render_template(
        "operator/space.html", space=found, action=ActionForm(), today=today,
        is_owner=access.allowed(current_user, "own", found), feed=feed, webcal=webcal,
        export=ExportForm(formdata=None, start=today.replace(day=1), end=today),
    )


@bp.route("/spaces/<int:space_id>/edit", methods=["GET", "POST"])
def space_edit(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    form = SpaceForm(obj=found)
    if form.wants_address():  # 「住所を入力」: the form again, filled, nothing saved
        return _space_form_page(form, space=found, organisation=found.organisation,
                                status=form.fill_address_from_code())
    if form.validate_on_submit():
        try:
            space_admin.update_space(session(), current_user, found, form.values(),
                                     regeocode=bool(form.regeocode.data), geocoder=_geocoder())
        except DomainError as error:
            return _space_form_page(form, space=found, organisation=found.organisation,
                                    status=show_error(form, error))
        flash(_l("施設の情報を保存しました。"), "success")
        return redirect(url_for("operator.space", space_id=found.id))
    return _space_form_page(form, space=found, organisation=found.organisation,
                            status=form_status(form))


@bp.post("/spaces/<int:space_id>/publish")
def space_publish(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    publish = request.form.get("published") == "1"
    space_admin.set_published(session(), current_user, found, publish)
    flash(_l("公開しました。") if publish else _l("非公開にしました。"), "success")
    return redirect(url_for("operator.space", space_id=found.id))


@bp.post("/spaces/<int:space_id>/delete")
def space_delete(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    try:
        space_admin.delete_space(session(), current_user, found)
    except DomainError as error:
        if error.code != "has_bookings":
            raise
        # Said on the space's own page, which offers what to do instead (unpublish).
        flash(error.message, "error")
        return redirect(url_for("operator.space", space_id=space_id))
    flash(_l("施設を削除しました。"), "success")
    return redirect(url_for("operator.index"))


def _conflict(error: DomainError) -> dict:
    """What a page shows of a change refused for the bookings it would leave without a
    seat: the refusal and those bookings (operator/_macros.html affected_list)."""
    return {"conflict": error.message, "affected": error.extra.get("affected", [])}


@bp.route("/spaces/<int:space_id>/hours", methods=["GET", "POST"])
def hours(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    form = HoursForm().show(found)
    if form.validate_on_submit():
        try:
            space_admin.set_hours(session(), current_user, found, form.hours(),
                                  bool(form.closed_on_holidays.data))
        except DomainError as error:
            if error.code != "capacity_conflict":
                raise
            return render_template("operator/hours.html", space=found, form=form,
                                   **_conflict(error)), error.status
        flash(_l("営業時間を保存しました。"), "success")
        return redirect(url_for("operator.space", space_id=found.id))
    return render_template("operator/hours.html", space=found, form=form), form_status(form)


# --------------------------------------------------------------------------------------
# Units


def _unit_form_page(form: UnitForm, space: Space, unit=None, status: int = 200, **extra):
    return render_template("operator/unit_form.html", form=form, space=space, unit=unit,
                           is_owner=access.allowed(current_user, "own", space),
                           **extra), status


@bp.route("/spaces/<int:space_id>/units/new", methods=["GET", "POST"])
def unit_new(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    access.require(current_user, "own", found)  # the form itself is for owners (403)
    form = UnitForm()
    if form.validate_on_submit():
        unit = space_admin.create_unit(session(), current_user, found, form.values(True))
        flash(_l("区画を追加しました。"), "success")
        return redirect(url_for("operator.month", unit_id=unit.id))
    return _unit_form_page(form, found, status=form_status(form))


@bp.route("/units/<int:unit_id>/edit", methods=["GET", "POST"])
def unit_edit(unit_id: int):
    unit = space_admin.get_unit(session(), current_user, unit_id)
    owner = access.allowed(current_user, "own", unit)
    form = UnitForm(obj=unit).show(unit, owner)
    if form.validate_on_submit():
        try:
            space_admin.update_unit(session(), current_user, unit, form.values(with_price=owner))
        except DomainError as error:
            if error.code != "capacity_conflict":
                raise
            return _unit_form_page(form, unit.space, unit=unit, status=error.status,
                                   **_conflict(error))
        flash(_l("区画を保存しました。"), "success")
        return redirect(url_for("operator.space", space_id=unit.space_id))
    return _unit_form_page(form, unit.space, unit=unit, status=form_status(form))


@bp.post("/units/<int:unit_id>/delete")
def unit_delete(unit_id: int):
    unit = space_admin.get_unit(session(), current_user, unit_id)
    space_id = unit.space_id
    try:
        space_admin.delete_unit(session(), current_user, unit)
    except DomainError as error:
        if error.code != "has_bookings":
            raise
        flash(error.message, "error")
    else:
        flash(_l("区画を削除しました。"), "success")
    return redirect(url_for("operator.space", space_id=space_id))


def _weeks(cells: list) -> list[list]:
    """The month's days in rows of Monday to Sunday, padded with None."""
    weeks: list[list] = [[None] * cells[0].day.weekday()]
    for cell in cells:
        if len(weeks[-1]) == 7:
            weeks.append([])
        weeks[-1].append(cell)
    weeks[-1].extend([None] * (7 - len(weeks[-1])))
    return weeks


@bp.get("/units/<int:unit_id>/month")
def month(unit_id: int):
    unit = space_admin.get_unit(session(), current_user, unit_id)
    form = MonthForm()
    today = clock.today()
    first = form.first_day(today)
    cells = front_desk.month_view(session(), current_user, unit, first.year, first.month)
    prev_month = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    next_month = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return render_template("operator/month.html", unit=unit, space=unit.space, first=first,
                           weeks=_weeks(cells), cells=cells, states=DAY_STATES, form=form,
                           prev_month=prev_month, next_month=next_month, today=today), \
        422 if form.errors else 200


# --------------------------------------------------------------------------------------
# Closures and capacity overrides


def _availability_page(found: Space, closure_form: ClosureForm | None = None,
                       override_form: OverrideForm | None = None, status: int = 200,
                       **conflict):
    """The page of both forms: the one sent as it was sent, the other empty."""
    if closure_form is None:
        closure_form = ClosureForm(formdata=None, prefix="closure").with_units(found, fresh=True)
    if override_form is None:
        override_form = OverrideForm(formdata=None, prefix="override").with_units(found,
                                                                                  fresh=True)
    return render_template(
        "operator/availability.html", space=found,
        closures=closures.closures_ahead(session(), found, clock.today()),
        overrides=closures.overrides_ahead(session(), found, clock.today()),
        closure_form=closure_form, override_form=override_form, action=ActionForm(), **conflict), status


@bp.get("/spaces/<int:space_id>/availability")
def availability(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    return _availability_page(found)


@bp.post("/spaces/<int:space_id>/closures")
def closure_add(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    form = ClosureForm(prefix="closure").with_units(found)
    if not form.validate_on_submit():
        return _availability_page(found, closure_form=form, status=422)
    try:
        closures.add_closure(session(), current_user, closures.units_of(found, form.units.data),
                             form.start.data, form.end.data, form.reason.data or "")
    except DomainError as error:
        if error.code != "capacity_conflict":
            raise
        return _availability_page(found, closure_form=form, status=error.status,
                                  **_conflict(error))
    flash(_l("休業日を登録しました。"), "success")
    return redirect(url_for("operator.availability", space_id=space_id))


@bp.post("/spaces/<int:space_id>/closures/<int:closure_id>/delete")
def closure_delete(space_id: int, closure_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    closure = closures.get_closure(session(), current_user, found, closure_id)
    closures.delete_closure(session(), current_user, closure)
    flash(_l("休業日を取り消しました。"), "success")
    return redirect(url_for("operator.availability", space_id=space_id))


@bp.post("/spaces/<int:space_id>/overrides")
def override_add(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    form = OverrideForm(prefix="override").with_units(found)
    if not form.validate_on_submit():
        return _availability_page(found, override_form=form, status=422)
    try:
        closures.set_override(session(), current_user, closures.units_of(found, form.units.data),
                              form.start.data, form.end.data, form.capacity.data,
                              form.reason.data or "")
    except DomainError as error:
        if error.code == "capacity_conflict":
            return _availability_page(found, override_form=form, status=error.status,
                                      **_conflict(error))
        if error.code == "not_found":
            raise
        # e.g. more than 1 seat on a room: said beside the seats
        return _availability_page(found, override_form=form, status=show_error(form, error))
    flash(_l("席数の変更を登録しました。"), "success")
    return redirect(url_for("operator.availability", space_id=space_id))


@bp.post("/spaces/<int:space_id>/overrides/<int:override_id>/delete")
def override_delete(space_id: int, override_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    override = closures.get_override(session(), current_user, found, override_id)
    try:
        closures.delete_override(session(), current_user, override)
    except DomainError as error:
        if error.code != "capacity_conflict":
            raise
        return _availability_page(found, status=error.status, **_conflict(error))
    flash(_l("席数の変更を取り消しました。"), "success")
    return redirect(url_for("operator.availability", space_id=space_id))


# --------------------------------------------------------------------------------------
# Bookings: the day's list, check-in, no-show, cancel, CSV, calendar feed


def _day_page(found: Space, day: date, form: DayForm, action: ActionForm | None = None,
              status: int = 200):
    sheet = front_desk.day_sheet(session(), current_user, found, day)
    return render_template("operator/day.html", space=found, day=day,
                           bookings=sheet.bookings, counts=sheet.seats,
                           allowed=sheet.actions, form=form,
                           action=action or ActionForm()), status


@bp.get("/spaces/<int:space_id>/day")
def day(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    form = DayForm()
    chosen = form.day.data if form.validate() and form.day.data else clock.today()
    if not form.errors:
        form.day.data = chosen  # the date input shows the day listed
    return _day_page(found, chosen, form, status=422 if form.errors else 200)


def _day_url(booking: Booking) -> str:
    return url_for("operator.day", space_id=booking.unit.space_id,
                   day=front_desk.day_of(booking).isoformat())


def _front_desk_action(booking_id: int, act, done: str):
    """Check-in or no-show: back to the day's list; a refusal is shown on that list
    with its status (409 for a booking not in a state or at a time for it)."""
    booking = front_desk.get_booking(session(), current_user, booking_id)
    try:
        act(session(), current_user, booking)
    except DomainError as error:
        if error.code in ("not_found", "not_yours"):
            raise
        action = ActionForm()
        status = show_error(action, error)
        day = front_desk.day_of(booking)
        return _day_page(booking.unit.space, day, DayForm(formdata=None, day=day),
                         action=action, status=status)
    flash(done % {"ref": booking.reference}, "success")
    # A button on the console home brings the desk back there (back=home).
    return redirect(url_for("operator.index") if request.form.get("back") == "home"
                    else _day_url(booking))


@bp.post("/bookings/<int:booking_id>/check-in")
def check_in(booking_id: int):
    return _front_desk_action(booking_id, front_desk.check_in,
                              _l("%(ref)s をチェックインにしました。"))


@bp.post("/bookings/<int:booking_id>/no-show")
def no_show(booking_id: int):
    return _front_desk_action(booking_id, front_desk.mark_no_show,
                              _l("%(ref)s を来場なしにしました。"))


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
def cancel(booking_id: int):
    booking = front_desk.get_booking(session(), current_user, booking_id)
    form = CancelForm()
    status = 200
    if form.validate_on_submit():
        try:
            front_desk.cancel_on_behalf(session(), current_user, booking,
                                        form.reason.data.strip())
        except DomainError as error:
            if error.code in ("not_found", "not_yours"):
                raise
            status = show_error(form, error)
        else:
            flash(_l("%(ref)s をキャンセルし、お客様に連絡しました。", ref=booking.reference),
                  "success")
            return redirect(_day_url(booking))
    else:
        status = form_status(form)
    return render_template("operator/cancel.html", booking=booking, space=booking.unit.space,
                           form=form, back=_day_url(booking)), status


@bp.get("/spaces/<int:space_id>/export.csv")
def export(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    form = ExportForm()
    if not form.validate():
        return render_template("operator/export.html", space=found, form=form), 422
    first, last = form.start.data, form.end.data
    text = exports.bookings_csv(session(), current_user, found, first, last)
    name = exports.csv_filename(found, first, last)
    return Response(text.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


@bp.post("/spaces/<int:space_id>/calendar")
def calendar_new(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    exports.new_calendar_secret(session(), current_user, found)
    flash(_l("カレンダーの購読URLを発行しました。以前のURLは使えなくなります。"), "success")
    return redirect(url_for("operator.space", space_id=space_id, _anchor="calendar"))


@bp.post("/spaces/<int:space_id>/calendar/revoke")
def calendar_revoke(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    exports.revoke_calendar_secret(session(), current_user, found)
    flash(_l("カレンダーの購読URLを無効にしました。"), "success")
    return redirect(url_for("operator.space", space_id=space_id, _anchor="calendar"))


# --------------------------------------------------------------------------------------
# Photos


@bp.route("/spaces/<int:space_id>/photos", methods=["GET", "POST"])
def photos(space_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    form = PhotoForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        try:
            photo_service.add_photo(session(), current_user, found,
                                    current_app.config["UPLOAD_DIR"], upload.filename,
                                    upload.read(photo_service.MAX_BYTES + 1), form.alt.data or "")
        except DomainError as error:
            if error.code == "not_found":
                raise
            status = show_error(form, error)
        else:
            flash(_l("写真を追加しました。"), "success")
            return redirect(url_for("operator.photos", space_id=space_id))
    else:
        status = form_status(form)
    return render_template("operator/photos.html", space=found, form=form,
                           action=ActionForm()), status


@bp.errorhandler(413)
def _too_large(error):
    """An upload over MAX_CONTENT_LENGTH. The request body cannot be read, and the site's
    layout reads it (its header forms), so this page is a plain one."""
    back = request.path if request.path.endswith("/photos") else url_for("operator.index")
    return render_template("operator/too_large.html", back=back), 413


@bp.post("/spaces/<int:space_id>/photos/<int:photo_id>/delete")
def photo_delete(space_id: int, photo_id: int):
    found = space_admin.get_space(session(), current_user, space_id)
    photo = photo_service.get_photo(session(), current_user, found, photo_id)
    photo_service.delete_photo(session(), current_user, photo, current_app.config["UPLOAD_DIR"])
    flash(_l("写真を削除しました。"), "success")
    return redirect(url_for("operator.photos", space_id=space_id))


# --------------------------------------------------------------------------------------
# Leaflet for the map: served by the search blueprint from the xstatic-leaflet package (never
# from a CDN: the CSP allows only this site's scripts). Without it the map is left out and
# the coordinates are typed.


@bp.context_processor
def _leaflet_asset():
    def leaflet_asset(filename: str) -> str | None:
        if "search.leaflet" not in current_app.view_functions:
            return None
        return url_for("search.leaflet", filename=filename)

    return {"leaflet_asset": leaflet_asset}
