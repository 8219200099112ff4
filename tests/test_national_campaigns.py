"""National campaigns (services/national_campaigns.py): the site admin creates and edits
one (period, core days, categories) with refusals beside the fields; a municipality
attaches its campaign as a programme (dates within the national period, its own campaign
only); the public pages list only public programmes; the admin's roll-up is the sum of
the per-programme reports, and its CSV is one table pandas reads. Both databases."""

from __future__ import annotations

import io
import threading
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import (
    AuditEntry,
    BookingStatus,
    Campaign,
    NationalCampaign,
    OrgKind,
)
from booking.seeds import demo
from booking.services import campaign_management, national_campaigns, reports
from booking.services.availability import at
from booking.services.errors import DomainError

CATEGORIES = national_campaigns.TELEWORK_DAYS_CATEGORIES


def _national(make_slug: str = "telework-days-2027", **kw) -> NationalCampaign:
    kw.setdefault("name", "テレワーク・デイズ2027")
    kw.setdefault("name_en", "Telework Days 2027")
    kw.setdefault("starts_on", date(2027, 7, 22))
    kw.setdefault("ends_on", date(2027, 9, 6))
    kw.setdefault("core_days", ["2027-07-28"])
    kw.setdefault("categories", [dict(c) for c in CATEGORIES])
    kw.setdefault("published", True)
    national = NationalCampaign(slug=make_slug, **kw)
    db.session.add(national)
    db.session.commit()
    return national


def _form(**over) -> dict:
    data = {
        "name": "テレワーク・デイズ2027", "name_en": "Telework Days 2027",
        "slug": "telework-days-2027", "description": "全国一斉のテレワーク",
        "starts_on": "2027-07-22", "ends_on": "2027-09-06", "core_days": "2027-07-28",
        "published": "y",
    }
    for i, c in enumerate(CATEGORIES):
        for key, value in c.items():
            data[f"categories-{i}-{key}"] = value
    data.update(over)
    return data


@pytest.fixture
def admin(make):
    return make.user(is_admin=True)


# ------------------------------------------------------------------------- admin: create/edit


def test_the_admin_creates_and_edits_a_national_campaign(client, login, admin):
    login(admin)
    page = client.get("/admin/national/new")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # A new campaign starts with Telework Days' three categories and their conditions.
    for c in CATEGORIES:
        assert c["name"] in text and c["conditions"] in text
    response = client.post("/admin/national/new", data=_form())
    assert response.status_code == 302, response.get_data(as_text=True)
    national = db.session.scalar(sa.select(NationalCampaign))
    assert (national.starts_on, national.ends_on) == (date(2027, 7, 22), date(2027, 9, 6))
    assert national.core_days == ["2027-07-28"] and national.published
    assert [c["code"] for c in national.categories] == ["implementing", "special", "supporter"]
    assert national.categories[1]["conditions"] == CATEGORIES[1]["conditions"]
    assert db.session.scalar(sa.select(AuditEntry.action).where(
        AuditEntry.action == "national_campaign.create")) is not None

    edit = client.get(f"/admin/national/{national.id}/edit")
    assert edit.status_code == 200 and "2027-07-28" in edit.get_data(as_text=True)
    response = client.post(f"/admin/national/{national.id}/edit", data=_form(
        core_days="2027-07-28, 2027-08-04", **{"categories-2-name": "応援団体(自治体・施設)"}))
    assert response.status_code == 302
    db.session.expire_all()
    national = db.session.get(NationalCampaign, national.id)
    assert national.core_days == ["2027-07-28", "2027-08-04"]
    assert national.categories[2]["name"] == "応援団体(自治体・施設)"
    listing = client.get("/admin/national").get_data(as_text=True)
    assert "テレワーク・デイズ2027" in listing


@pytest.mark.parametrize("over, field, message", [
    ({"ends_on": "2027-07-01"}, "ends_on", "終了は開始より後にしてください。"),
    ({"core_days": "2027-10-01"}, "core_days", "コア日は実施期間内の日付にしてください。"),
    ({"core_days": "7/24"}, "core_days", "日付は YYYY-MM-DD 形式で入力してください。"),
    ({"categories-1-code": "implementing"}, "categories", "コードは重複できません"),
    ({"categories-0-name": ""}, "categories", "コードと名前を入力してください"),
    ({"name": ""}, "name", ""),
])
def test_the_admin_is_told_beside_the_field(client, login, admin, over, field, message):
    login(admin)
    response = client.post("/admin/national/new", data=_form(**over))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text
    if field != "categories":
        assert f'id="{field}-error"' in text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NationalCampaign)) == 0


