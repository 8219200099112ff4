"""Campaigns run by municipalities: what the public sees of them, and their management by
the municipality's members (campaigns, slots, publishing), operators' consent to slots on
their spaces, and companies' registration of participation.

Every function that changes something or reads a municipality's own data asks
booking.services.access itself; they flush and never commit (the request's edge does).
Extras lent with seats are booking.services.campaign_extras'; the rules a booking through
a slot obeys and who pays what, booking.services.campaign_rules'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import (
    HOLDING_STATUSES,
    Booking,
    Campaign,
    CampaignExtra,
    CampaignSlot,
    Eligibility,
    Organisation,
    OrgKind,
    Space,
    TeleworkCategory,
    Unit,
    User,
)
from booking.services import access, campaign_terms, consent_mail, national_campaigns
from booking.services.audit import record
from booking.services.availability import TOKYO, slot_is_offered, tokyo_days
from booking.services.errors import DomainError

# ---------------------------------------------------------------------------------------
# What the public sees.


def public_campaign_list(session: Session) -> list[Campaign]:
    """The public campaigns (Campaign.is_public), latest first (the campaigns page)."""
    return list(session.scalars(sa.select(Campaign).where(Campaign.is_public)
                                .order_by(Campaign.starts_on.desc(), Campaign.id)))


def public_campaign(session: Session, slug: str) -> Campaign | None:
    return session.scalar(sa.select(Campaign).where(Campaign.slug == slug, Campaign.is_public))


def core_days(campaign: Campaign) -> list[date]:
    """The campaign's core days (stored as ISO strings)."""
    return [date.fromisoformat(d) for d in campaign.core_days]


def offered_slots(session: Session, campaign: Campaign) -> list[CampaignSlot]:
    """The campaign's slots that are offered (CampaignSlot.is_offered) on public spaces
    (Space.is_public), with unit and space loaded."""
    return list(session.scalars(
        sa.select(CampaignSlot)
        .join(Unit, CampaignSlot.unit_id == Unit.id)
        .join(Space, Unit.space_id == Space.id)
        .where(CampaignSlot.campaign_id == campaign.id, slot_is_offered(), Space.is_public)
        .options(selectinload(CampaignSlot.unit).selectinload(Unit.space))
        .order_by(CampaignSlot.start_date, CampaignSlot.id)
    ))


# ---------------------------------------------------------------------------------------
# Management by the municipality's members.


def municipalities_of(user: User) -> list[Organisation]:
    """The municipalities the user is a member of (whose campaigns they run)."""
    return user.organisations(OrgKind.MUNICIPALITY) if user.is_authenticated else []


def campaigns_of(session: Session, user: User) -> list[Campaign]:
    """The campaigns of the user's municipalities, latest first."""
    ids = [o.id for o in municipalities_of(user)]
    if not ids:
        return []
    return list(session.scalars(
        sa.select(Campaign).where(Campaign.organisation_id.in_(ids))
        .options(selectinload(Campaign.slots), selectinload(Campaign.organisation))
        .order_by(Campaign.starts_on.desc(), Campaign.id.desc())
    ))


def get_campaign(session: Session, user: User, campaign_id: int) -> Campaign:
    """The campaign, for one of its municipality's members (DomainError "not_found" for
    anyone else: its existence is not confirmed)."""
    return access.fetch(session, user, "manage", Campaign, campaign_id)


def require_part_of(user: User, campaign: Campaign,
                    part: CampaignSlot | CampaignExtra | None) -> None:
    """The user runs the campaign, and the slot or extra being changed is the campaign's."""
    access.require(user, "manage", campaign)
    if part is not None and part.campaign_id != campaign.id:
        raise DomainError("not_found")


Part = TypeVar("Part", CampaignSlot, CampaignExtra)


def get_part(session: Session, user: User, campaign: Campaign, kind: type[Part],
             part_id: int) -> Part:
    """A slot or extra of `campaign`, for one of its municipality's members (not_found
    when there is none, or it is another campaign's)."""
    part = session.get(kind, part_id)
    if part is None:
        raise DomainError("not_found")
    require_part_of(user, campaign, part)
    return part


@dataclass
class CampaignData:
    slug: str
    name: str
    name_en: str
    description: str
    description_en: str
    starts_on: date
    ends_on: date
    core_days: list[date]
    published: bool
    # The national campaign it is a local programme of (None: a campaign of its own).
    national_campaign_id: int | None = None


