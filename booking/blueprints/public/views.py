"""The public pages' views: nobody needs to log in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from babel.dates import format_date
from flask import (
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session,
)
from flask_login import current_user
from markupsafe import Markup

from booking import dates, unit_of_work
from booking.blueprints.public import bp
from booking.blueprints.public.forms import LanguageForm
from booking.formatting import current_locale
from booking.models import Space
from booking.services import free_time, health, photos, space_members, spaces
from booking.web import local_path, problem

_WEEKDAYS_JA = "月火水木金土日"
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@bp.app_template_global()
def weekday_short(weekday: int) -> str:
    """月 … 日, Mon … Sun (Monday = 0): a calendar's column, a summary of opening hours."""
    return _WEEKDAYS_JA[weekday] if current_locale() == "ja" else _WEEKDAYS_EN[weekday]


@bp.app_template_global()
def week_groups(space: Space) -> list[free_time.WeekGroup]:
    """The space's week in runs of equal hours (free_time.week_groups), for the one-line
    summary (_free_time.html hours_summary) on every page that states its hours."""
    return free_time.week_groups(space)


@bp.app_template_global()
def month_label(first: date) -> str:
    """2026年12月, December 2026."""
    if current_locale() == "ja":
        return f"{first.year}年{first.month}月"
    return format_date(first, "LLLL y", locale="en")


@bp.get("/")
def home():
    return render_template("public/home.html", spaces=spaces.featured(unit_of_work.session()))


@bp.get("/spaces/<slug>")
def space(slug: str):
    # What changes only with the catalogue is kept in memory while the change log says it
    # has not changed (spaces.page); free time is worked out from this request's bookings.
    page = spaces.page(unit_of_work.session(), slug)
    if page is None:
        abort(404)
    found = page.space
    # ?month=YYYY-MM: the month of the calendars; ?day=YYYY-MM-DD: the day of the rooms' hours.
    # A member of the space books its members-only units directly (space_members).
    member = found.id in space_members.spaces_of(unit_of_work.session(), current_user)
    free = free_time.for_space(unit_of_work.session(), found,
                               month_of=free_time.parse_month(request.args.get("month")),
                               day=dates.parse(request.args.get("day")), member=member,
                               kept=page)
    # The content is a function of these and of the locale, the arguments and the app's
    # URLs: kept by them (nothing per user in it; the header around it is rendered anew).
    key = (current_locale(), member, request.script_root,
           tuple(sorted(request.args.items(multi=True))), free_time.fingerprint(free))
    body = spaces.kept_body(page, key, lambda: render_template(
        "public/_space_body.html", space=found, free=free, member=member,
        week=free_time.week_groups(found), offers=page.offers))
    return render_template("public/space.html", space=found, body=Markup(body))


@bp.post("/language")
def language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
    # Only a path on this site: never an open redirect.
    return redirect(local_path(form.next.data))


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    if not health.database_ready(unit_of_work.session()):
        response = problem(503, "service_unavailable", "The database is unavailable.",
                           checks={"database": "unavailable"})
        response.headers["Retry-After"] = "5"
        return response
    return {"status": "ready"}


@bp.get("/robots.txt")
def robots():
    return "User-agent: *\nDisallow: /calendar/\n", 200, {"Content-Type": "text/plain"}


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page links: the site's icon (a few KB,
    answered from memory: no file handle left to the client to close)."""
    icon = Path(current_app.static_folder or "", "img", "favicon.ico").read_bytes()
    return icon, 200, {"Content-Type": "image/vnd.microsoft.icon",
                       "Cache-Control": "public, max-age=86400"}


@bp.get("/photos/<filename>")
def photo(filename: str):
    """A space's photo, by the random name the console gave it (services/photos.py)."""
    found = photos.open_photo(unit_of_work.session(), current_app.config["UPLOAD_DIR"], filename)
    if found is None:
        abort(404)
    path, mimetype = found
    return send_file(path, mimetype=mimetype, max_age=30 * 86400)
