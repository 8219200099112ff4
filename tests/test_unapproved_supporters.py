"""A municipality the site admin has not approved runs no campaign, and a municipality's
slot form offers only what it may offer (issue 17, finding 10).

Before: an unapproved municipality could create campaigns, its slot form listed every
approved operator's units, published spaces or not, and it could file slot requests
(slots waiting for the operator's consent) on them.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Campaign, CampaignSlot, Eligibility, OrgKind
from booking.services import campaign_management
from booking.services.errors import DomainError


@pytest.fixture
def land(make):
    """An approved and an unapproved municipality, each with a clerk and a space of its own;
    operators approved and not, with published and unpublished spaces."""
    def unit_of(org, name, published=True):
        return make.unit(make.space(org, name=name, published=published), name=f"{name}の席")

    city = make.organisation(OrgKind.MUNICIPALITY, name="承認済み市")
    pending_city = make.organisation(OrgKind.MUNICIPALITY, name="承認待ち町", approved=False)
    other_city = make.organisation(OrgKind.MUNICIPALITY, name="よその市")
    operator = make.organisation(OrgKind.OPERATOR, name="承認済み運営")
    pending_operator = make.organisation(OrgKind.OPERATOR, name="承認待ち運営", approved=False)
    units = {
        "own": unit_of(city, "市の施設"),
        "own_unpublished": unit_of(city, "市の準備中施設", published=False),
        "pending_own": unit_of(pending_city, "町の施設"),
        "operator": unit_of(operator, "公開中の施設"),
        "operator_unpublished": unit_of(operator, "非公開の施設", published=False),
        "pending_operator": unit_of(pending_operator, "未承認運営の施設"),
        "other_city": unit_of(other_city, "よその市の施設"),
    }
    return {
        "city": city, "pending_city": pending_city, "units": units,
        "clerk": make.user(organisation=city), "pending_clerk": make.user(organisation=pending_city),
        "campaign": make.campaign(city, published=False),
        # Made while it was approved (or by the admin): approval revoked since.
        "pending_campaign": make.campaign(pending_city, published=False),
    }


def _slot_data(unit_id: int) -> campaign_management.SlotData:
    return campaign_management.SlotData(
        unit_id=unit_id, start_date=date(2027, 7, 23), end_date=date(2027, 7, 26),
        daily_start_min=540, daily_end_min=1080, seats=3, price_amount=0, subsidy_cap=None,
        max_seats_per_company_per_day=None, max_bookings_per_company=None,
        eligibility=Eligibility.ANY_COMPANY)


def _count(model) -> int:
    db.session.commit()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_the_slot_form_lists_own_spaces_and_published_spaces_of_approved_operators(land):
    names = {u.name for u in campaign_management.eligible_units(db.session, land["clerk"],
                                                                 land["city"])}
    assert names == {"市の施設の席", "市の準備中施設の席", "公開中の施設の席"}
    # An unapproved municipality is offered its own spaces only (and may not use them yet).
    names = {u.name for u in campaign_management.eligible_units(
        db.session, land["pending_clerk"], land["pending_city"])}
    assert names == {"町の施設の席"}


def test_the_slot_form_page_shows_no_unpublished_space(land, client, login):
    login(land["clerk"])
    page = client.get(f"/municipality/campaigns/{land['campaign'].id}/slots/new")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "公開中の施設" in text and "市の準備中施設" in text
    for hidden in ("非公開の施設", "未承認運営の施設", "よその市の施設", "町の施設"):
        assert hidden not in text, hidden


@pytest.mark.parametrize("which", ["operator_unpublished", "pending_operator", "other_city"])
def test_no_slot_request_on_what_the_form_does_not_offer(land, which):
    unit = land["units"][which]
    with pytest.raises(DomainError) as err:
        campaign_management.save_slot(db.session, land["clerk"], land["campaign"], _slot_data(unit.id))
    assert err.value.code == "slot_unit_not_allowed"
    db.session.rollback()
    assert _count(CampaignSlot) == 0


def test_an_unapproved_municipality_creates_no_campaign_and_no_slot(land, client, login):
    login(land["pending_clerk"])
    response = client.post("/municipality/campaigns/new", data={
        "organisation_id": land["pending_city"].id, "name": "未承認のキャンペーン",
        "slug": "not-yet", "starts_on": "2027-07-22", "ends_on": "2027-09-06"})
    assert response.status_code == 403  # not_approved, shown on the form
    assert "承認" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(Campaign).where(Campaign.slug == "not-yet")) is None
    # Not even a slot on its own space, nor a slot request to an operator.
    campaign = land["pending_campaign"]
    for unit in (land["units"]["pending_own"], land["units"]["operator"]):
        response = client.post(f"/municipality/campaigns/{campaign.id}/slots/new", data={
            "unit_id": unit.id, "start_date": "2027-07-23", "end_date": "2027-07-26",
            "daily_start": "09:00", "daily_end": "18:00", "seats": "3", "price_mode": "free",
            "eligibility": "any"})
        # Its own unit: not_approved (403); an operator's is no choice of the form (422).
        assert response.status_code in (403, 422), unit.name
    assert _count(CampaignSlot) == 0
    # The service says why, whoever calls it.
    with pytest.raises(DomainError) as err:
        campaign_management.save_slot(db.session, land["pending_clerk"], campaign,
                            _slot_data(land["units"]["pending_own"].id))
    assert err.value.code == "not_approved"
    db.session.rollback()
    with pytest.raises(DomainError) as err:
        campaign_management.save_campaign(db.session, land["pending_clerk"], land["pending_city"],
                                campaign_management.CampaignData(
                                    slug="not-yet-2", name="x", name_en="", description="",
                                    description_en="", starts_on=date(2027, 7, 22),
                                    ends_on=date(2027, 9, 6), core_days=[], published=True))
    assert err.value.code == "not_approved"
    db.session.rollback()
    assert _count(Campaign) == 2


def test_an_approved_municipality_still_runs_its_campaigns(land, client, login):
    login(land["clerk"])
    response = client.post("/municipality/campaigns/new", data={
        "organisation_id": land["city"].id, "name": "承認済みのキャンペーン",
        "slug": "approved-days", "starts_on": "2027-07-22", "ends_on": "2027-09-06"})
    assert response.status_code == 302
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.slug == "approved-days"))
    response = client.post(f"/municipality/campaigns/{campaign.id}/slots/new", data={
        "unit_id": land["units"]["operator"].id, "start_date": "2027-07-23",
        "end_date": "2027-07-26", "daily_start": "09:00", "daily_end": "18:00", "seats": "3",
        "price_mode": "free", "eligibility": "any"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert _count(CampaignSlot) == 1
