"""Every campaign service asks the access policies itself (booking.services.access), not
only the municipality's pages: called directly by a member of ANOTHER municipality (or of
another operator), each refuses with a DomainError and changes nothing."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import (
    AuditEntry,
    Campaign,
    CampaignExtra,
    CampaignSlot,
    Eligibility,
    Organisation,
    OrgKind,
    ReportFactors,
    TeleworkCategory,
)
from booking.services import campaign_extras, reports
from booking.services import campaign_management as management
from booking.services.errors import DomainError


@pytest.fixture
def city(make):
    """City A's campaign: a slot on its own space, one on an operator's (waiting for the
    operator's consent) and an extra. Strangers: a clerk of city B (with a campaign of its
    own), a member of another operator, and a company's booker."""
    a = make.organisation(OrgKind.MUNICIPALITY, name="A市")
    campaign = make.campaign(a, name="A市キャンペーン")
    own_unit = make.unit(make.space(a, name="A市の施設"))
    operator = make.organisation(OrgKind.OPERATOR, name="運営者")
    operator_unit = make.unit(make.space(operator, name="運営者の施設", published=True))
    own_slot = make.slot(campaign, own_unit, seats=3, operator_consent=True)
    operator_slot = make.slot(campaign, operator_unit, seats=2, operator_consent=False)
    extra = CampaignExtra(campaign_id=campaign.id, name="ポケットWi-Fi", quantity=5,
                          max_per_booking=1)
    db.session.add(extra)
    db.session.commit()
    b = make.organisation(OrgKind.MUNICIPALITY, name="B市")
    company = make.company(name="株式会社A")
    return {
        "a": a, "campaign": campaign, "own_unit": own_unit, "own_slot": own_slot,
        "operator_slot": operator_slot, "extra": extra, "company": company,
        "clerk": make.user(organisation=a),
        "operator": make.user(organisation=operator),
        "other_clerk": make.user(organisation=b),
        "other_campaign": make.campaign(b, name="B市キャンペーン"),
        "other_operator": make.user(organisation=make.organisation(OrgKind.OPERATOR)),
        "booker": make.user(organisation=company),
    }


def _slot_data(unit_id: int, seats: int = 9) -> management.SlotData:
    return management.SlotData(
        unit_id=unit_id, start_date=date(2027, 7, 23), end_date=date(2027, 7, 26),
        daily_start_min=540, daily_end_min=1080, seats=seats, price_amount=0,
        subsidy_cap=None, max_seats_per_company_per_day=None, max_bookings_per_company=None,
        eligibility=Eligibility.ANY_COMPANY)


def _extra_data() -> campaign_extras.ExtraData:
    return campaign_extras.ExtraData(name="プロジェクター", name_en="", description="",
                               description_en="", quantity=9, max_per_booking=1)


def _campaign_data(slug: str = "taken-over") -> management.CampaignData:
    return management.CampaignData(
        slug=slug, name="乗っ取り", name_en="", description="", description_en="",
        starts_on=date(2027, 7, 22), ends_on=date(2027, 9, 6), core_days=[], published=False)


FACTORS = {"detour_factor": 2.0, "speed_kmh": 10.0, "rail_share_pct": 0.0,
           "rail_g_per_pkm": 1.0, "car_g_per_pkm": 1.0, "max_one_way_km": 5.0}

# What a stranger tries (s: the session, c: the fixture), and who the stranger is.
CALLS = {
    "get_campaign": ("other_clerk", lambda s, c: management.get_campaign(
        s, c["other_clerk"], c["campaign"].id)),
    "get_slot": ("other_clerk", lambda s, c: management.get_part(
        s, c["other_clerk"], c["campaign"], CampaignSlot, c["own_slot"].id)),
    "get_extra": ("other_clerk", lambda s, c: management.get_part(
        s, c["other_clerk"], c["campaign"], CampaignExtra, c["extra"].id)),
    # B's own campaign does not make A's slot B's.
    "get_slot_through_own_campaign": ("other_clerk", lambda s, c: management.get_part(
        s, c["other_clerk"], c["other_campaign"], CampaignSlot, c["own_slot"].id)),
    "save_campaign_new": ("other_clerk", lambda s, c: management.save_campaign(
        s, c["other_clerk"], c["a"], _campaign_data())),
    "save_campaign_edit": ("other_clerk", lambda s, c: management.save_campaign(
        s, c["other_clerk"], c["a"], _campaign_data(), c["campaign"])),
    "set_published": ("other_clerk", lambda s, c: management.set_published(
        s, c["other_clerk"], c["campaign"], False)),
    "save_slot_new": ("other_clerk", lambda s, c: management.save_slot(
        s, c["other_clerk"], c["campaign"], _slot_data(c["own_unit"].id))),
    "save_slot_edit": ("other_clerk", lambda s, c: management.save_slot(
        s, c["other_clerk"], c["campaign"], _slot_data(c["own_unit"].id), c["own_slot"])),
    # B's own campaign does not make A's slot B's to change.
    "save_slot_through_own_campaign": ("other_clerk", lambda s, c: management.save_slot(
        s, c["other_clerk"], c["other_campaign"], _slot_data(c["own_unit"].id), c["own_slot"])),
    "delete_slot": ("other_clerk", lambda s, c: management.delete_slot(
        s, c["other_clerk"], c["own_slot"])),
    "save_extra_new": ("other_clerk", lambda s, c: campaign_extras.save_extra(
        s, c["other_clerk"], c["campaign"], _extra_data())),
    "save_extra_edit": ("other_clerk", lambda s, c: campaign_extras.save_extra(
        s, c["other_clerk"], c["campaign"], _extra_data(), c["extra"])),
    "save_extra_through_own_campaign": ("other_clerk", lambda s, c: campaign_extras.save_extra(
        s, c["other_clerk"], c["other_campaign"], _extra_data(), c["extra"])),
    "delete_extra": ("other_clerk", lambda s, c: campaign_extras.delete_extra(
        s, c["other_clerk"], c["extra"])),
    "report": ("other_clerk", lambda s, c: reports.build(s, c["other_clerk"], c["campaign"])),
    "factors_of": ("other_clerk", lambda s, c: reports.factors_of(
        s, c["other_clerk"], c["a"].id)),
    "save_factors": ("other_clerk", lambda s, c: reports.save_factors(
        s, c["other_clerk"], c["a"].id, FACTORS)),
    # Consent is the slot's operator's: not another operator's, not the municipality's.
    "get_slot_to_consent": ("other_operator", lambda s, c: management.get_slot_to_consent(
        s, c["other_operator"], c["operator_slot"].id)),
    "set_consent_other_operator": ("other_operator", lambda s, c: management.set_consent(
        s, c["other_operator"], c["operator_slot"], True)),
    "set_consent_municipality": ("clerk", lambda s, c: management.set_consent(
        s, c["clerk"], c["operator_slot"], True)),
    "register_participation": ("other_clerk", lambda s, c: management.register_participation(
        s, c["other_clerk"], c["company"], TeleworkCategory.SPECIAL, 100)),
}


