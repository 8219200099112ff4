"""Only a municipality's own members see its reports and edit its campaigns: every route of
the municipality blueprint (and the restricted routes of the campaigns blueprint) tried by
another municipality, an operator, a company and an anonymous visitor."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Campaign, CampaignExtra, CampaignSlot, OrgKind, ReportFactors
from booking.services.availability import at
from tests import worlds

# (method, url template, what the owner gets). Every route of the blueprint is here; the
# test below fails when a route is added without a line.
MUNICIPALITY_ROUTES = [
    ("GET", "/municipality/", 200),
    ("GET", "/municipality/campaigns/new", 200),
    ("POST", "/municipality/campaigns/new", 422),  # empty form: errors, nothing created
    ("GET", "/municipality/campaigns/{campaign}", 200),
    ("GET", "/municipality/campaigns/{campaign}/edit", 200),
    ("POST", "/municipality/campaigns/{campaign}/edit", 422),
    ("POST", "/municipality/campaigns/{campaign}/publish", 302),
    ("GET", "/municipality/campaigns/{campaign}/slots/new", 200),
    ("POST", "/municipality/campaigns/{campaign}/slots/new", 422),
    ("GET", "/municipality/campaigns/{campaign}/slots/{slot}/edit", 200),
    ("POST", "/municipality/campaigns/{campaign}/slots/{slot}/edit", 422),
    ("POST", "/municipality/campaigns/{campaign}/slots/{slot}/delete", 409),  # it has a booking
    ("GET", "/municipality/campaigns/{campaign}/extras/new", 200),
    ("POST", "/municipality/campaigns/{campaign}/extras/new", 422),
    ("GET", "/municipality/campaigns/{campaign}/extras/{extra}/edit", 200),
    ("POST", "/municipality/campaigns/{campaign}/extras/{extra}/edit", 422),
    ("POST", "/municipality/campaigns/{campaign}/extras/{extra}/delete", 302),
    ("GET", "/municipality/campaigns/{campaign}/report", 200),
    ("GET", "/municipality/campaigns/{campaign}/report.csv", 200),
    ("GET", "/municipality/campaigns/{campaign}/report.xlsx", 200),
    ("GET", "/municipality/campaigns/{campaign}/report-csv.zip", 200),
    ("GET", "/municipality/campaigns/{campaign}/report/print", 200),
    ("GET", "/municipality/factors", 200),
    ("POST", "/municipality/factors", 422),
]
# Routes that name no campaign: another municipality sees its own data there.
OWN_DATA_ROUTES = {"/municipality/", "/municipality/campaigns/new", "/municipality/factors"}


@dataclass
class World:
    campaign: Campaign
    slot: CampaignSlot
    extra: CampaignExtra
    owner: object
    other_city: object
    operator: object
    other_operator: object
    company: object

    def url(self, template: str) -> str:
        return template.format(campaign=self.campaign.id, slot=self.slot.id, extra=self.extra.id)


@pytest.fixture
def world(app, make) -> World:
    site = worlds.world(make, owner=True)  # an operator's unit, a company's booker
    city = make.organisation(OrgKind.MUNICIPALITY, name="秘密市")
    other_city = make.organisation(OrgKind.MUNICIPALITY, name="隣町")
    campaign = make.campaign(city, name="秘密市キャンペーン", published=False)
    slot = make.slot(campaign, site["desks"], operator_consent=False)
    extra = CampaignExtra(campaign_id=campaign.id, name="秘密のWi-Fi", quantity=3)
    db.session.add(extra)
    db.session.commit()
    make.booking(site["desks"], at(campaign.starts_on, 540), at(campaign.starts_on, 1080),
                 company=make.company(), campaign_slot_id=slot.id)
    return World(campaign=campaign, slot=slot, extra=extra,
                 owner=make.user(organisation=city),
                 other_city=make.user(organisation=other_city),
                 operator=site["owner"],
                 other_operator=make.user(organisation=make.organisation(OrgKind.OPERATOR)),
                 company=site["booker"])


def _state(world: World) -> tuple:
    db.session.expire_all()
    campaign = db.session.get(Campaign, world.campaign.id)
    return (campaign.published, campaign.name,
            db.session.get(CampaignSlot, world.slot.id) is not None,
            db.session.get(CampaignSlot, world.slot.id).operator_consent,
            db.session.get(CampaignExtra, world.extra.id) is not None,
            db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)),
            db.session.scalar(sa.select(sa.func.count()).select_from(ReportFactors)))


def _call(client, method: str, url: str):
    # The only field sent asks to publish: outsiders must not manage even that.
    return client.get(url) if method == "GET" else client.post(url, data={"published": "1"})


def test_every_route_of_the_blueprint_is_in_the_table(app):
    listed = {(m, t.replace("{campaign}", "<int:campaign_id>").replace("{slot}", "<int:slot_id>")
               .replace("{extra}", "<int:extra_id>")) for m, t, _ in MUNICIPALITY_ROUTES}
    routes = {(m, r.rule) for r in app.url_map.iter_rules() if r.endpoint.startswith("municipality.")
              for m in r.methods - {"HEAD", "OPTIONS"}}
    assert routes == listed


@pytest.mark.parametrize("who", ["anonymous", "operator", "company", "other_city"])
def test_outsiders_get_nothing(world, client, login, who):
    if who != "anonymous":
        login(getattr(world, who))
    before = _state(world)
    for method, template, _owner in MUNICIPALITY_ROUTES:
        response = _call(client, method, world.url(template))
        body = response.get_data(as_text=True)
        if who == "anonymous":
            assert response.status_code == 302, (method, template)
            assert "/account/login" in response.headers["Location"]
        elif who in ("operator", "company"):
            assert response.status_code == 403, (method, template)
        elif template in OWN_DATA_ROUTES:
            assert response.status_code in (200, 422), (method, template)
        else:
            assert response.status_code == 404, (method, template)
        assert "秘密市キャンペーン" not in body and "秘密のWi-Fi" not in body, (who, template)
    assert _state(world) == before  # nothing changed by anyone


def test_owner_gets_every_route(world, client, login):
    login(world.owner)
    # Deletes last: the slot has a booking, so it stays; the extra goes.
    for method, template, expected in MUNICIPALITY_ROUTES:
        response = _call(client, method, world.url(template))
        assert response.status_code == expected, (method, template, response.status_code)
        if template.endswith("/report.csv"):
            assert response.data.startswith(b"\xef\xbb\xbf")
    db.session.expire_all()
    assert db.session.get(CampaignSlot, world.slot.id) is not None  # refused: it has a booking
    assert db.session.get(CampaignExtra, world.extra.id) is None
    assert db.session.get(Campaign, world.campaign.id).published is True  # publish toggled


def test_another_municipalitys_index_does_not_list_our_campaign(world, client, login):
    login(world.other_city)
    page = client.get("/municipality/").get_data(as_text=True)
    assert "秘密市キャンペーン" not in page
    # And its campaign form cannot create a campaign for us.
    response = client.post("/municipality/campaigns/new", data={
        "organisation_id": world.campaign.organisation_id, "name": "乗っ取り", "slug": "take-over",
        "starts_on": "2027-07-22", "ends_on": "2027-09-06"})
    assert response.status_code == 422
    assert db.session.scalar(sa.select(Campaign).where(Campaign.slug == "take-over")) is None


def test_unpublished_campaign_page_is_not_public(world, client, login):
    assert client.get(f"/campaigns/{world.campaign.slug}").status_code == 404
    login(world.company)
    assert client.get(f"/campaigns/{world.campaign.slug}").status_code == 404


# The restricted routes of the campaigns blueprint: (method, url, who may, what others get).
@pytest.mark.parametrize("who,expected", [
    ("anonymous", 302), ("operator", 403), ("other_city", 403), ("owner", 403), ("company", 200),
])
def test_participation_is_for_companies(world, client, login, who, expected):
    if who != "anonymous":
        login(getattr(world, who))
    assert client.get("/campaigns/participation").status_code == expected
    posted = client.post("/campaigns/participation", data={"telework_category": "special"})
    assert posted.status_code == (302 if who in ("anonymous", "company") else expected)


@pytest.mark.parametrize("who,listing,consent", [
    ("anonymous", 302, 302), ("company", 403, 403), ("owner", 403, 403),
    ("other_operator", 200, 404), ("operator", 200, 302),
])
def test_consent_is_for_the_spaces_operator(world, client, login, who, listing, consent):
    if who != "anonymous":
        login(getattr(world, who))
    page = client.get("/campaigns/consents")
    assert page.status_code == listing
    if who == "other_operator":
        assert "秘密市キャンペーン" not in page.get_data(as_text=True)
    response = client.post(f"/campaigns/consents/{world.slot.id}", data={"consent": "1"})
    assert response.status_code == consent
    db.session.expire_all()
    assert db.session.get(CampaignSlot, world.slot.id).operator_consent is (who == "operator")