def require_approved(organisation: Organisation) -> None:
    """Campaigns and their slots are run by municipalities the site admin has approved:
    before that (or once approval is revoked) nothing is created or changed, so that an
    organisation nobody checked files no slot request to an operator."""
    if not organisation.is_approved:
        raise DomainError("not_approved", field="organisation_id")


def save_campaign(session: Session, user: User, organisation: Organisation,
                  data: CampaignData, campaign: Campaign | None = None) -> Campaign:
    """Creates (campaign None) or updates a campaign of `organisation` (approved), for
    one of its members."""
    access.require(user, "campaign", organisation)
    if campaign is not None and campaign.organisation_id != organisation.id:
        raise DomainError("not_found")
    require_approved(organisation)
    campaign_terms.check(session, Campaign, slug=data.slug, starts_on=data.starts_on,
                         ends_on=data.ends_on, core_days=data.core_days,
                         current_id=campaign.id if campaign is not None else None)
    if campaign is not None:
        outside = [s for s in campaign.slots
                   if s.start_date < data.starts_on or s.end_date > data.ends_on]
        if outside:
            raise DomainError("slot_outside_campaign", field="starts_on")
    # A programme of a national campaign lies within its period (national_campaigns).
    national = national_campaigns.check_programme(session, data.national_campaign_id,
                                                  data.starts_on, data.ends_on, campaign)
    new = campaign is None
    if campaign is None:
        campaign = Campaign(organisation_id=organisation.id)
        session.add(campaign)
    campaign_terms.apply(campaign, data)
    campaign.national_campaign = national
    session.flush()
    record(session, user, "campaign.create" if new else "campaign.update", campaign,
           organisation.id, slug=campaign.slug, published=campaign.published,
           national_campaign=national.id if national else None)
    return campaign


def set_published(session: Session, user: User, campaign: Campaign, published: bool) -> None:
    access.require(user, "manage", campaign)
    campaign.published = published
    record(session, user, "campaign.publish" if published else "campaign.unpublish", campaign,
           campaign.organisation_id)
    session.flush()


def eligible_units(session: Session, user: User, organisation: Organisation) -> list[Unit]:
    """Units a municipality may offer, for one of its members: of its own spaces (public or
    not), or, once it is approved, of the public spaces of operators (those need the
    operator's consent). An operator's space that is not public is nobody else's business."""
    access.require(user, "campaign", organisation)
    others = sa.and_(Organisation.kind == OrgKind.OPERATOR, Space.is_public)
    if not organisation.is_approved:
        others = sa.false()
    return list(session.scalars(
        sa.select(Unit)
        .join(Space, Unit.space_id == Space.id)
        .join(Organisation, Space.organisation_id == Organisation.id)
        .where(sa.or_(Space.organisation_id == organisation.id, others))
        .options(selectinload(Unit.space).selectinload(Space.organisation))
        .order_by(Space.organisation_id != organisation.id, Space.prefecture_code, Space.id,
                  Unit.id)
    ))


@dataclass
class SlotData:
    unit_id: int
    start_date: date
    end_date: date
    daily_start_min: int
    daily_end_min: int
    seats: int
    price_amount: int | None
    subsidy_cap: int | None
    max_seats_per_company_per_day: int | None
    max_bookings_per_company: int | None
    eligibility: Eligibility


def _slot_bookings(session: Session, slot: CampaignSlot) -> list[Booking]:
    return list(session.scalars(sa.select(Booking).where(
        Booking.campaign_slot_id == slot.id, Booking.status.in_(HOLDING_STATUSES)
    )))


