"""Small helpers shared by the forms of every blueprint."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import wtforms
from flask import request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice

from booking import dates
from booking.prefectures import choices as prefecture_choices
from booking.services.errors import DomainError
from booking.web import local_date


def options(pairs: Iterable[tuple[object, object]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def prefecture_options(locale: str) -> list[SelectChoice]:
    """A required prefecture select's options: first the placeholder, whose value is the
    empty string (a required select must start with one: HTML), then the prefectures named
    in the locale. Use with coerce=coerce_prefecture."""
    return options([("", "—"), *prefecture_choices(locale)])


def coerce_prefecture(value: object) -> int:
    """The prefecture select's coerce: the placeholder ("") is 0, no prefecture (falsy, so
    DataRequired refuses it); a prefecture's code is its number."""
    if value is None or value == "":
        return 0
    return int(value)  # type: ignore[call-overload]


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


class PostalCodeForm:
    """A form with `postal_code` and its 「住所を入力」 button (`fill_address`): pressing the
    button sends the form, which comes back with the prefecture, city and address filled
    from the code and nothing saved (works without JavaScript; static/js/postal-code.js
    does the same round trip in place). The form names its prefecture, city (None: it has
    none) and address fields; the address is the part after the prefecture (city and town),
    as the forms' labels say."""

    postal_fields: tuple[str, str | None, str] = ("prefecture_code", "city", "address")

    postal_code = wtforms.StringField(
        _l("郵便番号"), validators=[wtforms.validators.Optional(), wtforms.validators.Length(max=10)],
        description=_l("7桁(例: 422-8035)。「住所を入力」で都道府県と住所が入ります。"))
    fill_address = wtforms.SubmitField(_l("住所を入力"))

    def wants_address(self) -> bool:
        form: Any = self
        return bool(form.is_submitted() and form.fill_address.data)

    def fill_address_from_code(self) -> int:
        """Fill the address fields from the postal code (the page's status: 200, or the
        refusal's, shown beside the postal code field)."""
        from booking.services import postal

        form: Any = self
        try:
            found = postal.lookup(form.postal_code.data)
        except DomainError as error:
            return show_error(form, error)
        prefecture, city, address = self.postal_fields
        form.postal_code.data = found.formatted_code
        form[prefecture].data = found.prefecture_code
        if city is not None:
            form[city].data = found.city
        form[address].data = found.city + found.town  # the address after the prefecture
        return 200

    def validate_postal_code(self, field) -> None:
        from booking.services import postal

        if (field.data or "").strip():
            code = postal.normalise_code(field.data)
            if code is None:
                raise wtforms.ValidationError(DomainError("invalid_postal_code").message)
            field.data = f"{code[:3]}-{code[3:]}"

    def postal_code_value(self) -> str:
        """What is saved: '422-8035' (validated), or '' when left empty."""
        form: Any = self
        return (form.postal_code.data or "").strip()