def test_a_slug_taken_and_a_period_leaving_a_programme_outside_are_refused(client, login, admin,
                                                                           make):
    login(admin)
    national = _national()
    other = _national("telework-days-2028", starts_on=date(2028, 7, 22), ends_on=date(2028, 9, 6),
                      core_days=["2028-07-26"])
    response = client.post(f"/admin/national/{other.id}/edit",
                           data=_form(slug="telework-days-2027", starts_on="2028-07-22",
                                      ends_on="2028-09-06", core_days="2028-07-26"))
    assert response.status_code == 409
    assert "このURL名は既に使われています。" in response.get_data(as_text=True)
    make.campaign(make.organisation(OrgKind.MUNICIPALITY), national_campaign_id=national.id,
                  starts_on=date(2027, 7, 22), ends_on=date(2027, 8, 31))
    response = client.post(f"/admin/national/{national.id}/edit",
                           data=_form(starts_on="2027-07-25"))
    assert response.status_code == 409
    assert 'id="starts_on-error"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(NationalCampaign, national.id).starts_on == date(2027, 7, 22)


def test_only_the_site_admin_creates_national_campaigns(client, login, make):
    national = _national()
    clerk = make.user(organisation=make.organisation(OrgKind.MUNICIPALITY))
    assert client.get("/admin/national/new").status_code == 302  # to the log-in page
    login(clerk)
    for url in ("/admin/national", "/admin/national/new", f"/admin/national/{national.id}/edit",
                f"/admin/national/{national.id}/report",
                f"/admin/national/{national.id}/report.csv"):
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/national/new",
                       data=_form(slug="mine")).status_code == 403
    # The service refuses on its own too (called without the blueprint's guard).
    with pytest.raises(DomainError) as refused:
        national_campaigns.save_national(db.session, clerk, national_campaigns.NationalData(
            slug="x-2027", name="x", name_en="", description="", description_en="",
            starts_on=date(2027, 7, 22), ends_on=date(2027, 9, 6), core_days=[]))
    assert refused.value.status == 404
    with pytest.raises(DomainError):
        national_campaigns.roll_up(db.session, clerk, national)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NationalCampaign)) == 1


def test_an_unknown_national_campaign_is_a_404_for_the_admin(client, login, admin):
    login(admin)
    assert client.get("/admin/national/999/edit").status_code == 404
    assert client.get("/admin/national/999/report").status_code == 404


# ------------------------------------------------------------------------- programmes


@pytest.fixture
def city(make):
    a = make.organisation(OrgKind.MUNICIPALITY, name="A市")
    b = make.organisation(OrgKind.MUNICIPALITY, name="B市")
    return {"a": a, "clerk": make.user(organisation=a),
            "other": make.campaign(b, name="B市キャンペーン"),
            "other_clerk": make.user(organisation=b)}


def _campaign_form(national_id: object = "", **over) -> dict:
    data = {"name": "A市テレワーク", "slug": "a-telework-2027", "starts_on": "2027-07-22",
            "ends_on": "2027-08-31", "core_days": "", "national_campaign_id": str(national_id),
            "published": "y"}
    data.update(over)
    return data


def test_a_municipality_attaches_its_campaign_to_the_national_campaign(client, login, city):
    national = _national()
    login(city["clerk"])
    form = client.get("/municipality/campaigns/new").get_data(as_text=True)
    assert "テレワーク・デイズ2027" in form and 'name="national_campaign_id"' in form
    response = client.post("/municipality/campaigns/new",
                           data=_campaign_form(national.id, organisation_id=city["a"].id))
    assert response.status_code == 302, response.get_data(as_text=True)
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.slug == "a-telework-2027"))
    assert campaign.national_campaign_id == national.id
    # Without core days of its own, its page shows the national core day (inherited).
    page = client.get("/campaigns/a-telework-2027").get_data(as_text=True)
    assert "コア日(全国)" in page and "2027年7月28日" in page
    assert "/campaigns/national/telework-days-2027" in page
    console = client.get(f"/municipality/campaigns/{campaign.id}").get_data(as_text=True)
    assert "全国キャンペーン「テレワーク・デイズ2027」の地域プログラムです。" in console
    assert "コア日(全国)" in console and "2027年7月28日" in console
    # Detached again: a campaign of its own.
    response = client.post(f"/municipality/campaigns/{campaign.id}/edit",
                           data=_campaign_form("", organisation_id=city["a"].id))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).national_campaign_id is None


