"""Small helpers shared by the forms of every blueprint."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import wtforms
from flask import request
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice

from booking import dates
from booking.services.errors import DomainError
from booking.web import local_date


def options(pairs: Iterable[tuple[object, object]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def form_status(form: FlaskForm) -> int:
    """422 when a submitted form has errors, so tests and clients can tell."""
    return 422 if request.method == "POST" and form.errors else 200


class DateField(wtforms.DateField):
    """A date input whose date lies in the range the service works with (booking.dates):
    anything else is an error beside the field and leaves the field's data None, so that
    even a view that reads the data without validating never sees 9999-12-31."""

    def process_formdata(self, valuelist) -> None:
        super().process_formdata(valuelist)
        if self.data is not None and not dates.supported(self.data):
            self.data = None
            raise ValueError(_("%(earliest)sから%(latest)sまでの日付を入力してください。",
                               earliest=local_date(dates.EARLIEST),
                               latest=local_date(dates.latest())))


def show_error(form: FlaskForm, error: DomainError) -> int:
    """Show a refusal on its form: beside the field it concerns, or at the top when the
    form has no such field, never nowhere. Returns the status to answer with."""
    field = form._fields.get(error.field) if error.field else None
    if field is not None and error.field not in getattr(form, "unshown", ()):
        field.errors = [*(field.errors or []), error.message]
    else:
        form.form_errors.append(error.message)
    return error.status


@dataclass(frozen=True)
class Submitted:
    """What became of a submitted form: done (the action ran; `value` is what it
    returned), or not (the page is shown again with `status`: 200 before any submission,
    422 for invalid fields, the refusal's own status)."""

    done: bool
    status: int
    value: Any = None


def submit(form: FlaskForm, action: Callable[[], Any]) -> Submitted:
    """Validate the form and, when it is valid, run `action` (one service call); a
    refusal (DomainError) is shown on the form by show_error. The one way a page handles
    a form: `result = submit(form, lambda: service.f(...)); if result.done: redirect`."""
    if not form.validate_on_submit():
        return Submitted(False, form_status(form))
    try:
        return Submitted(True, 200, action())
    except DomainError as error:
        return Submitted(False, show_error(form, error))
