"""Search measures distances with a fast formula (the local radii of curvature of the WGS-84
ellipsoid at the mean latitude, search.fast_distance_km) for the radius, the sort and the
distance a result shows. Against geographiclib's geodesic (geopy), on real places all over
Japan — the 47 prefectural offices and the stations the geocoder knows, from Wakkanai's
latitude to Naha's — it stays within 0.1 % (in fact within 0.03 %) for every pair within
the largest radius a search takes (500 km); beyond that it is never used to decide."""

from __future__ import annotations

import csv
import itertools

from geopy.distance import geodesic

from booking import prefectures
from booking.services import catalogue, geocoding, search
from booking.services.search import MAX_RADIUS_KM, fast_distance_km

PLACES = [(p.lat, p.lon) for p in prefectures.PREFECTURES]
with geocoding.STATIONS_FILE.open(encoding="utf-8") as f:
    PLACES += [(float(row["lat"]), float(row["lon"])) for row in csv.DictReader(f)]


def test_places_span_japan():
    lats = [lat for lat, _ in PLACES]
    lons = [lon for _, lon in PLACES]
    assert min(lats) < 27 and max(lats) > 43  # Okinawa to Hokkaido
    assert min(lons) < 128 and max(lons) > 141


def test_fast_distance_within_a_tenth_of_a_percent_of_geodesic():
    pairs = 0
    worst = 0.0
    for (lat1, lon1), (lat2, lon2) in itertools.combinations(PLACES, 2):
        truth = geodesic((lat1, lon1), (lat2, lon2), ellipsoid="WGS-84").km
        if not 0 < truth <= MAX_RADIUS_KM:
            continue
        pairs += 1
        error = abs(fast_distance_km(lat1, lon1, lat2, lon2) - truth) / truth
        worst = max(worst, error)
    assert pairs > 500  # near and far, north and south
    assert worst < 0.001
    assert worst < 0.0003  # what the module's documentation says


def test_short_distances_agree_to_the_metre():
    # A search near a station: spaces a few hundred metres to 30 km away.
    for lat, lon in PLACES:
        for dlat, dlon in ((0.002, 0.003), (0.05, -0.04), (-0.2, 0.15)):
            truth = geodesic((lat, lon), (lat + dlat, lon + dlon), ellipsoid="WGS-84").km
            fast = fast_distance_km(lat, lon, lat + dlat, lon + dlon)
            assert abs(fast - truth) < 0.001  # under a metre


def test_circle_is_the_geodesic_one_measured_by_the_fast_formula():
    # search._in_circle writes fast_distance_km out in its loop (the same floats) and asks
    # geodesic only within FAST_DISTANCE_ERROR of the edge: around real places, spaces
    # just inside and just outside the radius by geodesic are found exactly as geodesic
    # says, each at its fast distance.
    origins = [(p.lat, p.lon) for p in prefectures.PREFECTURES[::6]]
    points = list(PLACES)
    cases = []
    for lat, lon in origins:
        for radius in (0.5, 5.0, 30.0, 50.0, 500.0):
            for bearing in range(0, 360, 30):
                for factor in (0.9995, 0.99995, 1.00005, 1.0005):
                    p = geodesic(kilometers=radius * factor, ellipsoid="WGS-84").destination(
                        (lat, lon), bearing)
                    points.append((p.latitude, p.longitude))
            cases.append((lat, lon, radius))
    spaces = {i: catalogue.CatalogueSpace(i, lat, lon, 13, False, frozenset())
              for i, (lat, lon) in enumerate(points, 1)}
    cat = catalogue.Catalogue(catalogue.Mark(), spaces, {})
    for lat, lon, radius in cases:
        found = search._in_circle(cat, geocoding.point(lat, lon), radius)
        for distance, _, space in found:
            assert distance == fast_distance_km(lat, lon, space.lat, space.lon)
        assert found == sorted(found)  # by distance, then id
        near = [s for s in spaces.values()
                if fast_distance_km(lat, lon, s.lat, s.lon) < radius * 1.01]
        assert {s.id for _, _, s in found} == {
            s.id for s in near
            if geodesic((lat, lon), (s.lat, s.lon), ellipsoid="WGS-84").km <= radius}


def test_a_narrower_circle_from_a_wider_one_is_the_circle_itself():
    # search._in_reach remembers a place's circle at the widest radius asked there and
    # takes a narrower one as its start (search._narrowed): the same spaces in the same
    # order at the same distances as measuring the narrower circle anew, the edge's
    # spaces (just inside and just outside by geodesic) included.
    origins = [(p.lat, p.lon) for p in prefectures.PREFECTURES[::6]]
    radii = (0.5, 5.0, 10.0, 30.0, 30.0005, 30.05, 50.0)
    points = []
    for lat, lon in origins:
        for radius in radii:
            for bearing in range(0, 360, 30):
                for factor in (0.9995, 0.99995, 1.00005, 1.0005):
                    p = geodesic(kilometers=radius * factor, ellipsoid="WGS-84").destination(
                        (lat, lon), bearing)
                    points.append((p.latitude, p.longitude))
    points += [(lat + 0.01, lon) for lat, lon in origins] * 2  # two at one spot: by id
    spaces = {i: catalogue.CatalogueSpace(i, lat, lon, 13, False, frozenset())
              for i, (lat, lon) in enumerate(points, 1)}
    cat = catalogue.Catalogue(catalogue.Mark(), spaces, {})
    for lat, lon in origins:
        place = geocoding.point(lat, lon)
        for widest in (50.0, 30.05):
            cat.reach.clear()
            search._in_reach(cat, search.SearchQuery(radius_km=widest), place, None)
            for radius in radii:
                fresh = search._in_circle(cat, place, radius)
                expected = (tuple(s for _, _, s in fresh), tuple(d for d, _, _ in fresh))
                assert search._in_reach(cat, search.SearchQuery(radius_km=radius), place,
                                        None) == expected, (lat, lon, widest, radius)
                assert cat.reach.get(("circle", lat, lon))[0] == max(widest, radius)
