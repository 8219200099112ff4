"""Place resolution: Japanese and English text, stations, prefectures, coordinates, 府中."""

from __future__ import annotations

import pytest

from booking import prefectures
from booking.extensions import db
from booking.services import geocoding
from booking.services.errors import DomainError
from booking.services.geocoding import candidates, distance_km, resolve

# Approximate truth: station and city positions from public maps.
SHIZUOKA_STATION = (34.9716, 138.3891)


@pytest.mark.parametrize(("text", "kind", "prefecture", "lat", "lon"), [
    ("静岡駅", "station", 22, 34.9716, 138.3891),
    ("Shizuoka Station", "station", 22, 34.9716, 138.3891),
    ("駒ヶ根", "city", 20, 35.7287, 137.9337),
    ("駒ケ根市", "city", 20, 35.7287, 137.9337),
    ("Komagane", "city", 20, 35.7287, 137.9337),
    ("吉川市", "city", 11, 35.8877, 139.8422),
    ("Yoshikawa", "city", 11, 35.8877, 139.8422),
    ("Shizuoka", "city", 22, 34.9756, 138.3828),
    ("徳島県", "prefecture", 36, 34.0658, 134.5593),
    ("Tokushima Prefecture", "prefecture", 36, 34.0658, 134.5593),
    ("吉川美南駅", "station", 11, 35.8700, 139.8560),
    ("東京駅", "station", 13, 35.6812, 139.7671),
    ("新宿駅", "station", 13, 35.6896, 139.7006),
    ("東京都府中市", "city", 13, 35.6689, 139.4776),
    ("府中 広島県", "city", 34, 34.5683, 133.2366),
])
def test_resolves_japanese_and_english_text(text, kind, prefecture, lat, lon):
    (place,) = candidates(None, text)
    assert place.kind == kind
    assert place.prefecture_code == prefecture
    assert distance_km(place.lat, place.lon, lat, lon) < 6


def test_coordinates_and_full_width_digits():
    place = resolve(None, "34.97, 138.39")
    assert (place.kind, place.lat, place.lon) == ("coordinates", 34.97, 138.39)
    assert resolve(None, "３４．９７，１３８．３９").lat == 34.97  # noqa: RUF001 - typed full-width
    with pytest.raises(DomainError):
        geocoding.point(95, 10)


def test_two_fuchu_are_choices_and_unknown_is_an_error():
    with pytest.raises(DomainError) as info:
        resolve(None, "府中")
    assert info.value.code == "ambiguous_place"
    labels = [c["label"] for c in info.value.extra["choices"]]
    assert any("東京都" in label for label in labels) and any("広島県" in label for label in labels)
    # Each choice resolves to exactly one place.
    for choice in info.value.extra["choices"]:
        assert resolve(None, choice["near"]).prefecture_code == prefectures.find(choice["prefecture"]).code
    with pytest.raises(DomainError) as info:
        resolve(None, "xyzzy")
    assert info.value.code == "unknown_place"
    assert info.value.status == 422


def test_geonames_prefecture_codes_are_mapped_to_jis():
    # geonames numbers prefectures alphabetically; JIS numbers them north to south.
    assert geocoding.GEONAMES_ADMIN1_TO_JIS["37"] == 22  # Shizuoka
    assert geocoding.GEONAMES_ADMIN1_TO_JIS["26"] == 20  # Nagano
    assert geocoding.GEONAMES_ADMIN1_TO_JIS["47"] == 47  # Okinawa
    assert sorted(geocoding.GEONAMES_ADMIN1_TO_JIS.values()) == list(range(1, 48))
    places = geocoding._load_places()
    assert len(places) > 2000
    # Every place lies near its prefecture's office (Hokkaido is large; Tokyo, Kagoshima and Okinawa
    # have far islands).
    for row in places:
        pref = prefectures.by_code(row["prefecture_code"])
        limit = 1100 if pref.code in (13, 46, 47) else 350
        assert distance_km(row["lat"], row["lon"], pref.lat, pref.lon) < limit, row


def test_distances_are_geodesic():
    # 東京駅 → 新大阪駅 is about 403 km as the crow flies.
    tokyo, osaka = resolve(None, "東京駅"), resolve(None, "新大阪駅")
    assert 395 < distance_km(tokyo.lat, tokyo.lon, osaka.lat, osaka.lon) < 410


def test_spaces_cities_and_stations_are_known(app, make):
    space = make.space(city="架空町", nearest_station="架空駅", lat=35.0, lon=138.0)
    assert resolve(db.session, "架空駅").kind == "station"
    place = resolve(db.session, "架空町")
    assert (place.lat, place.lon, place.kind) == (35.0, 138.0, "space_city")
    assert candidates(None, "架空町") == []  # not in the static gazetteer
    assert space.id


def test_fill_coordinates_from_city_or_address(app, make):
    space = make.space(lat=None, lon=None, city="駒ヶ根市", address="駒ヶ根市赤須町20-1",
                       prefecture_code=20)
    assert geocoding.fill_coordinates(db.session, space)
    assert space.coordinates_approximate
    assert distance_km(space.lat, space.lon, 35.7287, 137.9337) < 5
    # Coordinates that exist are kept unless forced.
    space.lat, space.lon = 35.0, 137.0
    assert not geocoding.fill_coordinates(db.session, space)
    other = make.space(lat=None, lon=None, city="", address="静岡県静岡市葵区追手町5-1",
                       prefecture_code=22)
    assert geocoding.fill_coordinates(db.session, other)
    assert distance_km(other.lat, other.lon, *SHIZUOKA_STATION) < 5
    # Nothing better than the prefecture: its office.
    third = make.space(lat=None, lon=None, city="", address="どこか", prefecture_code=47)
    assert geocoding.fill_coordinates(db.session, third)
    assert (third.lat, third.lon) == (prefectures.by_code(47).lat, prefectures.by_code(47).lon)


def test_online_geocoder_only_when_configured():
    assert geocoding.geocoder_from_config({"GEOCODER": "offline"}) is None
    online = geocoding.geocoder_from_config({"GEOCODER": "nominatim", "NOMINATIM_DOMAIN": "127.0.0.1:9",
                                             "NOMINATIM_SCHEME": "http"})
    assert online is not None
    # Offline answers come first: nothing is asked for a known place.
    assert resolve(None, "静岡駅", online).kind == "station"


def test_nominatim_when_configured_is_asked_once_per_text():
    """A Nominatim-protocol server on loopback: unknown text is asked once, then cached."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # http.server's naming
            query = parse_qs(urlsplit(self.path).query)
            asked.append(query["q"][0])
            assert query["countrycodes"] == ["jp"]
            body = json.dumps([{"lat": "35.3606", "lon": "138.7274", "place_id": 1,
                                "display_name": "富士山, 富士宮市, 静岡県, 日本"}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        online = geocoding.geocoder_from_config({
            "GEOCODER": "nominatim", "NOMINATIM_DOMAIN": f"127.0.0.1:{server.server_port}",
            "NOMINATIM_SCHEME": "http", "NOMINATIM_USER_AGENT": "telework-booking-test"})
        text = "富士山の五合目テスト"
        for _ in range(2):
            place = resolve(None, text, online)
            assert (place.kind, place.prefecture_code) == ("online", 22)
            assert abs(place.lat - 35.3606) < 1e-6
        assert asked == [text]
        with pytest.raises(DomainError):
            resolve(None, text)  # offline only: unknown
    finally:
        server.shutdown()
        server.server_close()
