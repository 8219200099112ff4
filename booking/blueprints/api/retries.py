"""Idempotency-Key on the API's POSTs that book (POST /bookings, a waitlist offer
confirmed, a series booked): the same key and the same request get the first answer
again (Idempotent-Replayed: true) and book nothing more; the same key with another
request is a 422 idempotency_mismatch. Keys are the user's, whatever the endpoint: a key
used for one request is not reused for another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from flask import request

from booking.blueprints.api.common import InvalidInput
from booking.models import Booking
from booking.services import reservations

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PARAM = {
    "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
    "description": "Any unique string: a retry with the same key and request gets the first "
                   "answer again (Idempotent-Replayed: true) and books nothing more; the same "
                   "key with another request is a 422 idempotency_mismatch",
    "schema": {"type": "string", "maxLength": 200}}


def created_headers(what: str) -> dict[int, dict[str, dict]]:
    """The headers of a 201 that may be a replay; `what` the Location names."""
    return {201: {
        "Location": {"description": what, "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "`true` when this is the first answer replayed",
                                "schema": {"type": "string", "enum": ["true"]}},
    }}


_THE_REQUEST = object()  # identified by its method, path and body


def idempotency(respond: Callable[[list[Booking]], tuple[int, dict]], *,
                asked: object = _THE_REQUEST) -> reservations.Idempotency | None:
    """The request's key (None without one), for a request identified by `asked`: by
    default its method, path and JSON body (a body that is not JSON counts as none).
    POST /bookings passes its JSON body alone, as its stored keys were made."""
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if len(key) > 200:
        raise InvalidInput({IDEMPOTENCY_HEADER: ["at most 200 characters"]})
    if not key:
        return None
    if asked is _THE_REQUEST:
        asked = [request.method, request.path, request.get_json(silent=True)]
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True, ensure_ascii=False)
                            .encode()).hexdigest()
    return reservations.Idempotency(key=key, request_hash=digest, respond=respond)


def replayed(replay: reservations.Replay):
    """The first answer, sent again."""
    return replay.response, replay.status_code, {"Idempotent-Replayed": "true"}