def test_a_programme_outside_the_national_period_is_refused(client, login, city):
    national = _national()
    login(city["clerk"])
    response = client.post("/municipality/campaigns/new", data=_campaign_form(
        national.id, organisation_id=city["a"].id, ends_on="2027-09-30"))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert 'id="starts_on-error"' in text and "全国キャンペーンの期間" in text
    # An unpublished national campaign (or none at all) is not there to join.
    hidden = _national("hidden-2027", published=False)
    response = client.post("/municipality/campaigns/new", data=_campaign_form(
        hidden.id, organisation_id=city["a"].id))
    assert response.status_code == 422  # not a choice of the select
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 1  # B's


def test_another_municipalitys_campaign_cannot_be_attached(client, login, city):
    national = _national()
    other = city["other"]
    login(city["clerk"])
    response = client.post(f"/municipality/campaigns/{other.id}/edit",
                           data=_campaign_form(national.id, slug=other.slug))
    assert response.status_code == 404
    with pytest.raises(DomainError) as refused:
        campaign_management.save_campaign(
            db.session, city["clerk"], other.organisation, campaign_management.CampaignData(
                slug=other.slug, name="x", name_en="", description="", description_en="",
                starts_on=other.starts_on, ends_on=other.ends_on, core_days=[], published=True,
                national_campaign_id=national.id), other)
    assert refused.value.status == 404
    db.session.rollback()
    assert db.session.get(Campaign, other.id).national_campaign_id is None


# ------------------------------------------------------------------------- public pages


@pytest.fixture
def programmes(make):
    """A national campaign with three programmes: public (a free and a priced slot), one
    unpublished, one of a municipality not approved."""
    national = _national()
    space_org = make.organisation(OrgKind.MUNICIPALITY, name="公開市")
    unit = make.unit(make.space(space_org, published=True), price_amount=1000)
    shown = make.campaign(space_org, name="公開市のプログラム", national_campaign_id=national.id)
    make.slot(shown, unit, seats=4, price_amount=0, operator_consent=True)
    make.slot(shown, unit, seats=3, price_amount=None, operator_consent=True)
    make.campaign(make.organisation(OrgKind.MUNICIPALITY, name="準備市"),
                  name="非公開のプログラム", national_campaign_id=national.id, published=False)
    make.campaign(make.organisation(OrgKind.MUNICIPALITY, name="未承認市", approved=False),
                  name="未承認のプログラム", national_campaign_id=national.id)
    make.campaign(space_org, name="独自キャンペーン")
    return national


def test_the_public_national_page_lists_only_public_programmes(client, programmes):
    page = client.get("/campaigns/national/telework-days-2027")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "2027年7月22日" in text and "2027年9月6日" in text and "2027年7月28日" in text
    for c in CATEGORIES:
        assert c["name"] in text and c["conditions"] in text
    assert "公開市のプログラム" in text and "2枠" in text and "7席" in text and "1枠" in text
    assert "非公開のプログラム" not in text and "未承認のプログラム" not in text
    english = client.get("/campaigns/national/telework-days-2027?lang=en")
    assert english.status_code == 200


def test_the_campaigns_index_lists_national_campaigns_first(client, programmes):
    text = client.get("/campaigns/").get_data(as_text=True)
    assert text.index("テレワーク・デイズ2027") < text.index("公開市のプログラム") \
        < text.index("独自キャンペーン")
    assert "非公開のプログラム" not in text and "未承認のプログラム" not in text


def test_an_unpublished_national_campaign_has_no_public_page(client):
    _national(published=False)
    assert client.get("/campaigns/national/telework-days-2027").status_code == 404
    assert client.get("/campaigns/national/none").status_code == 404


def test_the_participation_page_speaks_of_the_national_categories(client, login, make):
    _national(categories=[{**c, "conditions": c["conditions"] + "(2027年版)"} for c in CATEGORIES])
    login(make.user(organisation=make.company()))
    text = client.get("/campaigns/participation").get_data(as_text=True)
    assert "(2027年版)" in text and "テレワーク・デイズ2027" in text
    assert "参加の方法は3つです。" not in text


# ------------------------------------------------------------------------- roll-up


@pytest.fixture
def seeded(app):
    demo.load(db.session, today=date(2019, 7, 1))
    db.session.commit()


