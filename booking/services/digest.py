"""The morning digest: each operator member who keeps User.notify_digest on (the switch on
the account's 通知設定 page; off by default) and has verified their address gets one
mail a morning listing the day's arrivals at their organisations' spaces, per space:
time, unit, company, seats and the company's note to the facility (plain text, links
replaced, as in the booking mails: mail.reason_for_mail). Nobody gets a mail on a day
without arrivals.

When: a scheduled job of the mail worker (`run`, listed in booking.services.jobs) sends
it from DIGEST_HOUR o'clock Tokyo time (default 7, before a desk opens) until
DIGEST_UNTIL_HOUR (default 12): a worker that was down at seven still sends the
morning's digest when it comes back, but a list of "today's arrivals" that would reach
the desk in the afternoon is not sent (the console home shows them anyway).

Once a day per person, also with several workers: the day's run is claimed with a JobRun
row (name "digest", key the Tokyo date) in the transaction that writes the mails
(jobs.claim): the worker whose INSERT commits writes every mail, one outbox row per
person; the other's INSERT is refused and it writes none. The claim and the mails commit
together, so a worker that fails half-way writes nothing and the next round tries again.
Verified addresses only: the mail carries customers' bookings and notes.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.orm import Session

from booking import clock
from booking.db import begin_write
from booking.formatting import local_date, local_time
from booking.models import Booking, Membership, Organisation, OrgKind, Space, User
from booking.services import console_home, jobs, mail
from booking.services.calendars import public_url

NAME = "digest"
KIND = "digest"
DEFAULT_HOUR = 7
DEFAULT_UNTIL_HOUR = 12


def window() -> tuple[int, int]:
    """[from, until) hours of the Tokyo morning in which the digest is sent."""
    config = current_app.config
    return (int(config.get("DIGEST_HOUR", DEFAULT_HOUR)),
            int(config.get("DIGEST_UNTIL_HOUR", DEFAULT_UNTIL_HOUR)))


def recipients(session: Session) -> list[tuple[User, list[int]]]:
    """Who gets the digest, each with the ids of the operators they belong to: members of
    operators who keep notify_digest on and have verified their address."""
    rows = session.execute(
        sa.select(User, Membership.organisation_id)
        .join(Membership, Membership.user_id == User.id)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(Organisation.kind == OrgKind.OPERATOR, User.notify_digest.is_(True),
               User.email_verified_at.is_not(None))
        .order_by(User.id, Membership.organisation_id)).all()
    people: dict[int, tuple[User, list[int]]] = {}
    for user, organisation_id in rows:
        people.setdefault(user.id, (user, []))[1].append(organisation_id)
    return list(people.values())


def _times(booking: Booking, loc: str) -> str:
    """09:00–18:00; a stay that ends on another day: 15:00 – its end's date and time."""
    end = booking.ends_at.astimezone(clock.TOKYO)
    if end.date() == booking.starts_at.astimezone(clock.TOKYO).date():
        return f"{local_time(booking.starts_at)}–{local_time(booking.ends_at)}"
    return f"{local_time(booking.starts_at)} – {local_date(end, loc)} {local_time(end)}"


def _context(user: User, day: date, groups: list[console_home.SpaceArrivals], loc: str
             ) -> dict:
    """What the templates show (called inside the recipient's locale)."""
    marker = _("[リンク省略]")
    spaces = []
    for group in groups:
        rows = [{
            "times": _times(b, loc), "unit": b.unit.display_name(loc),
            "company": b.company.display_name(loc) if b.company is not None else "",
            "seats": b.seats, "reference": b.reference, "status": b.status.value,
            # User text from the company, mailed: plain, without links.
            "note": mail.reason_for_mail(b.note, marker, mail.NOTE_MAIL_MAX) if b.note else "",
        } for b in group.bookings]
        spaces.append({
            "name": group.space.display_name(loc), "rows": rows, "seats": group.seats,
            "day_url": f"{public_url()}/operator/spaces/{group.space.id}/day"
                       f"?day={day.isoformat()}",
        })
    return {"recipient_name": user.name, "day": local_date(day, loc), "spaces": spaces,
            "count": sum(len(g.bookings) for g in groups),
            "home_url": f"{public_url()}/operator/"}


def enqueue_all(session: Session, day: date) -> int:
    """Write the day's digest of each recipient who has arrivals; how many were written."""
    people = recipients(session)
    if not people:
        return 0
    organisation_ids = {o for _user, orgs in people for o in orgs}
    spaces = session.execute(sa.select(Space.id, Space.organisation_id)
                             .where(Space.organisation_id.in_(organisation_ids))).all()
    found = console_home.arrivals(session, [space_id for space_id, _org in spaces], day)
    written = 0
    for user, orgs in people:
        own = {space_id for space_id, org in spaces if org in orgs}
        groups = console_home.by_space(b for b in found if b.unit.space_id in own)
        if not groups:
            continue  # nothing today: no mail
        loc = user.locale if user.locale in ("ja", "en") else "ja"
        count = sum(len(g.bookings) for g in groups)

        def subject(count: int = count, loc: str = loc) -> str:
            return ngettext("【本日の来場予定】%(day)s %(num)d件",
                            "【本日の来場予定】%(day)s %(num)d件", count,
                            day=local_date(day, loc))

        def context(user: User = user, groups: list = groups, loc: str = loc) -> dict:
            return _context(user, day, groups, loc)

        mail.enqueue_notice(session, KIND, user.email, loc, "operator/mail/digest",
                            subject, context)
        written += 1
    return written


def due_day() -> date | None:
    """The Tokyo date whose digest is due now, or None outside the morning's window."""
    now = clock.tokyo_now()
    first, until = window()
    return now.date() if first <= now.hour < until else None


def run(session: Session) -> int:
    """The scheduled job: the day's digests, once (see the module's docstring); how many
    mails were written."""
    day = due_day()
    if day is None:
        return 0
    key = day.isoformat()
    if jobs.claimed(session, NAME, key):  # the usual answer: a read, no write lock
        session.rollback()
        return 0
    begin_write(session)
    if not jobs.claim(session, NAME, key):
        return 0  # another worker has it
    written = enqueue_all(session, day)
    jobs.finish(session, NAME, key)
    session.commit()
    return written

