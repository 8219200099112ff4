"""/api/v1/waitlist: the company's places in the line of full units (services/waitlist.py).

Join with the fields a booking takes (one period); an offer of freed seats is answered
by POST .../confirmation (the booking, 201, Idempotency-Key as for POST /bookings) or
DELETE .../offer (declined: the next in line is asked). Someone else's entry is a 404
not_found, the same answer as an id that does not exist.
"""

from __future__ import annotations

from flask import g
from pydantic import BaseModel, Field, model_validator

from booking.blueprints.api import retries
from booking.blueprints.api.bookings import booking_json, breakdown_json, place_json
from booking.blueprints.api.common import ApiDate, ApiDatetime, bp, parse_body, token_required
from booking.blueprints.api.openapi import operation
from booking.blueprints.api.schemas import Booking as BookingShape
from booking.blueprints.api.schemas import WaitlistEntries
from booking.blueprints.api.schemas import WaitlistEntry as EntryShape
from booking.models import Booking, WaitlistEntry
from booking.services import reservations, waitlist
from booking.services.availability import TOKYO
from booking.services.booking_requests import BookingRequest
from booking.unit_of_work import session


class WaitlistIn(BaseModel):
    """What to wait for: one period of a unit, said as a booking says it."""

    unit_id: int = Field(ge=1, le=2**31 - 1)
    date: ApiDate | None = Field(
        default=None, description="One day (Asia/Tokyo): its opening hours; for a unit let "
        "by the night, the check-in day of a stay of `nights`")
    start: ApiDatetime | None = None
    end: ApiDatetime | None = None
    nights: int | None = Field(default=None, ge=1, le=60,
                               description="Whole houses: nights from `date`")
    seats: int = Field(default=1, ge=1, le=reservations.MAX_SEATS)
    campaign: str | None = Field(default=None, max_length=80,
                                 description="Wait for this campaign's slot (its slug)")
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _one_way_to_say_when(self):
        if (self.date is None) == (self.start is None):
            raise ValueError("give exactly one of date, or start and end")
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end go together")
        if self.start is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def _command(body: WaitlistIn) -> BookingRequest:
    """The body as the command the booking form builds (and its waitlist button posts)."""
    return BookingRequest(unit_id=body.unit_id, first_date=body.date, start=body.start,
                          end=body.end, nights=body.nights, seats=body.seats,
                          note=body.note, campaign=body.campaign)


def _offer_json(entry: WaitlistEntry) -> dict | None:
    held = entry.offer_booking
    if held is None or entry.offer_expires_at is None:
        return None
    return {"reference": held.reference, "status": held.status.value,
            "expires_at": entry.offer_expires_at.astimezone(TOKYO).isoformat(),
            "live": waitlist.is_live(entry),
            "price": {"amount": held.price_amount, "currency": "JPY",
                      "subsidy": held.subsidy_amount},
            "price_breakdown": breakdown_json(held)}


def entry_json(entry: WaitlistEntry) -> dict:
    slot = entry.campaign_slot
    return {
        "id": entry.id,
        "status": entry.status.value,
        **place_json(entry),
        "campaign": slot.campaign.slug if slot is not None else None,
        "note": entry.note,
        "joined_at": entry.created_at.astimezone(TOKYO).isoformat(),
        "offer": _offer_json(entry),
        "url": waitlist.offer_url(entry),
    }


def _entry(entry_id: int) -> WaitlistEntry:
    return waitlist.find(session(), g.api_user, entry_id)


@bp.get("/waitlist")
@operation(operation_id="listWaitlistEntries", tag="waitlist",
           summary="My waitlist entries and, for a company's admin, the company's",
           security="bearer", responses={200: WaitlistEntries}, problems=(401,))
@token_required
def list_entries():
    return {"results": [entry_json(e) for e in waitlist.entries_of(session(), g.api_user)]}


@bp.post("/waitlist")
@operation(operation_id="joinWaitlist", tag="waitlist",
           summary="Wait for seats of a full unit (one period)", security="bearer",
           body=WaitlistIn, responses={201: EntryShape},
           response_headers={201: {"Location": {"description": "The entry's API URL",
                                                "schema": {"type": "string"}}}},
           problems=(401, 403, 404, 409, 422),
           description="409 waitlist_seats_free when the seats are free now (book them "
                       "instead), waitlist_duplicate when the company waits for that period "
                       "already; the booking's refusals otherwise (in_past, bad_seats, "
                       "closed, members_only, ...). When seats free up, the first in line "
                       "whose request fits is offered them by mail, held for a limited time.")
@token_required
def join_waitlist():
    body = parse_body(WaitlistIn)
    entry = waitlist.join_asked(session(), g.api_user, _command(body),
                                locale=g.api_user.locale)
    return entry_json(entry), 201, {"Location": f"/api/v1/waitlist/{entry.id}"}


@bp.get("/waitlist/<int:entry_id>")
@operation(operation_id="getWaitlistEntry", tag="waitlist", summary="One waitlist entry",
           security="bearer", responses={200: EntryShape}, problems=(401, 404))
@token_required
def get_entry(entry_id: int):
    return entry_json(_entry(entry_id))


@bp.delete("/waitlist/<int:entry_id>")
@operation(operation_id="leaveWaitlist", tag="waitlist",
           summary="Leave the line (an offer held is declined and passed on)",
           security="bearer", responses={200: EntryShape}, problems=(401, 404, 409),
           description="409 waitlist_not_waiting once the entry is booked, expired or left.")
@token_required
def leave_waitlist(entry_id: int):
    entry = _entry(entry_id)
    return entry_json(waitlist.leave(session(), g.api_user, entry.id))


def _respond(made: list[Booking]) -> tuple[int, dict]:
    return 201, booking_json(made[0])


@bp.post("/waitlist/<int:entry_id>/confirmation")
@operation(operation_id="confirmWaitlistOffer", tag="waitlist",
           summary="Take the offer: book the seats held (send an Idempotency-Key to make "
                   "retries safe)",
           security="bearer", headers=(retries.IDEMPOTENCY_PARAM,),
           responses={201: BookingShape},
           response_headers=retries.created_headers("The booking's API URL"),
           problems=(401, 403, 404, 409, 422),
           description="409 waitlist_offer_expired once the offer's time is up, "
                       "waitlist_not_offered when there is no offer to take; 403 when a "
                       "campaign's rules exclude the company now.")
@token_required
def confirm_offer(entry_id: int):
    entry = _entry(entry_id)
    idem = retries.idempotency(_respond)
    try:
        booked = waitlist.confirm(session(), g.api_user, entry.id, idempotency=idem)
    except reservations.Replay as replay:
        return retries.replayed(replay)
    # The answer stored for replays, built once inside the transaction, is the one sent.
    status, answer = idem.answer if idem is not None and idem.answer else _respond([booked])
    return answer, status, {"Location": f"/api/v1/bookings/{booked.reference}"}


@bp.delete("/waitlist/<int:entry_id>/offer")
@operation(operation_id="declineWaitlistOffer", tag="waitlist",
           summary="Decline the offer: its seats go to the next in line",
           security="bearer", responses={200: EntryShape}, problems=(401, 404, 409),
           description="409 waitlist_not_offered when there is no offer to decline.")
@token_required
def decline_offer(entry_id: int):
    entry = _entry(entry_id)
    return entry_json(waitlist.decline(session(), g.api_user, entry.id))
