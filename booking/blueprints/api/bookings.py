"""POST/GET/DELETE /api/v1/bookings (shared/API.md), with Idempotency-Key on POST.

The views parse and call booking.services.reservations; the rules live there. A retry
with the same Idempotency-Key and the same body gets the first answer (status and body)
again and books nothing; the same key with another body is a 422. Only successful
answers are kept: a refused request booked nothing, so retrying it is safe.
"""

from __future__ import annotations

from typing import Annotated

from flask import g, request
from pydantic import BaseModel, Field, StringConstraints, model_validator

from booking.blueprints.api import retries
from booking.blueprints.api.common import (
    ApiDate,
    ApiDatetime,
    InvalidInput,
    bp,
    parse_body,
    problem,
    token_required,
    token_required_before_a_decision,
)
from booking.blueprints.api.openapi import operation
from booking.blueprints.api.schemas import Booking as BookingShape
from booking.blueprints.api.schemas import BookingCreated, BookingList
from booking.models import Booking, BookingStatus, WaitlistEntry
from booking.services import (
    addresses,
    booking_requests,
    calendars,
    campaign_extras,
    cancellation,
    pricing,
    receipts,
    reservations,
)
from booking.services.availability import TOKYO
from booking.services.booking_requests import BookingRequest, ChangeRequest
from booking.unit_of_work import session

# An extra's id as a JSON object key: digits only, below 2^31 (the id column's range).
ExtraKey = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,8}$")]


class BookingIn(BaseModel):
    unit_id: int = Field(ge=1, le=2**31 - 1)  # the id column's range: a 422, not a 500
    date: ApiDate | None = Field(
        default=None, description="One day (Asia/Tokyo): its opening hours; for a unit let "
        "by the night, the check-in day of a stay of `nights`")
    dates: list[ApiDate] | None = Field(
        default=None, max_length=reservations.MAX_PERIODS,
        description="Several days, one booking each (all or none); not for units let by "
                    "the night (a 422 whole_stays)")
    start: ApiDatetime | None = None
    end: ApiDatetime | None = None
    nights: int | None = Field(default=None, ge=1, le=60,
                               description="Whole houses: nights from `date`")
    seats: int = Field(default=1, ge=1, le=reservations.MAX_SEATS)
    attendees: list[addresses.Address] = Field(
        default_factory=list, max_length=reservations.MAX_ATTENDEES)
    campaign: str | None = Field(default=None, max_length=80)
    note: str = Field(default="", max_length=500)
    extras: dict[ExtraKey, Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=dict, max_length=50,
        description='Extras of the campaign lent with the booking, {"<extra id>": quantity} '
                    "(0 or absent: none). Only with `campaign`. An extra not offered or more "
                    "than its per-booking limit: 422; not enough left: 409 with `available`.",
        json_schema_extra={"additionalProperties": False})

    @model_validator(mode="after")
    def _one_way_to_say_when(self):
        given = [self.date is not None, bool(self.dates), self.start is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of date, dates, or start and end")
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end go together")
        if self.start is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class BookingChange(BaseModel):
    seats: int | None = Field(default=None, ge=1, le=reservations.MAX_SEATS)
    date: ApiDate | None = Field(default=None, description="A new day (a stay keeps its nights)")
    attendees: list[addresses.Address] | None = Field(
        default=None, max_length=reservations.MAX_ATTENDEES,
        description="The attendees from now on (those left out are sent the cancellation)")
    start: ApiDatetime | None = None
    end: ApiDatetime | None = None

    @model_validator(mode="after")
    def _times(self):
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end go together")
        if self.start is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CancelIn(BaseModel):
    """The optional body of a cancellation."""

    reason: str = Field(default="", description="Why (its first 500 characters are kept)")


class ListParams(BaseModel):
    """Query of GET /bookings (documentation: the view reads the arguments itself)."""

    status: BookingStatus | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=100)


def breakdown_json(booking: Booking) -> dict:
    money = pricing.of_booking(booking)
    return {"base": money.base, "campaign_discount": money.discount,
            "municipality_pays": money.subsidy, "company_pays": money.company_pays,
            "consumption_tax": money.tax, "tax_rate_percent": money.tax_percent}


def place_json(held: Booking | WaitlistEntry) -> dict:
    """Where, when and how many seats a booking or a waitlist entry is for."""
    return {
        "unit_id": held.unit_id,
        "space_id": held.unit.space_id,
        "space": held.unit.space.name,
        "unit": held.unit.name,
        "start": held.starts_at.astimezone(TOKYO).isoformat(),
        "end": held.ends_at.astimezone(TOKYO).isoformat(),
        "seats": held.seats,
    }


def booking_json(booking: Booking) -> dict:
    slot = booking.campaign_slot
    return {
        "reference": booking.reference,
        "status": booking.status.value,
        **place_json(booking),
        "price": {"amount": booking.price_amount, "currency": "JPY",
                  "subsidy": booking.subsidy_amount},
        "price_breakdown": breakdown_json(booking),
        "cancel_deadline": cancellation.deadline_of(booking.unit, booking.starts_at)
        .astimezone(TOKYO).isoformat(),
        "campaign": slot.campaign.slug if slot is not None else None,
        "attendees": [a.email for a in booking.attendees],
        "extras": _extras_json(booking),
        "sequence": booking.sequence,
        "series_id": booking.series_id,
        "ics_url": calendars.ics_url(booking),
        "url": calendars.booking_url(booking),
        # Its receipt, invoice, usage certificate or credit note (PDF), issued on first
        # download; null when there is none (an offer, a booking cancelled before issue).
        "receipt_url": f"{calendars.booking_url(booking)}/receipt"
        if receipts.available(session(), booking) else None,
    }


