"""/api/v1/series: weekly series, one booking per date (services/series.py), as the series
pages do it: preview the rule (which dates are free), then book exactly the free dates
the preview showed (`dates`); a date taken since refuses the whole series (409
series_date_taken, nothing booked), so the client previews again. Idempotency-Key as for
POST /bookings. Someone else's series is a 404 not_found, the same answer as an id that
does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from flask import g, request
from pydantic import BaseModel, Field

from booking.blueprints.api import retries
from booking.blueprints.api.bookings import CancelIn, booking_json
from booking.blueprints.api.common import ApiDate, bp, parse_body, token_required
from booking.blueprints.api.openapi import operation
from booking.blueprints.api.schemas import Booking as BookingShape
from booking.blueprints.api.schemas import Series as SeriesShape
from booking.blueprints.api.schemas import SeriesCancelled, SeriesPreview
from booking.formatting import hhmm, parse_hhmm
from booking.models import Booking, BookingSeries, Unit
from booking.services import addresses, calendars, reservations, series
from booking.services.availability import TOKYO
from booking.unit_of_work import session

HHMM = r"^(?:[01]\d|2[0-3]):[0-5]\d$"


class SeriesIn(BaseModel):
    """A weekly rule: its weekdays from the first to the last date (at most
    26 dates), at the hours given for a unit let by the hour, else each day's opening
    hours. Units let by the night and members-only units take no series."""

    unit_id: int = Field(ge=1, le=2**31 - 1)
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        max_length=7, description="Monday = 0; [0, 1, 2, 3, 4] for every weekday")
    first_date: ApiDate
    last_date: ApiDate
    start: str | None = Field(default=None, pattern=HHMM,
                              description="Units let by the hour: each date's start (Tokyo)")
    end: str | None = Field(default=None, pattern=HHMM,
                            description="Units let by the hour: each date's end (Tokyo)")
    seats: int = Field(default=1, ge=1, le=reservations.MAX_SEATS)


class SeriesBookingIn(SeriesIn):
    dates: list[ApiDate] = Field(
        max_length=series.MAX_OCCURRENCES,
        description="The dates the preview showed free (its `free_dates`): exactly these "
                    "are booked, all or none")
    attendees: list[addresses.Address] = Field(
        default_factory=list, max_length=reservations.MAX_ATTENDEES)
    note: str = Field(default="", max_length=500)
    accept_late: bool = Field(default=False, description="Required true when a date is past "
                                                         "its cancellation deadline already")


def _unit_and_rule(body: SeriesIn) -> tuple[Unit, series.Rule]:
    """The unit as a series may be asked of it, and the body as the rule the series form
    builds (series.rule_for: its refusals beside their fields)."""
    unit = series.unit_for(session(), body.unit_id)
    return unit, series.rule_for(unit, body.weekdays, body.first_date, body.last_date,
                                 parse_hhmm(body.start), parse_hhmm(body.end), body.seats)


def _when(value: datetime | None) -> str | None:
    return value.astimezone(TOKYO).isoformat() if value is not None else None


def _rule_json(unit_id: int, rule: series.Rule | BookingSeries) -> dict:
    return {"unit_id": unit_id, "weekdays": list(series.weekday_codes(rule)),
            "first_date": rule.first_date.isoformat(), "last_date": rule.last_date.isoformat(),
            "start": hhmm(rule.start_min) if rule.start_min is not None else None,
            "end": hhmm(rule.end_min) if rule.end_min is not None else None,
            "seats": rule.seats}


def preview_json(view: series.Preview) -> dict:
    return {**_rule_json(view.unit.id, view.rule),
            "occurrences": [{"date": o.day.isoformat(), "state": o.state.value,
                             "start": _when(o.start), "end": _when(o.end),
                             "seats_free": o.seats_free, "late": o.late}
                            for o in view.occurrences],
            "free_dates": [d.isoformat() for d in view.free_dates], "late": view.late}


def series_json(found: BookingSeries) -> dict:
    return {**_rule_json(found.unit_id, found), "id": found.id,
            "space_id": found.unit.space_id, "space": found.unit.space.name,
            "unit": found.unit.name, "sequence": found.sequence,
            "url": calendars.series_url(found),
            "bookings": [booking_json(b) for b in found.bookings]}


def _find(series_id: int) -> BookingSeries:
    return series.find(session(), series_id, g.api_user)


@bp.post("/series/preview")
@operation(operation_id="previewSeries", tag="series",
           summary="Which dates of a weekly rule can be booked now (books nothing)",
           security="bearer", body=SeriesIn, responses={200: SeriesPreview},
           problems=(401, 404, 422),
           description="422 for a rule the unit cannot take (series_nights, members_only, "
                       "series_no_weekday, series_no_dates, series_too_many, series_hours, "
                       "too_short, too_long, bad_seats, whole_unit); 404 unavailable.")
@token_required
def preview_series():
    unit, rule = _unit_and_rule(parse_body(SeriesIn))
    return preview_json(series.preview(session(), unit, g.api_user, rule))


def _respond(made: list[Booking]) -> tuple[int, dict]:
    found = made[0].series
    assert found is not None  # every booking of a series names it
    return 201, series_json(found)


@bp.post("/series")
@operation(operation_id="createSeries", tag="series",
           summary="Book the free dates of a weekly rule, as previewed (send an "
                   "Idempotency-Key to make retries safe)",
           security="bearer", headers=(retries.IDEMPOTENCY_PARAM,), body=SeriesBookingIn,
           responses={201: SeriesShape},
           response_headers=retries.created_headers("The series' API URL"),
           problems=(401, 403, 404, 409, 422, 429),
           description="409 series_date_taken (naming the date) or series_changed when the "
                       "dates are no longer as previewed, series_nothing_free without dates: "
                       "nothing is booked, preview again. 422 late_unacknowledged without "
                       "`accept_late` for a date past its cancellation deadline; 429 over the "
                       "company's limits.")
@token_required
def create_series():
    body = parse_body(SeriesBookingIn)
    unit, rule = _unit_and_rule(body)
    idem = retries.idempotency(_respond)
    try:
        made = series.confirm(session(), unit, g.api_user, rule, body.dates,
                              attendees=[str(a) for a in body.attendees], note=body.note,
                              locale=g.api_user.locale, accept_late=body.accept_late,
                              idempotency=idem)
    except reservations.Replay as replay:
        return retries.replayed(replay)
    # The answer stored for replays, built once inside the transaction, is the one sent.
    status, answer = idem.answer if idem is not None and idem.answer else (201, series_json(made))
    return answer, status, {"Location": f"/api/v1/series/{made.id}"}


@bp.get("/series/<int:series_id>")
@operation(operation_id="getSeries", tag="series", summary="One series with its bookings",
           security="bearer", responses={200: SeriesShape}, problems=(401, 404))
@token_required
def get_series(series_id: int):
    return series_json(_find(series_id))


def _reason() -> str:
    """The optional body's reason, as DELETE /bookings/{reference} reads it."""
    data = request.get_json(silent=True)
    return str(data.get("reason", ""))[:500] if isinstance(data, dict) else ""


@bp.delete("/series/<int:series_id>")
@operation(operation_id="cancelSeries", tag="series",
           summary="Cancel every date that may still be cancelled (the rest are kept)",
           security="bearer", body=CancelIn, body_required=False,
           responses={200: SeriesCancelled}, problems=(401, 404))
@token_required
def cancel_series(series_id: int):
    found = _find(series_id)
    done = series.cancel_all(session(), found, g.api_user, reason=_reason())
    return {**series_json(found),
            "cancelled": [b.reference for b in done.cancelled],
            "kept": [b.reference for b in done.kept]}


@bp.delete("/series/<int:series_id>/bookings/<reference>")
@operation(operation_id="cancelSeriesBooking", tag="series",
           summary="Cancel one date of the series (until its cancellation deadline)",
           security="bearer", body=CancelIn, body_required=False,
           responses={200: BookingShape}, problems=(401, 404, 409),
           description="404 not_yours for a reference that is not one of the series' dates.")
@token_required
def cancel_series_booking(series_id: int, reference: str):
    found = _find(series_id)
    return booking_json(series.cancel_one(session(), found, reference, g.api_user,
                                          reason=_reason()))
