"""The public pages' forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField

from booking.forms import options


class LanguageForm(FlaskForm):
    lang = SelectField(choices=options([("ja", "日本語"), ("en", "English")]))
    next = HiddenField()