def _extras_json(booking: Booking) -> list[dict]:
    if booking.campaign_slot_id is None:  # only campaign bookings hold extras
        return []
    return [{"id": line.extra_id, "name": line.extra.name, "quantity": line.quantity}
            for line in campaign_extras.booking_extras(session(), booking)]


def _command(body: BookingIn) -> BookingRequest:
    """The JSON body as the command the booking form builds too."""
    return BookingRequest(
        unit_id=body.unit_id, first_date=body.date, dates=tuple(body.dates or ()),
        start=body.start, end=body.end, nights=body.nights, seats=body.seats,
        attendees=tuple(str(a) for a in body.attendees), note=body.note,
        campaign=body.campaign, extras={int(k): v for k, v in body.extras.items()})


def _respond(made: list[Booking]) -> tuple[int, dict]:
    body = booking_json(made[0])
    if len(made) > 1:
        body["bookings"] = [booking_json(b) for b in made]
    return 201, body


@bp.post("/bookings")
@operation(operation_id="createBooking", tag="bookings",
           summary="Book seats (send an Idempotency-Key to make retries safe)",
           security="bearer", headers=(retries.IDEMPOTENCY_PARAM,), body=BookingIn,
           responses={201: BookingCreated},
           response_headers=retries.created_headers("The booking's API URL"),
           problems=(401, 403, 404, 409, 422, 429),
           description="409 not_enough_seats with `available`; 403 when a campaign's rules "
                       "exclude the company; 429 over the company's booking or invitation "
                       "limits.")
@token_required_before_a_decision
def create_booking():
    # Identified by its JSON body alone, as the keys stored before other POSTs took them.
    idem = retries.idempotency(_respond, asked=request.get_json(silent=True))
    body = parse_body(BookingIn)
    try:
        made = booking_requests.place(session(), g.api_user, _command(body),
                                      locale=g.api_user.locale, idempotency=idem)
    except reservations.Replay as replay:
        return retries.replayed(replay)
    # The answer stored for replays, built once inside the transaction, is the one sent.
    status, answer = idem.answer if idem is not None and idem.answer else _respond(made)
    return answer, status, {"Location": f"/api/v1/bookings/{made[0].reference}"}


@bp.get("/bookings")
@operation(operation_id="listBookings", tag="bookings", summary="My bookings and my company's",
           security="bearer", query=ListParams, responses={200: BookingList},
           problems=(401, 422))
@token_required
def list_bookings():
    # Capped: a page number past any real list would overflow OFFSET on PostgreSQL.
    page = min(max(request.args.get("page", 1, type=int), 1), 100_000)
    per_page = min(max(request.args.get("per_page", 50, type=int), 1), 100)
    status = request.args.get("status")
    if status and status not in {s.value for s in BookingStatus}:
        raise InvalidInput({"status": [f"one of {', '.join(s.value for s in BookingStatus)}"]})
    total, rows = reservations.page_for(session(), g.api_user, status=status or None,
                                        page=page, per_page=per_page)
    return {"total": total, "page": page, "results": [booking_json(b) for b in rows]}


def _find(reference: str) -> Booking:
    return reservations.find(session(), reference, g.api_user)


@bp.get("/bookings/<reference>")
@operation(operation_id="getBooking", tag="bookings", summary="One booking",
           security="bearer", responses={200: BookingShape}, problems=(401, 404))
@token_required
def get_booking(reference: str):
    return booking_json(_find(reference))


@bp.delete("/bookings/<reference>")
@operation(operation_id="cancelBooking", tag="bookings",
           summary="Cancel (until the unit's cancellation deadline)", security="bearer",
           body=CancelIn, body_required=False, responses={200: BookingShape},
           problems=(401, 404, 409))
@token_required
def cancel_booking(reference: str):
    booking = _find(reference)
    data = request.get_json(silent=True)
    reason = str(data.get("reason", ""))[:500] if isinstance(data, dict) else ""
    return booking_json(reservations.cancel(session(), booking, g.api_user, reason=reason))


@bp.patch("/bookings/<reference>")
@operation(operation_id="changeBooking", tag="bookings",
           summary="Change seats, times, day or attendees (checked as a new booking)",
           security="bearer", body=BookingChange, responses={200: BookingShape},
           problems=(401, 404, 409, 422))
@token_required
def change_booking(reference: str):
    booking = _find(reference)
    body = parse_body(BookingChange)
    if body.seats is None and body.date is None and body.start is None and body.attendees is None:
        return problem(422, "invalid_input", "Nothing to change.",
                       errors={"body": ["give seats, date, start and end, or attendees"]})
    command = ChangeRequest(
        first_date=body.date, start=body.start, end=body.end, seats=body.seats,
        attendees=tuple(str(a) for a in body.attendees) if body.attendees is not None else None)
    return booking_json(booking_requests.change(session(), g.api_user, booking, command))