def save_slot(session: Session, user: User, campaign: Campaign, data: SlotData,
              slot: CampaignSlot | None = None) -> CampaignSlot:
    """Creates or updates a slot. A slot on an operator's space waits for that operator's
    consent again whenever its terms change (the operator agreed to other terms).
    Only an approved municipality's (require_approved), by one of its members."""
    require_part_of(user, campaign, slot)
    require_approved(campaign.organisation)
    if data.start_date > data.end_date or data.daily_start_min >= data.daily_end_min:
        raise DomainError("bad_range", field="end_date")
    if data.start_date < campaign.starts_on or data.end_date > campaign.ends_on:
        raise DomainError("slot_outside_campaign", field="start_date")
    unit = session.get(Unit, data.unit_id)
    if unit is None or unit.id not in {
            u.id for u in eligible_units(session, user, campaign.organisation)}:
        raise DomainError("slot_unit_not_allowed", field="unit_id")
    own = unit.space.organisation_id == campaign.organisation_id
    if slot is not None:
        bookings = _slot_bookings(session, slot)
        if bookings and not _bookings_fit(bookings, data):
            raise DomainError("slot_has_bookings", field="seats",
                              bookings=len(bookings))
    new = slot is None
    if slot is None:
        slot = CampaignSlot(campaign_id=campaign.id)
        session.add(slot)
    terms_changed = new or any(
        getattr(slot, name) != getattr(data, name) for name in data.__dataclass_fields__
    )
    for name in data.__dataclass_fields__:
        setattr(slot, name, getattr(data, name))
    if not own and terms_changed:
        # A new question for the operator: pending again, asked by mail.
        slot.operator_consent = False
        slot.consent_answered_at = None
        slot.consent_reason = ""
    elif own:
        slot.operator_consent = True
    session.flush()
    record(session, user, "campaign_slot.create" if new else "campaign_slot.update", slot,
           campaign.organisation_id, unit=unit.id, seats=data.seats, price=data.price_amount,
           subsidy_cap=data.subsidy_cap)
    if not own and terms_changed:
        consent_mail.enqueue_consent_request(session, slot)
    return slot


def _bookings_fit(bookings: list[Booking], data: SlotData) -> bool:
    """Whether the slot's holding bookings stay inside the new terms: same unit, dates and
    daily window, and no day with more seats booked through the slot than it offers."""
    per_day: dict[date, int] = {}
    for b in bookings:
        if b.unit_id != data.unit_id:
            return False
        start, end = b.starts_at.astimezone(TOKYO), b.ends_at.astimezone(TOKYO)
        for day in tokyo_days(b.starts_at, b.ends_at):
            if not data.start_date <= day <= data.end_date:
                return False
            per_day[day] = per_day.get(day, 0) + b.seats
        if start.date() == end.date():
            minutes = (start.hour * 60 + start.minute, end.hour * 60 + end.minute)
            if minutes[0] < data.daily_start_min or minutes[1] > data.daily_end_min:
                return False
    # Conservative: seats of every booking touching a day, as if they all overlapped.
    return all(seats <= data.seats for seats in per_day.values())


def delete_slot(session: Session, user: User, slot: CampaignSlot) -> None:
    access.require(user, "manage", slot)
    used = session.scalar(sa.select(sa.func.count()).select_from(Booking)
                          .where(Booking.campaign_slot_id == slot.id))
    if used:
        raise DomainError("slot_has_bookings", bookings=used)
    record(session, user, "campaign_slot.delete", slot, slot.campaign.organisation_id)
    session.delete(slot)
    session.flush()


def _operator_slots(user: User) -> sa.Select | None:
    """Slots on spaces of the operators `user` belongs to, proposed by others (None: the
    user belongs to no operator)."""
    ids = [o.id for o in user.organisations(OrgKind.OPERATOR)]
    if not ids:
        return None
    return (sa.select(CampaignSlot)
            .join(Unit, CampaignSlot.unit_id == Unit.id)
            .join(Space, Unit.space_id == Space.id)
            .join(Campaign, CampaignSlot.campaign_id == Campaign.id)
            .where(Space.organisation_id.in_(ids), Campaign.organisation_id.not_in(ids))
            .options(selectinload(CampaignSlot.campaign).selectinload(Campaign.organisation),
                     selectinload(CampaignSlot.unit).selectinload(Unit.space)))


def pending_consents(session: Session, user: User) -> list[CampaignSlot]:
    """Slots on spaces of the operators `user` belongs to (the consent page: every
    answer, given or not), the ones waiting for an answer first, newest campaigns first."""
    query = _operator_slots(user)
    if query is None:
        return []
    return list(session.scalars(query.order_by(
        CampaignSlot.operator_consent, CampaignSlot.consent_answered_at.is_not(None),
        Campaign.starts_on.desc(), CampaignSlot.id)))


def waiting_consents(session: Session, user: User) -> list[CampaignSlot]:
    """The proposals still waiting for the operator's answer (the console home's
    「対応が必要なこと」), oldest campaign first."""
    query = _operator_slots(user)
    if query is None:
        return []
    return list(session.scalars(query.where(
        CampaignSlot.operator_consent.is_(False), CampaignSlot.consent_answered_at.is_(None)
    ).order_by(Campaign.starts_on, CampaignSlot.start_date, CampaignSlot.id)))


