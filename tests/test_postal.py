# ruff: noqa: RUF001  (full-width digits and letters are the point of these tests)
"""Addresses as Japanese forms do them: postal code → address (services/postal.py), the
gazetteer's towns, wards, districts and postal codes (services/geocoding.py), width and kana
variants in place search, and the forms' 「住所を入力」 round trip."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

import booking.seeds.demo
from booking.extensions import db
from booking.models import Space
from booking.services import geocoding, postal
from booking.services.errors import DomainError

# --- postal lookup (no database) -------------------------------------------------------------


@pytest.mark.parametrize("text", ["4228035", "422-8035", "〒422-8035", "〒４２２－８０３５", " 422 8035 "])
def test_lookup_accepts_the_ways_people_write_a_code(text):
    address = postal.lookup(text)
    assert (address.postal_code, address.prefecture_code, address.prefecture) == ("4228035", 22, "静岡県")
    assert (address.city, address.town) == ("静岡市駿河区", "宮竹")
    assert address.as_dict()["postal_code"] == "422-8035"
    assert address.as_dict()["address"] == "静岡市駿河区宮竹"


def test_lookup_whole_municipality_and_towns():
    assert postal.lookup("384-2300").city == "北佐久郡立科町"
    assert postal.lookup("384-2300").town == ""  # 以下に掲載がない場合: no town
    assert postal.lookup("100-0005").town == "丸の内"


@pytest.mark.parametrize(("text", "code"), [("999-9999", "unknown_postal_code"),
                                             ("422-803", "invalid_postal_code"),
                                             ("abc", "invalid_postal_code"),
                                             ("", "invalid_postal_code")])
def test_lookup_refuses(text, code):
    with pytest.raises(DomainError) as refused:
        postal.lookup(text)
    assert refused.value.code == code and refused.value.field == "postal_code"
    assert refused.value.status == 422


# --- the gazetteer ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "prefecture", "label"), [
    ("用宗", 22, "静岡市駿河区用宗"),
    ("葵区", 22, "静岡市葵区"),
    ("丸の内", 13, "千代田区丸の内"),  # namesakes in ten cities: the busiest (most codes)
    ("神山町", 36, "名西郡神山町"),  # the town of Tokushima, not Shibuya's 神山町
    ("立科町", 20, "北佐久郡立科町"),
    ("愛知県 丸の内", 23, "名古屋市中区丸の内"),  # a prefecture narrows namesakes
])
def test_gazetteer_knows_the_postal_datas_names(text, prefecture, label):
    [place] = geocoding.candidates(None, text)
    assert place.prefecture_code == prefecture and place.name == label
    assert place.kind == "town" and place.approximate


def test_municipality_positions_are_near_the_real_ones():
    # Positions within ~25 km of the real town halls (geonames or the postal district's mean).
    for text, lat, lon in [("用宗", 34.975, 138.383), ("神山町", 33.967, 134.350),
                           ("立科町", 36.272, 138.316), ("丸の内", 35.681, 139.767)]:
        [place] = geocoding.candidates(None, text)
        assert geocoding.distance_km(place.lat, place.lon, lat, lon) < 25, (text, place)


@pytest.mark.parametrize("text", ["〒422-8035", "4228035", "４２２８０３５", "422-8035"])
def test_gazetteer_knows_postal_codes(text):
    [place] = geocoding.candidates(None, text)
    assert place.kind == "postal_code" and place.approximate and place.prefecture_code == 22
    assert place.name == "〒422-8035 静岡市駿河区宮竹"


def test_unknown_postal_code_is_an_unknown_place():
    assert geocoding.candidates(None, "〒999-9999") == []


@pytest.mark.parametrize("variant", ["ﾓﾁﾑﾈ", "モチムネ", "もちむね", "用宗"])
def test_width_and_kana_variants_resolve_the_same(variant):
    [place] = geocoding.candidates(None, variant)
    assert place.name == "静岡市駿河区用宗"


def test_norm_folds_width_and_kana():
    assert geocoding.norm("ﾏﾙﾉｳﾁ") == geocoding.norm("マルノウチ") == geocoding.norm("まるのうち")
    assert geocoding.norm("ＳＨＩＺＵＯＫＡ") == geocoding.norm("Shizuoka")
    assert geocoding.norm("丸ノ内") == geocoding.norm("丸の内")
    assert geocoding.norm("駒ケ根") == geocoding.norm("駒ヶ根")


def test_index_is_built_once_per_process():
    geocoding.candidates(None, "用宗")  # loads the index
    assert postal.towns() is postal.towns()


# --- search near them (both databases) -------------------------------------------------------


@pytest.fixture
def demo(app, make):
    booking.seeds.demo.load(db.session, today=date(2019, 7, 1))
    db.session.commit()
    # The demo has no space in Tokushima or near Tateshina: one each, near the towns.
    for slug, name, pref, city, lat, lon in [
        ("kamiyama-office", "神山サテライト", 36, "名西郡神山町", 33.968, 134.351),
        ("tateshina-base", "立科ワークベース", 20, "北佐久郡立科町", 36.272, 138.316),
    ]:
        space = make.space(slug=slug, name=name, prefecture_code=pref, city=city, address=city,
                           lat=lat, lon=lon)
        make.unit(space)
    return {s.slug: s for s in db.session.scalars(sa.select(Space))}


@pytest.mark.parametrize(("near", "expected"), [
    ("用宗", "エニシア静岡"), ("葵区", "エニシア静岡"), ("〒422-8035", "エニシア静岡"),
    ("4228035", "エニシア静岡"), ("ﾓﾁﾑﾈ", "エニシア静岡"), ("もちむね", "エニシア静岡"),
    ("神山町", "神山サテライト"), ("立科町", "立科ワークベース"),
])
def test_search_api_near_towns_and_codes(client, demo, near, expected):
    response = client.get("/api/v1/spaces", query_string={"near": near, "date": "2019-07-24"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.json
    assert body["query"]["place"]["approximate"] is True
    assert expected in [r["name"] for r in body["results"]]


def test_search_api_near_marunouchi(client, demo):
    body = client.get("/api/v1/spaces", query_string={"near": "丸の内", "date": "2019-07-24",
                                                     "radius_km": 30}).json
    assert body["query"]["place"]["label"] == "千代田区丸の内(東京都)"
    assert body["total"] >= 1  # the demo's Tokyo spaces (Koto) are within 30 km
    assert all(r["prefecture"] in ("東京都", "埼玉県", "千葉県", "神奈川県") for r in body["results"])


def test_search_api_unknown_code_is_422(client, demo):
    response = client.get("/api/v1/spaces", query_string={"near": "〒999-9999"})
    assert response.status_code == 422


@pytest.mark.parametrize("near", ["用宗", "丸の内", "〒422-8035", "立科町"])
def test_search_page_near_towns(client, demo, near):
    response = client.get("/search", query_string={"near": near, "date": "2019-07-24"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "(おおよその位置)" in html
    assert "場所が見つかりません" not in html


# --- the forms' 「住所を入力」 round trip (both databases) --------------------------------------


@pytest.fixture
def operator(make, login):
    from booking.models import OrgKind

    org = make.organisation(OrgKind.OPERATOR, prefecture_code=13)
    login(make.user(organisation=org, role="owner"))
    return org


def _value(page: str, name: str) -> str:
    import re

    m = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page) or \
        re.search(rf'<input[^>]*value="([^"]*)"[^>]*name="{name}"', page)
    return m.group(1) if m else ""


def _selected(page: str, name: str) -> str:
    import re

    select = re.search(rf'<select[^>]*name="{name}".*?</select>', page, re.S)
    assert select, name
    m = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', select.group(0))
    return (m.group(1) or m.group(2)) if m else ""


def test_space_form_fills_the_address_and_saves_nothing(client, operator):
    before = db.session.scalar(sa.select(sa.func.count(Space.id)))
    response = client.post(f"/operator/organisations/{operator.id}/spaces/new", data={
        "name": "", "kind": "coworking", "prefecture_code": "13", "city": "", "address": "",
        "postal_code": "〒４２２－８０３５", "fill_address": "1",
    })
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _value(page, "postal_code") == "422-8035"
    assert _selected(page, "prefecture_code") == "22"
    assert _value(page, "city") == "静岡市駿河区"
    assert _value(page, "address") == "静岡市駿河区宮竹"
    assert 'id="name-error"' not in page  # the other fields are not judged yet
    assert db.session.scalar(sa.select(sa.func.count(Space.id))) == before


def test_space_form_unknown_code_is_refused_beside_the_field(client, operator):
    response = client.post(f"/operator/organisations/{operator.id}/spaces/new", data={
        "name": "x", "kind": "coworking", "prefecture_code": "13", "city": "", "address": "",
        "postal_code": "999-9999", "fill_address": "1",
    })
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="postal_code-error"' in page and "この郵便番号の住所が見つかりません。" in page


def test_space_form_saves_the_postal_code(client, operator):
    response = client.post(f"/operator/organisations/{operator.id}/spaces/new", data={
        "name": "用宗ワークス", "kind": "coworking", "prefecture_code": "22",
        "city": "静岡市駿河区", "address": "静岡市駿河区用宗1-2-3", "postal_code": "4210122",
        "published": "y",
    })
    assert response.status_code == 302, response.get_data(as_text=True)
    space = db.session.scalars(sa.select(Space).where(Space.name == "用宗ワークス")).one()
    assert space.postal_code == "421-0122"
    response = client.post(f"/operator/spaces/{space.id}/edit", data={
        "name": "用宗ワークス", "kind": "coworking", "prefecture_code": "22",
        "city": "静岡市駿河区", "address": "静岡市駿河区用宗1-2-3", "postal_code": "42-01",
    })
    assert response.status_code == 422
    assert 'id="postal_code-error"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Space, space.id).postal_code == "421-0122"


SIGNUP = {"name": "高橋 真理", "email": "mari@example.jp", "password": "long-enough-pass",
          "company_name": "高橋製作所", "prefecture": "0", "address": ""}


def test_signup_fills_the_address_and_saves_nothing(client):
    from booking.models import Organisation, User

    response = client.post("/account/signup", data={**SIGNUP, "postal_code": "100-0005",
                                                    "fill_address": "1"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _selected(page, "prefecture") == "13"
    assert _value(page, "address") == "千代田区丸の内"
    assert _value(page, "postal_code") == "100-0005"
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Organisation.id))) == 0
    # The form as filled, sent: signed up with the postal code.
    response = client.post("/account/signup", data={**SIGNUP, "postal_code": "100-0005",
                                                    "prefecture": "13",
                                                    "address": "千代田区丸の内1-1"})
    assert response.status_code == 302
    org = db.session.scalars(sa.select(Organisation)).one()
    assert (org.postal_code, org.prefecture_code, org.address) == ("100-0005", 13, "千代田区丸の内1-1")


def test_signup_unknown_code(client):
    response = client.post("/account/signup", data={**SIGNUP, "postal_code": "0000000",
                                                    "fill_address": "1"})
    assert response.status_code == 422
    assert 'id="postal_code-error"' in response.get_data(as_text=True)
