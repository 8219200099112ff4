"""The series pages' forms, and their translation into a series.Rule."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from booking import dates
from booking.blueprints.bookings.forms import attendee_list
from booking.formatting import minutes_of
from booking.forms import DateField, options
from booking.labels import WEEKDAYS
from booking.models import PricePer, Unit, UnitKind
from booking.services import reservations, series

ATTENDEES_HELP = _l("1行に1件。参加者それぞれにカレンダーの招待が届きます。あなたには必ず届きます。")


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SeriesForm(FlaskForm):
    repeat = RadioField(_l("繰り返し"), default="weekly", choices=options([
        ("weekly", _l("毎週、選んだ曜日")), ("weekdays", _l("毎週平日(月〜金)"))]))
    weekdays = MultiCheckboxField(_l("曜日"), coerce=int, validators=[Optional()],
                                  choices=options(enumerate(WEEKDAYS)))
    first_date = DateField(_l("初日"), validators=[DataRequired()])
    last_date = DateField(_l("最終日"), validators=[DataRequired()],
                          description=_l("最大%(max)d回まで。休業日は予約しません。",
                                         max=series.MAX_OCCURRENCES))
    start_time = TimeField(_l("開始時刻"), validators=[Optional()])
    end_time = TimeField(_l("終了時刻"), validators=[Optional()])
    seats = IntegerField(_l("席数"), default=1,
                         validators=[DataRequired(), NumberRange(min=1, max=reservations.MAX_SEATS)])
    attendees = TextAreaField(_l("参加者のメールアドレス"), validators=[Optional(), Length(max=10000)],
                              description=ATTENDEES_HELP)
    note = TextAreaField(_l("施設へのメモ"), validators=[Optional(), Length(max=500)])
    accept_late = BooleanField(_l("キャンセル期限を過ぎた日は予約後にキャンセルできないことを確認しました"))
    # The dates the preview showed free, which "confirm" books (nothing else).
    seen = HiddenField()


def series_form(unit: Unit) -> SeriesForm:
    """The form with the fields of how the unit is let (hours for a room by the hour,
    seats for desks)."""
    form = SeriesForm()
    if unit.price_per != PricePer.HOUR:
        del form.start_time
        del form.end_time
    if unit.kind != UnitKind.DESK:
        del form.seats
    return form


def rule_of(form: SeriesForm, unit: Unit) -> series.Rule:
    """The rule the form asks for (DomainError beside its field when it cannot be)."""
    weekdays = (series.EVERY_WEEKDAY if form.repeat.data == "weekdays"
                else list(form.weekdays.data or []))
    start = end = None
    if "start_time" in form and form.start_time.data is not None:
        start = minutes_of(form.start_time.data)
    if "end_time" in form and form.end_time.data is not None:
        end = minutes_of(form.end_time.data)
    seats = form.seats.data if "seats" in form and form.seats.data else 1
    return series.rule_for(unit, weekdays, form.first_date.data, form.last_date.data, start, end,
                           seats)


def seen_dates(form: SeriesForm) -> list[date]:
    """The dates the preview showed free (the hidden field), those that parse."""
    return [d for d in (dates.parse(part) for part in (form.seen.data or "").split(",")) if d]


def attendees_of(form: SeriesForm) -> list[str]:
    return list(attendee_list(form.attendees.data))


class CancelAllForm(FlaskForm):
    reason = StringField(_l("キャンセルの理由(任意)"), validators=[Optional(), Length(max=500)])


class ActionForm(FlaskForm):
    """A button that changes something: the CSRF token only."""
