"""The statement's month chooser (sent by GET)."""

from __future__ import annotations

from datetime import date

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Optional, Regexp, ValidationError

from booking import dates
from booking.forms import options


class StatementForm(FlaskForm):
    """?month=2026-12&era=wareki: read from the query string, no CSRF token."""

    class Meta:
        csrf = False

    month = StringField(_l("対象月"), validators=[
        Optional(), Regexp(r"^\d{4}-\d{2}$", message=_l("年と月を 2026-08 の形で入力してください。"))],
        description=_l("例: 2026-08"))
    era = SelectField(_l("日付の表記"), choices=options([("", _l("西暦")), ("wareki", _l("和暦"))]),
                      validators=[Optional()], default="")

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formdata", request.args)
        super().__init__(**kwargs)

    def validate_month(self, field) -> None:
        if not field.data or field.errors:
            return
        year, month = (int(x) for x in field.data.split("-"))
        # Within the dates the service works with (booking.dates); 0000-13 is no month.
        if not (1 <= month <= 12 and dates.EARLIEST.year <= year <= dates.latest().year
                and dates.supported(date(year, month, 1))):
            raise ValidationError(_l("対象月を正しく入力してください。"))

    def first_day(self, default: date) -> date:
        """The first day of the month chosen (the form is valid), else `default`'s."""
        if self.month.data:
            year, month = (int(x) for x in self.month.data.split("-"))
            return date(year, month, 1)
        return default.replace(day=1)

    @property
    def wareki(self) -> bool:
        return self.era.data == "wareki"

