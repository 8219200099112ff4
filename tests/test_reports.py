"""Reports (効果測定) of a seeded campaign with bookings inserted here: every figure on the
page and in the CSV, the factors the municipality changes, and the subsidy split."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
import time_machine

from booking.extensions import db
from booking.models import BookingStatus, Campaign, CampaignSlot, Organisation, OrgKind, Space, User
from booking.seeds import demo
from booking.services import reports
from booking.services.availability import at
from tests.edge import reservations

OASIS = (35.8787, 139.8563)  # seeded, approximate
TOKYO_OFFICE = (35.6895, 139.6917)  # 東京都's position in booking/prefectures.py


@pytest.fixture
def seeded(app):
    demo.load(db.session, today=date(2019, 7, 1))
    db.session.commit()


def _slot(slug: str) -> CampaignSlot:
    return db.session.scalar(sa.select(CampaignSlot).join(Campaign).where(Campaign.slug == slug))


def _city_clerk() -> User:
    return db.session.scalar(sa.select(User).where(User.email == "city@example.jp"))


@pytest.fixture
def yoshikawa(seeded, make):
    """The seeded Telework Days 2019 campaign of 吉川市 with four bookings on おあしす."""
    slot = _slot("telework-days-2019-yoshikawa")
    tokyo = make.company(name="=1+2 商事", prefecture_code=13)  # no lat/lon: 東京都's position
    saitama = make.company(name="吉川ローカル株式会社", prefecture_code=11, lat=OASIS[0], lon=OASIS[1])
    chiba = make.company(name="千葉テスト株式会社", prefecture_code=12)
    unit, d = slot.unit, date
    make.booking(unit, at(d(2019, 7, 23), 540), at(d(2019, 7, 23), 1080), 3, company=tokyo,
                 campaign_slot_id=slot.id)
    make.booking(unit, at(d(2019, 7, 24), 540), at(d(2019, 7, 25), 1080), 2, company=tokyo,
                 campaign_slot_id=slot.id, status=BookingStatus.CHECKED_IN)
    make.booking(unit, at(d(2019, 7, 24), 540), at(d(2019, 7, 24), 1080), 1, company=saitama,
                 campaign_slot_id=slot.id, status=BookingStatus.NO_SHOW)
    make.booking(unit, at(d(2019, 7, 26), 540), at(d(2019, 7, 26), 1080), 2, company=chiba,
                 campaign_slot_id=slot.id, status=BookingStatus.CANCELLED)
    return slot.campaign


# Straight line Tokyo office -> おあしす, × 1.3 detour; 3 + 2×2 person-days of the Tokyo
# company (the no-show is not counted; the Saitama company's office is at the space).
STRAIGHT_KM = 25.7498
KM = 2 * STRAIGHT_KM * 1.3 * 7  # 468.6
EXPECTED = {
    "予約件数": "3",
    "延べ席日数": "8",
    "利用企業数": "2",
    "無断キャンセル(来場なし)": "1",
    "キャンセル": "1",
    "企業の支払額(円)": "0",
    "自治体の補助額(円)": "0",
    "削減できた通勤距離(km、推計)": f"{KM:.1f}",
    "削減できた通勤時間(時間、推計)": f"{KM / 30:.1f}",
    "削減できたCO2(kg、推計)": f"{KM * 17 / 1000:.1f}",
    "所在地不明の企業の予約": "0",
}
DAYS = [("2019-07-23", 20, 3, 15.0), ("2019-07-24", 20, 3, 15.0), ("2019-07-25", 20, 2, 10.0),
        ("2019-07-26", 20, 0, 0.0)]


def test_distance_is_the_great_circle(app):
    assert reports.haversine_km(*TOKYO_OFFICE, *OASIS) == pytest.approx(STRAIGHT_KM, abs=0.001)
    # One degree of latitude is about 111.2 km.
    assert reports.haversine_km(35, 139, 36, 139) == pytest.approx(111.2, abs=0.1)


def test_report_figures_number_by_number(yoshikawa):
    report = reports.build(db.session, _city_clerk(), yoshikawa)
    t = report.totals
    assert (t.bookings, t.cancelled, t.seat_days, t.company_count, t.no_shows) == (3, 1, 8, 2, 1)
    assert (t.company_paid, t.subsidies) == (0, 0)
    assert t.effect.person_days == 7
    assert t.effect.km == pytest.approx(KM, abs=0.01)
    assert t.effect.hours == pytest.approx(KM / 30, abs=0.001)
    assert t.effect.co2_kg == pytest.approx(KM * 17 / 1000, abs=0.001)
    assert [(d.day.isoformat(), d.offered, d.booked, d.rate) for d in report.days] == DAYS
    assert report.by_prefecture == [(11, 1), (13, 1)]
    assert report.by_category == [("none", 2, 0)]
    [row] = report.spaces
    assert row.space.slug == "oasis-yoshikawa" and row.totals.bookings == 3


def test_report_page_and_csv_show_the_same_figures(yoshikawa, client, login):
    login(_city_clerk(), demo.DEMO_PASSWORD)
    page = client.get(f"/municipality/campaigns/{yoshikawa.id}/report")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for label, value in EXPECTED.items():
        shown = f"{float(value):,.1f}" if "." in value else f"{int(value):,}"
        assert re.search(rf'<th scope="row">{re.escape(label)}</th><td class="num">{re.escape(shown)}</td>',
                         html), label
    assert '<svg class="chart"' in html and 'role="img"' in html
    for day, offered, booked, rate in DAYS:
        y, m, d = (int(x) for x in day.split("-"))
        assert re.search(rf"{y}年{m}月{d}日\(.\)</th><td class=\"num\">{offered}</td>"
                         rf"<td class=\"num\">{booked}</td><td class=\"num\">{rate}</td>", html), day

    response = client.get(f"/municipality/campaigns/{yoshikawa.id}/report.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    values = {r[0]: r[1] for r in rows if len(r) == 2}
    for label, value in EXPECTED.items():
        assert values[label] == value, label
    day_rows = [r for r in rows if r and re.fullmatch(r"2019-07-\d\d", r[0])]
    assert [(r[0], int(r[1]), int(r[2]), float(r[3])) for r in day_rows] == DAYS
    assert values["埼玉県"] == "1" and values["東京都"] == "1"
    # A company name that a spreadsheet would run as a formula is written as text.
    names = [r[1] for r in rows if len(r) == 9 and r[0] != "予約番号" and r[6] in
             ("confirmed", "checked_in", "no_show", "cancelled")]
    assert "'=1+2 商事" in names and "=1+2 商事" not in names


def test_changed_factors_change_the_estimate(yoshikawa, client, login, make):
    login(_city_clerk(), demo.DEMO_PASSWORD)
    page = client.get("/municipality/factors").get_data(as_text=True)
    assert "国土交通省" in page and "17.0" in page and "130.0" in page
    bad = client.post("/municipality/factors", data={
        "detour_factor": "0.5", "speed_kmh": "30", "rail_share_pct": "50", "rail_g_per_pkm": "17",
        "car_g_per_pkm": "130", "max_one_way_km": "60"})
    assert bad.status_code == 422
    response = client.post("/municipality/factors", data={
        "detour_factor": "1.3", "speed_kmh": "30", "rail_share_pct": "50", "rail_g_per_pkm": "17",
        "car_g_per_pkm": "130", "max_one_way_km": "60"})
    assert response.status_code == 302
    expected = KM * (0.5 * 17 + 0.5 * 130) / 1000  # 34.4 kg
    report = reports.build(db.session, _city_clerk(), yoshikawa)
    assert report.totals.effect.co2_kg == pytest.approx(expected, abs=0.001)
    rows = client.get(f"/municipality/campaigns/{yoshikawa.id}/report.csv").data.decode("utf-8-sig")
    assert f"削減できたCO2(kg、推計),{expected:.1f}" in rows
    # Another municipality keeps the defaults.
    other = db.session.scalar(sa.select(Organisation).where(Organisation.name == "静岡市"))
    other_clerk = make.user(organisation=other)
    assert reports.factors_of(db.session, other_clerk, other.id).rail_share_pct == 100.0


def test_per_space_report(yoshikawa, client, login):
    login(_city_clerk(), demo.DEMO_PASSWORD)
    oasis = db.session.scalar(sa.select(Space).where(Space.slug == "oasis-yoshikawa"))
    elsewhere = db.session.scalar(sa.select(Space).where(Space.slug == "enishia-shizuoka"))
    page = client.get(f"/municipality/campaigns/{yoshikawa.id}/report?space={oasis.id}")
    assert page.status_code == 200
    assert re.search(r'<th scope="row">予約件数</th><td class="num">3</td>', page.get_data(as_text=True))
    csv_rows = client.get(f"/municipality/campaigns/{yoshikawa.id}/report.csv?space={oasis.id}")
    assert "予約件数,3" in csv_rows.data.decode("utf-8-sig")
    url = f"/municipality/campaigns/{yoshikawa.id}/report?space={elsewhere.id}"
    assert client.get(url).status_code == 404


def test_subsidised_bookings_show_both_shares_in_the_report(seeded, make, client):
    """Shizuoka's trial: ¥1,000/day coworking desks, the city pays up to ¥1,000 a booking."""
    slot = _slot("shizuoka-trial-2019")
    demo_user = db.session.scalar(sa.select(User).where(User.email == "company@example.jp"))
    second = make.user(organisation=make.company(name="新宿テスト株式会社", prefecture_code=13))
    with time_machine.travel(datetime(2019, 7, 1, 3, tzinfo=UTC), tick=False):
        unit = slot.unit
        [three] = reservations.book(db.session, unit, demo_user,
                                    [reservations.day_period(unit, date(2019, 7, 24), slot)], 3,
                                    slot=slot)
        [one] = reservations.book(db.session, unit, second,
                                  [reservations.day_period(unit, date(2019, 7, 25), slot)], 1,
                                  slot=slot)
    assert (three.price_amount, three.subsidy_amount) == (2000, 1000)
    assert (one.price_amount, one.subsidy_amount) == (0, 1000)
    clerk = make.user(organisation=db.session.scalar(
        sa.select(Organisation).where(Organisation.name == "静岡市",
                                      Organisation.kind == OrgKind.MUNICIPALITY)))
    report = reports.build(db.session, clerk, slot.campaign)
    assert (report.totals.company_paid, report.totals.subsidies) == (2000, 2000)
    # Tokyo -> Shizuoka is beyond the 60 km cap: 2 × 60 km × 4 person-days.
    assert report.totals.effect.km == pytest.approx(480.0)
    client.post("/account/login", data={"email": clerk.email, "password": make.PASSWORD})
    html = client.get(f"/municipality/campaigns/{slot.campaign_id}/report").get_data(as_text=True)
    assert '<th scope="row">企業の支払額(円)</th><td class="num">2,000</td>' in html
    assert '<th scope="row">自治体の補助額(円)</th><td class="num">2,000</td>' in html
    # The row's cells carry their column's name (data-label) for the phone layout.
    assert re.search(rf"{three.reference}</th>.*?¥2,000</td><td class=\"num\"[^>]*>¥1,000</td>",
                     html, re.S)
    rows = list(csv.reader(io.StringIO(client.get(
        f"/municipality/campaigns/{slot.campaign_id}/report.csv").data.decode("utf-8-sig"))))
    line = next(r for r in rows if r and r[0] == three.reference)
    assert line[-2:] == ["2000", "1000"]

