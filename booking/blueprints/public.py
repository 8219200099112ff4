"""Public pages: home, space pages, language switch."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, session
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField

from booking.extensions import db
from booking.forms import options
from booking.models import Space
from booking.services import spaces as space_service
from booking.web import local_path

bp = Blueprint("public", __name__)


class LanguageForm(FlaskForm):
    lang = SelectField(choices=options([("ja", "日本語"), ("en", "English")]))
    next = HiddenField()


@bp.app_context_processor
def _language_form():
    # Not bound to the request: the header's forms must render on any page, even an
    # error page for a request whose body could not be read (413).
    return {"language_form": lambda: LanguageForm(formdata=None)}


@bp.get("/")
def home():
    featured = db.session.scalars(
        space_service.public_spaces().order_by(Space.prefecture_code, Space.id).limit(12)
    ).all()
    return render_template("public/home.html", spaces=featured)


@bp.get("/spaces/<slug>")
def space(slug: str):
    found = db.session.scalar(space_service.public_spaces().where(Space.slug == slug))
    if found is None:
        abort(404)
    return render_template("public/space.html", space=found,
                           offers=space_service.campaign_offers(db.session, found))


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
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        from booking.web import problem

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
    from flask import current_app, send_file

    from booking.services import photos

    found = photos.open_photo(db.session, current_app.config["UPLOAD_DIR"], filename)
    if found is None:
        abort(404)
    path, mimetype = found
    return send_file(path, mimetype=mimetype, max_age=30 * 86400)