def _state(c: dict) -> tuple:
    """Everything a stranger could have changed, read afresh from the database."""
    db.session.expire_all()

    def rows(*columns, where):
        return [tuple(r) for r in db.session.execute(
            sa.select(*columns).where(where).order_by(columns[0]))]

    return (
        rows(Campaign.id, Campaign.slug, Campaign.name, Campaign.published,
             where=sa.true()),
        rows(CampaignSlot.id, CampaignSlot.seats, CampaignSlot.operator_consent,
             where=sa.true()),
        rows(CampaignExtra.id, CampaignExtra.name, CampaignExtra.quantity, where=sa.true()),
        rows(ReportFactors.id, where=sa.true()),
        rows(Organisation.id, Organisation.telework_category, Organisation.core_day_staff,
             where=Organisation.id == c["company"].id),
        db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)),
    )


@pytest.mark.parametrize("call", list(CALLS))
def test_a_stranger_calling_a_campaign_service_is_refused_and_changes_nothing(app, city, call):
    _who, action = CALLS[call]
    before = _state(city)
    with pytest.raises(DomainError) as refused:
        action(db.session, city)
        db.session.flush()
    assert refused.value.code in ("not_found", "no_company"), refused.value.code
    db.session.rollback()
    assert _state(city) == before


def test_the_campaigns_own_people_may(app, city):
    """The same calls by the campaign's clerk, the slot's operator and the company's booker
    pass (so that the refusals above are about who calls, not what)."""
    s = db.session
    clerk, campaign = city["clerk"], city["campaign"]
    assert management.get_campaign(s, clerk, campaign.id) is campaign
    assert management.get_part(s, clerk, campaign, CampaignSlot,
                               city["own_slot"].id) is city["own_slot"]
    assert management.get_part(s, clerk, campaign, CampaignExtra,
                               city["extra"].id) is city["extra"]
    management.save_slot(s, clerk, campaign, _slot_data(city["own_unit"].id, 4), city["own_slot"])
    campaign_extras.save_extra(s, clerk, campaign, _extra_data(), city["extra"])
    management.set_published(s, clerk, campaign, False)
    assert reports.build(s, clerk, campaign).campaign is campaign
    reports.save_factors(s, clerk, city["a"].id, FACTORS)
    slot = management.get_slot_to_consent(s, city["operator"], city["operator_slot"].id)
    management.set_consent(s, city["operator"], slot, True)
    management.register_participation(s, city["booker"], city["company"],
                                     TeleworkCategory.SPECIAL, 100)
    s.commit()
    s.expire_all()
    assert (city["own_slot"].seats, city["extra"].name, campaign.published) == (
        4, "プロジェクター", False)
    assert city["operator_slot"].operator_consent is True
    assert city["company"].telework_category == TeleworkCategory.SPECIAL


def test_a_report_of_a_space_the_campaign_does_not_use_is_not_found(app, city, make):
    elsewhere = make.space(city["a"], name="枠のない施設")
    with pytest.raises(DomainError) as refused:
        reports.build(db.session, city["clerk"], city["campaign"], elsewhere.id)
    assert refused.value.code == "not_found"
    report = reports.build(db.session, city["clerk"], city["campaign"], city["own_unit"].space_id)
    assert report.space.id == city["own_unit"].space_id
    assert {s.id for s in report.campaign_spaces} == {city["own_unit"].space_id,
                                                      city["operator_slot"].unit.space_id}