def test_the_seed_makes_telework_days_a_national_campaign_with_programmes(seeded):
    nationals = {n.slug: n for n in db.session.scalars(sa.select(NationalCampaign))}
    assert set(nationals) == {"telework-days-2019"}  # 2019-07-01: the coming summer is 2019
    n = nationals["telework-days-2019"]
    assert (n.starts_on, n.ends_on, n.core_days) == (date(2019, 7, 22), date(2019, 9, 6),
                                                     ["2019-07-24"])
    assert [c["name"] for c in n.categories] == ["実施団体", "特別協力団体", "応援団体"]
    assert {p.slug for p in n.programmes} == {
        "telework-days-2019-yoshikawa", "telework-days-2019-komagane",
        "telework-days-2019-tokushima", "shizuoka-trial-2019"}
    assert sum(demo.load(db.session, today=date(2019, 7, 1)).values()) == 0  # idempotent


def test_the_seed_has_2019_and_the_coming_summer_and_keeps_what_a_municipality_changed(app):
    today = date(2026, 12, 6)  # after 2026's period: the coming summer is 2027's
    demo.load(db.session, today=today)
    db.session.commit()
    nationals = {n.slug: n for n in db.session.scalars(sa.select(NationalCampaign))}
    assert set(nationals) == {"telework-days-2019", "telework-days-2027"}
    coming = nationals["telework-days-2027"]
    assert (coming.starts_on, coming.ends_on) == (date(2027, 7, 22), date(2027, 9, 6))
    assert coming.core_days == ["2027-07-28"]  # the Wednesday nearest 7/24 (demo.core_day)
    assert coming.categories == nationals["telework-days-2019"].categories
    assert {p.slug for p in coming.programmes} == {
        "telework-days-2027-yoshikawa", "telework-days-2027-komagane",
        "telework-days-2027-tokushima", "shizuoka-trial-2027"}
    # A municipality detaches its programme: seeding again leaves it detached.
    detached = db.session.scalar(sa.select(Campaign).where(
        Campaign.slug == "shizuoka-trial-2027"))
    detached.national_campaign_id = None
    db.session.commit()
    assert sum(demo.load(db.session, today=today).values()) == 0
    db.session.commit()
    assert db.session.get(Campaign, detached.id).national_campaign_id is None
    # A demo database from before national campaigns: its campaigns join the ones made now.
    db.session.execute(sa.update(Campaign).values(national_campaign_id=None))
    db.session.execute(sa.delete(NationalCampaign))
    db.session.commit()
    created = demo.load(db.session, today=today)
    db.session.commit()
    assert {k: v for k, v in created.items() if v} == {"national_campaigns": 2}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign).where(
        Campaign.national_campaign_id.is_(None))) == 0


