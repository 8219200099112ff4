"""Public pages render the demo data in Japanese and in English."""

from __future__ import annotations

from datetime import date

import pytest

from booking.extensions import db
from booking.seeds import demo


@pytest.fixture
def seeded(app):
    demo.load(db.session, today=date(2026, 11, 26))
    db.session.commit()


def test_home_explains_the_service_and_leads_to_spaces(client, seeded):
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="ja">' in html
    assert "サテライトオフィス" in html
    assert "エニシア静岡" in html and "/spaces/enishia-shizuoka" in html


def test_space_page_shows_address_hours_amenities_units_prices_and_campaigns(client, seeded):
    html = client.get("/spaces/oasis-yoshikawa").get_data(as_text=True)
    assert "市民交流センターおあしす" in html
    assert "吉川市きよみ野" in html
    assert "09:00–21:00" in html
    assert "Wi-Fi" in html
    assert "ミーティングルーム(臨時テレワークオフィス)" in html
    assert "テレワーク・デイズ2019(吉川市)" in html
    assert "2019年7月23日(火)" in html and "9:00–18:00" in html


def test_space_page_in_english(client, seeded):
    html = client.get("/spaces/enishia-shizuoka?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Enishia Shizuoka" in html
    assert "5 min walk from Shizuoka Station" in html
    assert "85" in html


def test_language_switch_keeps_the_page_and_refuses_other_sites(client, seeded):
    response = client.post("/language", data={"lang": "en", "next": "/spaces/koto-komagane"})
    assert response.status_code == 302 and response.location.endswith("/spaces/koto-komagane")
    assert '<html lang="en">' in client.get("/spaces/koto-komagane").get_data(as_text=True)
    evil = client.post("/language", data={"lang": "ja", "next": "//evil.example/"})
    assert evil.location in ("/", "http://localhost/")


def test_unknown_space_is_a_404_page_in_the_users_language(client, seeded):
    response = client.get("/spaces/nothing-here?lang=en")
    assert response.status_code == 404
    assert "Traceback" not in response.get_data(as_text=True)


def test_unpublished_space_is_not_public(client, seeded):
    from booking.models import Space

    space = db.session.query(Space).filter_by(slug="koto-komagane").one()
    space.published = False
    db.session.commit()
    assert client.get("/spaces/koto-komagane").status_code == 404
