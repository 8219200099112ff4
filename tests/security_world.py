"""A small world for the security tests: one of everything, owned by organisations the
visitors of the route walk do NOT belong to (except the company user, who made the
booking), plus one organisation of each kind for those visitors.

    world = build_world(make)
    world.url_values["space_id"]       # an id for every URL parameter name
    as_role(client, world.users["company"])   # log a client in without a password round-trip
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from booking import clock
from booking.extensions import db
from booking.models import (
    ApiToken,
    BookingAttendee,
    BookingSeries,
    CampaignExtra,
    CapacityOverride,
    Closure,
    NationalCampaign,
    OrgKind,
    Photo,
    User,
    WaitlistEntry,
)
from booking.services import accounts, calendars, tokens

ROLES = ("anon", "company", "operator_other", "municipality_other")


@dataclass
class World:
    users: dict[str, User | None] = field(default_factory=dict)
    objects: dict[str, object] = field(default_factory=dict)
    url_values: dict[str, object] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def build_world(make) -> World:
    w = World()
    operator = make.organisation(OrgKind.OPERATOR, name="所有者の運営会社")
    municipality = make.organisation(OrgKind.MUNICIPALITY, name="所有者の市")
    company = make.company(name="予約した会社")
    other_operator = make.organisation(OrgKind.OPERATOR, name="他の運営会社")
    other_municipality = make.organisation(OrgKind.MUNICIPALITY, name="他の市")

    w.users = {
        "anon": None,
        "company": make.user("company@example.jp", organisation=company, name="会社の人"),
        "operator_other": make.user("op-other@example.jp", organisation=other_operator),
        "municipality_other": make.user("city-other@example.jp", organisation=other_municipality),
        # Not walked as visitors; they own what the URLs point at.
        "operator_owner": make.user("op-owner@example.jp", organisation=operator),
        "municipality_owner": make.user("city-owner@example.jp", organisation=municipality),
        "admin": make.user("admin@example.jp", is_admin=True),
    }

    space = make.space(operator, slug="owned-space", name="所有者の施設")
    unit = make.unit(space, name="所有者のデスク")
    # The campaign is a programme of a national campaign; both answer to the slug
    # "owned-campaign" (other tables), so every campaigns.* route is built with one slug.
    national = NationalCampaign(slug="owned-campaign", name="全国キャンペーン",
                                starts_on=date(2027, 7, 1), ends_on=date(2027, 9, 30),
                                core_days=["2027-07-28"],
                                categories=[{"code": "implementing", "name": "実施団体",
                                             "conditions": "人数・日数を問わず"}])
    db.session.add(national)
    db.session.flush()
    campaign = make.campaign(municipality, slug="owned-campaign", name="所有者のキャンペーン",
                             national_campaign_id=national.id)
    slot = make.slot(campaign, unit)
    start = datetime(2027, 7, 26, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo, a Monday
    booking = make.booking(unit, start, start + timedelta(hours=9), company=company,
                           user_id=w.users["company"].id)
    db.session.add(BookingAttendee(booking_id=booking.id, email="colleague@example.jp",
                                   name="同僚"))
    closure = Closure(unit_id=unit.id, start_date=date(2027, 8, 13), end_date=date(2027, 8, 15),
                      reason="お盆")
    override = CapacityOverride(unit_id=unit.id, day=date(2027, 8, 1), capacity=3)
    # A name the console could have given (services/photos.py NAME); no file on disk.
    photo = Photo(space_id=space.id, filename="0123456789abcdef" * 2 + ".jpg", alt="写真")
    db.session.add_all([closure, override, photo])
    extra = CampaignExtra(campaign_id=campaign.id, name="ポケットWi-Fi", quantity=3)
    db.session.add(extra)
    # The company's place in the unit's waitlist (services/waitlist.py), for more seats
    # than the unit has: it stays waiting whatever the walk frees (a cancelled booking
    # offers its seats to the line).
    entry = WaitlistEntry(unit_id=unit.id, company_id=company.id, user_id=w.users["company"].id,
                          starts_at=start, ends_at=start + timedelta(hours=9),
                          seats=unit.capacity + 1, note="窓際希望")
    db.session.add(entry)
    # The booking is one occurrence of the company's weekly series (services/series.py).
    weekly = BookingSeries(uid="series-walk@booking.telework", unit_id=unit.id,
                           company_id=company.id, user_id=w.users["company"].id, weekdays=[0],
                           first_date=date(2027, 7, 26), last_date=date(2027, 7, 26), seats=1)
    db.session.add(weekly)
    db.session.flush()
    booking.series_id = weekly.id
    db.session.commit()

    owner_token, _ = tokens.issue(db.session, w.users["company"], 24)
    db.session.commit()
    w.tokens["company"] = owner_token
    company_token_id = db.session.scalar(sa.select(ApiToken.id))
    for role in ("operator_other", "municipality_other"):
        w.tokens[role], _ = tokens.issue(db.session, w.users[role], 24)
    db.session.commit()

    w.objects = {"operator": operator, "municipality": municipality, "company": company,
                 "space": space, "unit": unit, "campaign": campaign, "slot": slot,
                 "booking": booking, "closure": closure, "override": override,
                 "photo": photo, "extra": extra, "waitlist_entry": entry,
                 "other_operator": other_operator,
                 "other_municipality": other_municipality}
    w.url_values = {
        "space_id": space.id,
        "unit_id": unit.id,
        "booking_id": booking.id,
        "closure_id": closure.id,
        "override_id": override.id,
        "photo_id": photo.id,
        "campaign_id": campaign.id,
        "national_id": national.id,
        "slot_id": slot.id,
        "extra_id": extra.id,
        "entry_id": entry.id,
        "series_id": weekly.id,
        "token_id": company_token_id,  # the company user's own API token
        # The company's feed (the walk renews the company USER's feed, not this one).
        "secret": _feed_secret(company),
        "owner": "user",
        "action": "renew",
        "reference": booking.reference,
        # The company user's e-mail verification link (its address is verified already).
        "token": accounts.verification_token(w.users["company"]),
        "slug": space.slug,
        "filename": photo.filename,
    }
    return w


def _feed_secret(owner) -> str:
    """A live calendar feed secret (the feed URL is the credential)."""
    secret = calendars.renew_secret(owner)
    db.session.commit()
    return secret


def as_role(client, user: User | None) -> None:
    """Put the user's identity into the client's session (what log-in does), or none."""
    with client.session_transaction() as sess:
        sess.clear()
        if user is not None:
            db.session.commit()  # end the test's transaction: read what requests committed
            db.session.refresh(user)
            sess["_user_id"] = user.get_id()
            sess["_fresh"] = True


def today() -> date:
    return clock.today()