def test_the_roll_up_is_the_sum_of_the_programmes_reports(seeded, make, client, login):
    slug = "telework-days-2019-{}".format
    slots = {s: db.session.scalar(sa.select(Campaign).where(Campaign.slug == slug(s))).slots[0]
             for s in ("yoshikawa", "komagane")}
    shizuoka = db.session.scalar(sa.select(Campaign).where(Campaign.slug == "shizuoka-trial-2019"))
    tokyo = make.company(name="東京商事", prefecture_code=13)
    osaka = make.company(name="大阪商事", prefecture_code=27)
    y, k, s = slots["yoshikawa"], slots["komagane"], shizuoka.slots[0]
    make.booking(y.unit, at(date(2019, 7, 23), 540), at(date(2019, 7, 23), 1080), 3,
                 company=tokyo, campaign_slot_id=y.id)
    make.booking(y.unit, at(date(2019, 7, 24), 540), at(date(2019, 7, 24), 1080), 1,
                 company=osaka, campaign_slot_id=y.id, status=BookingStatus.NO_SHOW)
    make.booking(k.unit, at(date(2019, 7, 24), 540), at(date(2019, 7, 25), 1080), 2,
                 company=tokyo, campaign_slot_id=k.id, status=BookingStatus.CHECKED_IN)
    make.booking(k.unit, at(date(2019, 7, 26), 540), at(date(2019, 7, 26), 1080), 1,
                 company=osaka, campaign_slot_id=k.id, status=BookingStatus.CANCELLED)
    make.booking(s.unit, at(date(2019, 7, 24), 540), at(date(2019, 7, 24), 1080), 1,
                 company=tokyo, campaign_slot_id=s.id, price_amount=0, subsidy_amount=1000)
    national = db.session.scalar(sa.select(NationalCampaign))
    admin = make.user(is_admin=True)

    rollup = national_campaigns.roll_up(db.session, admin, national)
    assert len(rollup.programmes) == 4
    per = [reports.figures(db.session, p.campaign).totals for p in rollup.programmes]
    total = rollup.total
    for name in ("bookings", "cancelled", "seat_days", "no_shows", "company_paid", "subsidies"):
        assert getattr(total, name) == sum(getattr(t, name) for t in per), name
    assert total.companies == set().union(*(t.companies for t in per))
    assert round(total.effect.co2_kg, 6) == round(sum(t.effect.co2_kg for t in per), 6)
    # The figures themselves: 4 holding bookings, 3 + 1 + 4 + 1 seat-days, ¥1,000 subsidy.
    assert (total.bookings, total.cancelled, total.seat_days, total.no_shows, total.subsidies,
            total.company_count) == (4, 1, 9, 1, 1000, 2)

    login(admin)
    page = client.get(f"/admin/national/{national.id}/report")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "吉川市" in text and "駒ヶ根市" in text and "合計" in text

    response = client.get(f"/admin/national/{national.id}/report.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith("\ufeff".encode())
    frame = pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig")
    assert list(frame.columns)[:4] == ["自治体", "キャンペーン", "期間", "予約件数"]
    assert len(frame) == 5  # four programmes and the total
    body, last = frame.iloc[:-1], frame.iloc[-1]
    assert last["自治体"] == "合計"
    for column in ("予約件数", "延べ席日数", "無断キャンセル(来場なし)", "キャンセル",
                   "企業の支払額(円)", "自治体の補助額(円)"):
        assert body[column].sum() == last[column], column
    assert last["利用企業数"] == 2 and body["利用企業数"].sum() == 4  # 東京商事 in three

    english = client.get(f"/admin/national/{national.id}/report.csv?lang=en")
    frame = pd.read_csv(io.BytesIO(english.data), encoding="utf-8-sig")
    assert frame.iloc[-1, 0] == "Total" and "Bookings" in frame.columns


# ------------------------------------------------------------------------- race

ROUNDS = 10


def _race(app, jobs) -> list[str]:
    """Each job in its own thread, app context and connection, released together: "ok"
    (committed) or the refusal's code."""
    db.session.commit()
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str] = [""] * len(jobs)

    def racer(i: int, job) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=60)
                job()
                db.session.commit()
                outcomes[i] = "ok"
            except DomainError as error:
                db.session.rollback()
                outcomes[i] = error.code
            except Exception as error:  # a failure of the test
                outcomes[i] = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=racer, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    db.session.expire_all()
    return outcomes


def test_a_period_change_and_a_programme_joining_never_leave_it_outside(app, backend, make):
    """The national period moves to start on 7/25 while a municipality attaches a campaign
    starting 7/22: whichever comes first, the other is refused (the national row is locked
    by both), never a programme outside its national period. PostgreSQL (row locks; on
    SQLite the one write lock decides the same way or answers busy)."""
    if backend != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    admin = make.user(is_admin=True)
    town = make.organisation(OrgKind.MUNICIPALITY)
    clerk = make.user(organisation=town)
    ids = (admin.id, clerk.id, town.id)
    for n in range(ROUNDS):
        national = _national(f"race-{n}")

        def shrink(national_id: int = national.id) -> None:
            user = db.session.get(type(admin), ids[0])
            found = db.session.get(NationalCampaign, national_id)
            national_campaigns.save_national(db.session, user, national_campaigns.NationalData(
                slug=found.slug, name=found.name, name_en="", description="", description_en="",
                starts_on=date(2027, 7, 25), ends_on=date(2027, 9, 6),
                core_days=[date(2027, 7, 28)], categories=found.categories), found)

        def join(national_id: int = national.id, n: int = n) -> None:
            user = db.session.get(type(clerk), ids[1])
            organisation = db.session.get(type(town), ids[2])
            campaign_management.save_campaign(
                db.session, user, organisation, campaign_management.CampaignData(
                    slug=f"race-town-{n}", name="町のテレワーク", name_en="", description="",
                    description_en="", starts_on=date(2027, 7, 22), ends_on=date(2027, 8, 31),
                    core_days=[], published=True, national_campaign_id=national_id))

        outcomes = _race(app, [shrink, join])
        assert sorted(outcomes) in (["national_programmes_outside", "ok"],
                                    ["ok", "programme_outside_national"]), outcomes
        national = db.session.get(NationalCampaign, national.id)
        programmes = db.session.scalars(sa.select(Campaign).where(
            Campaign.national_campaign_id == national.id)).all()
        assert all(p.starts_on >= national.starts_on for p in programmes)
