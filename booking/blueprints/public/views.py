"""The public pages' views: nobody needs to log in."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, send_file, session

from booking import unit_of_work
from booking.blueprints.public import bp
from booking.blueprints.public.forms import LanguageForm
from booking.services import health, photos, spaces
from booking.web import local_path, problem


@bp.app_context_processor
def _language_form():
    # Not bound to the request: the header's forms must render on any page, even an
    # error page for a request whose body could not be read (413).
    return {"language_form": lambda: LanguageForm(formdata=None)}


@bp.get("/")
def home():
    return render_template("public/home.html", spaces=spaces.featured(unit_of_work.session()))


@bp.get("/spaces/<slug>")
def space(slug: str):
    found = spaces.public_space(unit_of_work.session(), slug=slug)
    if found is None:
        abort(404)
    return render_template("public/space.html", space=found,
                           offers=spaces.campaign_offers(unit_of_work.session(), found))


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
        response = problem(503, "Service Unavailable", "The database is unavailable.",
                           checks={"database": "unavailable"})
        response.headers["Retry-After"] = "5"
        return response
    return {"status": "ready"}


@bp.get("/robots.txt")
def robots():
    return "User-agent: *\nDisallow: /calendar/\n", 200, {"Content-Type": "text/plain"}


@bp.get("/photos/<filename>")
def photo(filename: str):
    """A space's photo, by the random name the console gave it (services/photos.py)."""
    found = photos.open_photo(unit_of_work.session(), current_app.config["UPLOAD_DIR"], filename)
    if found is None:
        abort(404)
    path, mimetype = found
    return send_file(path, mimetype=mimetype, max_age=30 * 86400)