ANSWERS_SHOWN = 20  # the municipality's console home: the latest answers


def consent_answers(session: Session, user: User) -> list[CampaignSlot]:
    """The operators' answers to the slots of `user`'s municipalities' campaigns (given
    or declined, with the reason), latest first."""
    ids = [o.id for o in municipalities_of(user)]
    if not ids:
        return []
    return list(session.scalars(
        sa.select(CampaignSlot)
        .join(Campaign, CampaignSlot.campaign_id == Campaign.id)
        .where(Campaign.organisation_id.in_(ids), CampaignSlot.consent_answered_at.is_not(None))
        .options(selectinload(CampaignSlot.campaign),
                 selectinload(CampaignSlot.unit).selectinload(Unit.space)
                 .selectinload(Space.organisation))
        .order_by(CampaignSlot.consent_answered_at.desc(), CampaignSlot.id.desc())
        .limit(ANSWERS_SHOWN)))


def get_slot_to_consent(session: Session, user: User, slot_id: int) -> CampaignSlot:
    """A slot on a unit of the user's organisation (not_found for anyone else)."""
    return access.fetch(session, user, "consent", CampaignSlot, slot_id)


CONSENT_REASON_MAX = 500  # CampaignSlot.consent_reason's length


def set_consent(session: Session, user: User, slot: CampaignSlot, consent: bool,
                reason: str = "") -> CampaignSlot:
    """The operator owning the slot's space answers the municipality's proposal: agrees
    (also after declining), or declines with a reason (also after agreeing: withdrawing,
    which keeps bookings already made and only stops new ones). The answer is one UPDATE
    guarded by the state it was given in (pending, accepted or declined, as read), so of
    two answers racing only the first applies; the other is refused (consent_changed)
    and the slot stays as the first left it. The municipality's members are mailed."""
    access.require(user, "consent", slot)
    reason = reason.strip()
    if not consent and not reason:
        raise DomainError("consent_reason_required", field="reason")
    if len(reason) > CONSENT_REASON_MAX:
        raise DomainError("consent_reason_too_long", field="reason", max=CONSENT_REASON_MAX)
    if consent and slot.operator_consent:
        raise DomainError("consent_changed")  # already agreed: nothing to answer
    withdrawn = slot.operator_consent
    expected: sa.ColumnElement[bool]
    if slot.operator_consent:  # accepted, as read
        expected = CampaignSlot.operator_consent.is_(True)
    elif slot.consent_answered_at is None:  # pending
        expected = sa.and_(CampaignSlot.operator_consent.is_(False),
                           CampaignSlot.consent_answered_at.is_(None))
    else:  # declined
        expected = sa.and_(CampaignSlot.operator_consent.is_(False),
                           CampaignSlot.consent_answered_at.is_not(None))
    done = session.execute(
        sa.update(CampaignSlot).where(CampaignSlot.id == slot.id, expected)
        .values(operator_consent=consent, consent_answered_at=clock.now(),
                consent_reason="" if consent else reason)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
    session.refresh(slot)
    if done != 1:  # another answer (or new terms) came first
        raise DomainError("consent_changed")
    action = ("campaign_slot.consent" if consent else
              "campaign_slot.withdraw" if withdrawn else "campaign_slot.decline")
    record(session, user, action, slot, slot.unit.space.organisation_id,
           campaign=slot.campaign_id)
    session.flush()
    consent_mail.enqueue_consent_answer(session, slot)
    return slot


# ---------------------------------------------------------------------------------------
# Registration of participation in Telework Days (companies).


def register_participation(session: Session, user: User, company: Organisation,
                           category: TeleworkCategory | None, core_day_staff: int | None) -> None:
    """A company declares how it takes part (実施団体 / 特別協力団体) and how many of its
    staff telework on the core day. Supporter organisations are 応援団体 by their kind."""
    if company.kind != OrgKind.COMPANY or not access.allowed(user, "manage", company):
        raise DomainError("no_company")
    if core_day_staff is not None and core_day_staff < 0:
        raise DomainError("bad_seats", field="core_day_staff")
    company.telework_category = category
    company.core_day_staff = core_day_staff
    record(session, user, "participation.register", company, company.id,
           category=category.value if category else None, core_day_staff=core_day_staff)
    session.flush()
