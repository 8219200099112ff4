"""The booking pages' forms, and their translation into the commands the API shares
(booking.services.booking_requests)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from booking.formatting import minutes_of
from booking.forms import DateField
from booking.models import CampaignExtra, PricePer, Unit, UnitKind
from booking.services import reservations
from booking.services.availability import at
from booking.services.booking_requests import BookingRequest, ChangeRequest
from booking.services.errors import DomainError

ATTENDEES_HELP = _l("1行に1件。参加者それぞれにカレンダーの招待が届きます。あなたには必ず届きます。")


class BookingForm(FlaskForm):
    first_date = DateField(_l("日付"), validators=[DataRequired()])
    last_date = DateField(_l("最終日(複数日の場合)"), validators=[Optional()],
                          description=_l("営業日ごとに1件ずつ予約します。休業日は除きます。"))
    start_time = TimeField(_l("開始時刻"), validators=[Optional()])
    end_time = TimeField(_l("終了時刻"), validators=[Optional()])
    nights = IntegerField(_l("泊数"), validators=[Optional(), NumberRange(min=1, max=60)])
    seats = IntegerField(_l("席数"), default=1,
                         validators=[DataRequired(), NumberRange(min=1, max=reservations.MAX_SEATS)])
    attendees = TextAreaField(_l("参加者のメールアドレス"), validators=[Optional(), Length(max=10000)],
                              description=ATTENDEES_HELP)
    note = TextAreaField(_l("施設へのメモ"), validators=[Optional(), Length(max=500)])
    # Shown with the warning when the booking is past its cancellation deadline already
    # (services/cancellation.require_acknowledged).
    accept_late = BooleanField(_l("予約後はキャンセルできないことを確認しました"))
    # A fresh token per form shown: a second click of the same form books nothing more.
    submission = HiddenField()


class ChangeForm(FlaskForm):
    first_date = DateField(_l("日付"), validators=[DataRequired()])
    start_time = TimeField(_l("開始時刻"), validators=[Optional()])
    end_time = TimeField(_l("終了時刻"), validators=[Optional()])
    nights = IntegerField(_l("泊数"), validators=[Optional(), NumberRange(min=1, max=60)])
    seats = IntegerField(_l("席数"),
                         validators=[DataRequired(), NumberRange(min=1, max=reservations.MAX_SEATS)])
    attendees = TextAreaField(_l("参加者のメールアドレス"), validators=[Optional(), Length(max=10000)],
                              description=ATTENDEES_HELP)
    confirm = HiddenField()


class CancelForm(FlaskForm):
    reason = StringField(_l("キャンセルの理由(任意)"), validators=[Optional(), Length(max=500)])


class ActionForm(FlaskForm):
    """A button that changes something: the CSRF token only."""


# Which of the "when" fields a unit's form takes, by how it is let. A house's form shows
# no last day, but takes one: days of a stay are refused as the API refuses them.
WHEN_FIELDS = {
    PricePer.NIGHT: ("first_date", "nights", "last_date"),
    PricePer.HOUR: ("first_date", "start_time", "end_time"),
    PricePer.DAY: ("first_date", "last_date"),
}


def _fit_to(form: FlaskForm, unit: Unit) -> FlaskForm:
    """Drop the fields this unit's form does not show, so that an error about one of them
    is shown at the top of the form instead of beside a field nobody sees."""
    shown = WHEN_FIELDS.get(unit.price_per, WHEN_FIELDS[PricePer.DAY])
    for name in ("first_date", "last_date", "start_time", "end_time", "nights"):
        if name in form and name not in shown:
            del form[name]
    if unit.kind != UnitKind.DESK and "seats" in form:
        del form["seats"]  # let whole: always one
    # Taken but not shown: their errors go to the top (booking/templates/_forms.html).
    form.unshown = ["last_date"] if unit.price_per == PricePer.NIGHT and "last_date" in form else []
    return form


def extra_field(extra_id: int) -> str:
    return f"extra_{extra_id}"


def booking_form(unit: Unit, extras: list[CampaignExtra], locale: str) -> BookingForm:
    """The booking form for this unit, with a quantity field (0 by default) for each extra
    the slot's campaign lends."""
    if not extras:
        return _fit_to(BookingForm(), unit)
    form_class = type("BookingFormWithExtras", (BookingForm,), {
        extra_field(e.id): IntegerField(
            e.display_name(locale), default=0,
            validators=[Optional(), NumberRange(min=0, max=e.max_per_booking)])
        for e in extras
    })
    return _fit_to(form_class(), unit)


def change_form(unit: Unit) -> ChangeForm:
    return _fit_to(ChangeForm(), unit)


def _data(form: FlaskForm, name: str):
    return form[name].data if name in form else None


def _times(form: FlaskForm, unit: Unit) -> tuple[datetime | None, datetime | None]:
    """An hourly unit's start and end (24:00 written as 00:00 is the next midnight)."""
    if unit.price_per != PricePer.HOUR:
        return None, None
    day: date | None = _data(form, "first_date")
    start_time, end_time = _data(form, "start_time"), _data(form, "end_time")
    if day is None or start_time is None or end_time is None:
        return None, None
    start, end = minutes_of(start_time), minutes_of(end_time)
    return at(day, start), at(day, end if end > 0 else 1440)


def attendee_list(text: str | None) -> tuple[str, ...]:
    return tuple(p for p in (text or "").replace(",", "\n").replace(";", "\n").split() if p)


def _checked_hours(form: FlaskForm, unit: Unit) -> None:
    if unit.price_per == PricePer.HOUR and None in _times(form, unit):
        raise DomainError("bad_range")


def booking_request(form: BookingForm, unit: Unit, slot_id: int | None,
                    extra_names: list[str]) -> BookingRequest:
    """The command the form asks for (the API builds the same one from JSON)."""
    _checked_hours(form, unit)
    start, end = _times(form, unit)
    return BookingRequest(
        unit_id=unit.id, first_date=None if start else _data(form, "first_date"),
        last_date=_data(form, "last_date"), start=start, end=end,
        nights=_data(form, "nights"), seats=_data(form, "seats") or 1,
        attendees=attendee_list(form.attendees.data), note=form.note.data or "",
        slot_id=slot_id,
        extras={int(n.removeprefix("extra_")): form[n].data for n in extra_names if form[n].data})


def change_request(form: ChangeForm, unit: Unit) -> ChangeRequest:
    _checked_hours(form, unit)
    start, end = _times(form, unit)
    return ChangeRequest(
        first_date=None if start else _data(form, "first_date"), start=start, end=end,
        nights=_data(form, "nights"), seats=_data(form, "seats") or 1,
        # Not sent at all (a client that knows no such field): keep them as they are.
        attendees=attendee_list(form.attendees.data) if form.attendees.raw_data else None)


def form_hash(form: FlaskForm, unit: Unit, slot_id: int | None) -> str:
    """What the form asked for, so that a second click of the same form is recognised."""
    data = {k: str(v.data) for k, v in form._fields.items()
            if k not in ("csrf_token", "submission")}
    data["unit"], data["slot"] = unit.id, slot_id
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
