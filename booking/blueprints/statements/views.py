"""The statement's page and files. Each loads the space through the console's service
(a refusal ends the request with its status: `_refused`), reads the month chooser and
asks services/statements.py for the statement; a month that is not one is shown beside
its field (422). Nothing is written: a statement is read, never stored.
"""

from __future__ import annotations

from datetime import date

from flask import Response, current_app, render_template
from flask_login import current_user
from werkzeug.exceptions import default_exceptions

from booking import clock
from booking.blueprints.statements import bp
from booking.blueprints.statements.forms import StatementForm
from booking.models import Space
from booking.services import space_admin, statements
from booking.services.errors import DomainError
from booking.unit_of_work import session


@bp.errorhandler(DomainError)
def _refused(error: DomainError):
    """Somebody else's space does not exist for the visitor (404), as in the console."""
    return current_app.handle_http_exception(default_exceptions[error.status]())


def _chosen(space_id: int) -> tuple[Space, StatementForm, date | None]:
    """The space (members of its organisation only), the month chooser, and the month
    chosen (None when the chooser's month is not one: the page says why beside it)."""
    found = space_admin.get_space(session(), current_user, space_id)
    form = StatementForm()
    return found, form, form.first_day(clock.today()) if form.validate() else None


def _page(found: Space, form: StatementForm, month: date | None):
    """The page: the month's statement, or this month's with the chooser's error (422)."""
    shown = month or clock.today().replace(day=1)
    statement = statements.statement(session(), current_user, found, shown)
    if not form.month.data:
        form.month.data = f"{shown:%Y-%m}"
    wareki = month is not None and form.wareki
    return render_template(
        "statements/month.html", space=found, form=form, statement=statement,
        era="wareki" if wareki else None, month_label=statements.month_label(shown, era=wareki),
        tax_note=statements.tax_note(statement), month_value=f"{shown:%Y-%m}"
    ), 200 if month is not None else 422


@bp.get("/spaces/<int:space_id>/statement")
def month(space_id: int):
    return _page(*_chosen(space_id))


def _file(body: bytes, name: str, mimetype: str) -> Response:
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


@bp.get("/spaces/<int:space_id>/statement.csv")
def csv(space_id: int):
    found, form, month = _chosen(space_id)
    if month is None:
        return _page(found, form, month)
    statement = statements.statement(session(), current_user, found, month)
    text = statements.lines_csv(statement, statements.era_dates(form.wareki))
    return _file(text.encode("utf-8"), statements.filename(statement, "", "csv"),
                 "text/csv")


@bp.get("/spaces/<int:space_id>/statement-totals.csv")
def totals_csv(space_id: int):
    found, form, month = _chosen(space_id)
    if month is None:
        return _page(found, form, month)
    statement = statements.statement(session(), current_user, found, month)
    return _file(statements.totals_csv(statement).encode("utf-8"),
                 statements.filename(statement, "-totals", "csv"), "text/csv")


@bp.get("/spaces/<int:space_id>/statement.pdf")
def pdf(space_id: int):
    found, form, month = _chosen(space_id)
    if month is None:
        return _page(found, form, month)
    statement = statements.statement(session(), current_user, found, month)
    body = statements.pdf_bytes(statement, issued_on=clock.today(),
                                dated=statements.era_dates(form.wareki),
                                month_label=statements.month_label(month, era=form.wareki))
    return _file(body, statements.filename(statement, "", "pdf"), "application/pdf")
