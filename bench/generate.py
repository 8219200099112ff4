"""Synthetic data for benchmarks: spaces all over Japan, their units, hours and bookings.

A clean function API (other benchmarks import it):

    url = create_database(ADMIN_URL)              # an empty PostgreSQL database, schema made
    stats = generate_spaces(url, spaces=10_000)   # organisations, spaces, hours, units, campaigns
    add_bookings(url, 10_000)                     # bookings over the season (call again to grow)
    params = search_mix(200)                      # query strings for GET /api/v1/spaces
    drop_database(ADMIN_URL, url)

Spaces are placed around the ~2,200 Japanese places of the gazetteer, drawn with weight
population ** POPULATION_EXPONENT and scattered around the town's centre; units follow the
space's kind (desk pools, hourly meeting rooms, private rooms, whole houses by the night)
with prices in the range of the 2019 documents; opening hours by kind. Bookings fall in
the season (SEASON_START..SEASON_END), weekdays more than weekends; 5 % are cancelled.
Bookings are not checked against capacity (a few units are overbooked, which only makes
them look full). Rows go in with COPY (psycopg), so 1 M bookings take seconds.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PLACES_FILE = ROOT / "booking" / "data" / "places.json"
STATIONS_FILE = ROOT / "booking" / "data" / "stations.csv"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

SEASON_START = date(2027, 7, 1)
SEASON_END = date(2027, 9, 30)
POPULATION_EXPONENT = 0.75
TOKYO_OFFSET = timedelta(hours=9)
NOW = datetime(2027, 6, 1, tzinfo=UTC)

AMENITIES = ("wifi", "printer", "projector", "whiteboard", "monitors", "private_booths",
             "phone_booths", "nursery", "parking", "shower", "kitchen", "equipment_lending")


@dataclass
class Stats:
    organisations: int = 0
    spaces: int = 0
    units: int = 0
    slots: int = 0
    bookings: int = 0


# --- databases -------------------------------------------------------------------------------


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _with_db(admin_url: str, name: str) -> str:
    return f"{_libpq(admin_url).rsplit('/', 1)[0]}/{name}"


def create_database(admin_url: str = ADMIN_URL, name: str | None = None) -> str:
    """A new PostgreSQL database with the application's schema; returns its URL."""
    name = name or f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_db(admin_url, name)
    import sqlalchemy as sa

    from booking.models import Base

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def drop_database(admin_url: str, url: str) -> None:
    name = _libpq(url).rsplit("/", 1)[1]
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- places ----------------------------------------------------------------------------------


def _places() -> list[dict]:
    return json.loads(PLACES_FILE.read_text(encoding="utf-8"))


def _scatter(rng: random.Random, place: dict) -> tuple[float, float]:
    """A point around a town's centre: larger towns spread wider."""
    sigma_km = 0.5 + math.sqrt(place["population"]) / 1500
    dy, dx = rng.gauss(0, sigma_km), rng.gauss(0, sigma_km)
    lat = place["lat"] + dy / 111.0
    lon = place["lon"] + dx / (111.0 * math.cos(math.radians(place["lat"])))
    return round(lat, 6), round(lon, 6)


# --- spaces ----------------------------------------------------------------------------------

KINDS = (("coworking", 0.45), ("satellite_office", 0.25), ("public_facility", 0.15),
         ("workation_house", 0.15))


def _hours(rng: random.Random, kind: str) -> list[tuple[int, int, int]]:
    if kind == "workation_house":
        return [(d, 0, 1440) for d in range(7)]
    if kind == "coworking":
        opens, closes = rng.choice([(540, 1260), (600, 1200), (480, 1320), (540, 1080)])
        days = range(7) if rng.random() < 0.7 else range(6)
        return [(d, opens, closes) for d in days]
    if kind == "satellite_office":
        return [(d, 540, 1080) for d in range(5)]
    closed = rng.randrange(7)  # public facilities close one weekday
    return [(d, 540, 1260) for d in range(7) if d != closed]


def _units(rng: random.Random, kind: str) -> list[dict]:
    def unit(ukind, capacity, fits, price, per, **kw):
        return {"kind": ukind, "capacity": capacity, "fits": fits, "price": price, "per": per, **kw}

    out = []
    if kind == "workation_house":
        for _ in range(rng.randint(1, 6)):
            out.append(unit("whole_house", 1, rng.randint(2, 10), rng.randrange(15000, 50001, 1000),
                            "night", max_length=14))
        return out
    seats = {"coworking": (10, 90), "satellite_office": (5, 30), "public_facility": (10, 40)}[kind]
    out.append(unit("desk", rng.randint(*seats), 1,
                    0 if kind == "public_facility" and rng.random() < 0.3 else rng.randrange(500, 2001, 100),
                    "day", members_only=kind == "public_facility" and rng.random() < 0.2))
    for _ in range(rng.choice([0, 1, 1, 2, 3]) if kind != "public_facility" else rng.choice([0, 1])):
        out.append(unit("meeting_room", 1, rng.choice([4, 6, 8, 10, 20]), rng.randrange(500, 3001, 100),
                        "hour", max_length=8))
    if kind == "coworking" and rng.random() < 0.5:
        for _ in range(rng.randint(1, 2)):
            out.append(unit("private_room", 1, rng.randint(1, 3), rng.randrange(1500, 5001, 100), "day"))
    return out


def _copy(conn: psycopg.Connection, table: str, columns: list[str], rows) -> int:
    n = 0
    with conn.cursor() as cur:
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        with cur.copy(stmt) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def generate_spaces(url: str, spaces: int = 10_000, *, seed: int = 1, campaigns: int = 40) -> Stats:
    """Operators (one per ~5 spaces), spaces, opening hours, units and a few campaigns with
    free slots (municipalities' Telework Days offers)."""
    from booking.models import map_area

    rng = random.Random(seed)
    places = _places()
    weights = [p["population"] ** POPULATION_EXPONENT for p in places]
    stats = Stats()
    with psycopg.connect(_libpq(url)) as conn:
        n_orgs = max(1, spaces // 5)
        stats.organisations = _copy(conn, "organisations", [
            "id", "kind", "name", "name_en", "prefecture_code", "address", "approved_at", "created_at"],
            ((i, "operator", f"運営者{i}", f"Operator {i}", 13, "", NOW, NOW) for i in range(1, n_orgs + 1)))
        munis = range(n_orgs + 1, n_orgs + 1 + campaigns)
        stats.organisations += _copy(conn, "organisations", [
            "id", "kind", "name", "name_en", "prefecture_code", "address", "approved_at", "created_at"],
            ((i, "municipality", f"自治体{i}", f"Municipality {i}", 13, "", NOW, NOW) for i in munis))
        space_rows, hour_rows, unit_rows = [], [], []
        unit_id = 0
        chosen = rng.choices(places, weights=weights, k=spaces)
        for sid, place in enumerate(chosen, 1):
            kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
            lat, lon = _scatter(rng, place)
            amenities = ["wifi", *rng.sample(AMENITIES[1:], rng.randint(0, 5))]
            space_rows.append((
                sid, rng.randint(1, n_orgs), f"bench-{sid}", kind, f"{place['name']}のスペース{sid}",
                f"Space {sid} in {place['name_en']}", "", "", place["prefecture_code"] or 13,
                place["name"], f"{place['name']}1-{sid}", lat, lon, True, "", "", "", "",
                json.dumps(amenities), kind in ("satellite_office", "public_facility"), True, NOW,
            ))
            for weekday, opens, closes in _hours(rng, kind):
                hour_rows.append((sid, weekday, opens, closes))
            for n, u in enumerate(_units(rng, kind), 1):
                unit_id += 1
                unit_rows.append((
                    unit_id, sid, u["kind"], f"区画{n}", f"Unit {n}", u["capacity"], u["fits"], u["price"],
                    u["per"], 1, u.get("max_length", 30), 0, 24, u.get("members_only", False),
                    900, 600, 0, map_area(lat, lon),
                ))
        stats.spaces = _copy(conn, "spaces", [
            "id", "organisation_id", "slug", "kind", "name", "name_en", "description", "description_en",
            "prefecture_code", "city", "address", "lat", "lon", "coordinates_approximate",
            "nearest_station", "access", "access_en", "calendar_secret", "amenities",
            "closed_on_holidays", "published", "created_at"],
            ((*r[:17], None, *r[18:]) for r in space_rows))
        _copy(conn, "opening_hours", ["space_id", "weekday", "opens_min", "closes_min"], hour_rows)
        stats.units = _copy(conn, "units", [
            "id", "space_id", "kind", "name", "name_en", "capacity", "fits_people", "price_amount",
            "price_per", "min_length", "max_length", "lead_time_hours", "cancel_deadline_hours",
            "members_only", "checkin_min", "checkout_min", "lock_version", "area"], unit_rows)
        # Campaigns: each municipality offers free desks in a few spaces for the season.
        desk_units = [r for r in unit_rows if r[2] == "desk"]
        slot_rows = []
        for cid in range(1, len(munis) + 1):
            for unit in rng.sample(desk_units, min(5, len(desk_units))):
                slot_rows.append((cid, unit[0], SEASON_START + timedelta(days=21),
                                  SEASON_START + timedelta(days=67), 540, 1080,
                                  max(1, unit[5] // 4), 0, "any", True))
        _copy(conn, "campaigns", [
            "id", "organisation_id", "slug", "name", "name_en", "description", "description_en",
            "starts_on", "ends_on", "core_days", "published", "created_at"],
            ((cid, org, f"bench-campaign-{cid}", f"テレワーク・デイズ{cid}", f"Telework Days {cid}", "", "",
              SEASON_START, SEASON_END, "[]", True, NOW) for cid, org in enumerate(munis, 1)))
        stats.slots = _copy(conn, "campaign_slots", [
            "campaign_id", "unit_id", "start_date", "end_date", "daily_start_min", "daily_end_min",
            "seats", "price_amount", "eligibility", "operator_consent"], slot_rows)
        for table in ("organisations", "spaces", "units", "campaigns"):
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))")
                         .format(sql.Literal(table), sql.Identifier(table)))
        conn.commit()
    after_copy(url)
    _vacuum(url)
    return stats


# --- bookings --------------------------------------------------------------------------------


def _season_days() -> list[date]:
    n = (SEASON_END - SEASON_START).days + 1
    return [SEASON_START + timedelta(days=i) for i in range(n)]


def _instant(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - TOKYO_OFFSET + timedelta(minutes=minutes)


def _booking_rows(units: list[tuple], hours: dict[int, dict[int, tuple[int, int]]], n: int,
                  rng: random.Random) -> Iterator[tuple]:
    days = _season_days()
    day_weights = [1.0 if d.weekday() < 5 else 0.35 for d in days]
    weights = [max(u[3], 1) ** 0.5 for u in units]
    picked = rng.choices(units, weights=weights, k=n)
    chosen_days = rng.choices(days, weights=day_weights, k=n)
    for (unit_id, space_id, price_per, capacity, price), day in zip(picked, chosen_days, strict=True):
        space_hours = hours.get(space_id, {})
        open_hours = space_hours.get(day.weekday()) or next(iter(space_hours.values()), (540, 1080))
        if price_per == "night":
            nights = rng.choice([1, 1, 2, 2, 3, 4])
            start = _instant(day, 900)
            end = _instant(day + timedelta(days=nights), 600)
            seats, amount = 1, price * nights
        elif price_per == "hour":
            length = rng.choice([1, 1, 2, 2, 3, 4])
            latest = max(open_hours[0], open_hours[1] - length * 60)
            begin = rng.randrange(open_hours[0], latest + 1, 60) if latest > open_hours[0] else open_hours[0]
            start, end = _instant(day, begin), _instant(day, min(begin + length * 60, open_hours[1]))
            seats, amount = 1, price * length
        else:
            span = 1 if rng.random() < 0.85 else rng.randint(2, 5)
            start = _instant(day, open_hours[0])
            end = _instant(day + timedelta(days=span - 1), open_hours[1])
            seats = 1 if capacity == 1 else min(capacity, rng.choice([1, 1, 1, 1, 2, 2, 3, 4]))
            amount = price * span * seats
        status = "cancelled" if rng.random() < 0.05 else "confirmed"
        yield (secrets.token_hex(8).upper(), unit_id, start, end, seats, status, amount, 0, 0, "ja",
               "", "", NOW, NOW)


def add_bookings(url: str, n: int, *, seed: int | None = None) -> int:
    """Add n bookings spread over the season to the units already in the database."""
    rng = random.Random(seed if seed is not None else secrets.randbits(32))
    with psycopg.connect(_libpq(url)) as conn:
        units = conn.execute("SELECT id, space_id, price_per, capacity, price_amount FROM units").fetchall()
        hours: dict[int, dict[int, tuple[int, int]]] = {}
        for space_id, weekday, opens, closes in conn.execute(
                "SELECT space_id, weekday, opens_min, closes_min FROM opening_hours"):
            hours.setdefault(space_id, {})[weekday] = (opens, closes)
        done = _copy(conn, "bookings", [
            "reference", "unit_id", "starts_at", "ends_at", "seats", "status", "price_amount",
            "subsidy_amount", "sequence", "locale", "note", "cancel_reason", "created_at", "updated_at"],
            _booking_rows(units, hours, n, rng))
        conn.commit()
    after_copy(url)
    _vacuum(url, "bookings")
    _vacuum(url, "unit_loads")
    return done


def after_copy(url: str) -> int:
    """COPY bypasses the Session hooks that keep the derived data in step: rebuild it."""
    import sqlalchemy as sa

    from booking.services import derived

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as connection:
            return derived.rebuild(connection)
    finally:
        engine.dispose()


def _vacuum(url: str, table: str | None = None) -> None:
    """VACUUM ANALYZE: fresh statistics, and a visibility map for index-only scans."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)) if table
                     else sql.SQL("VACUUM ANALYZE"))


def count_bookings(url: str) -> int:
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute("SELECT count(*) FROM bookings").fetchone()[0]


# --- searches --------------------------------------------------------------------------------


def _stations() -> list[str]:
    lines = STATIONS_FILE.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split(",")[0] for line in lines if line]


def search_mix(n: int, *, seed: int = 7) -> list[dict[str, str]]:
    """Query parameters of n searches like people make them: mostly near a station or a
    town (towns drawn by population), one day, sometimes a range, seats, kind, free offers."""
    rng = random.Random(seed)
    places = _places()
    weights = [p["population"] for p in places]
    stations = _stations()
    days = _season_days()
    out = []
    for _ in range(n):
        roll = rng.random()
        params: dict[str, str] = {}
        if roll < 0.35:
            params["near"] = rng.choice(stations)
        elif roll < 0.9:
            params["near"] = rng.choices(places, weights=weights)[0]["name"]
        elif roll < 0.95:
            params["prefecture"] = str(rng.randint(1, 47))
        else:
            p = rng.choices(places, weights=weights)[0]
            params["lat"], params["lon"] = f"{p['lat']:.4f}", f"{p['lon']:.4f}"
        if "prefecture" not in params:
            params["radius_km"] = rng.choice(["30", "30", "30", "10", "5", "50"])
        day = rng.choice(days)
        params["date"] = day.isoformat()
        r = rng.random()
        if r < 0.15:
            params["end_date"] = (day + timedelta(days=rng.randint(1, 4))).isoformat()
        elif r < 0.30:
            params["start"], params["end"] = rng.choice([("09:00", "12:00"), ("13:00", "17:00"),
                                                         ("10:00", "11:00")])
        params["seats"] = rng.choice(["1", "1", "1", "2", "2", "4", "8"])
        k = rng.random()
        if k < 0.15:
            params["kind"] = "meeting_room"
        elif k < 0.22:
            params["kind"] = "whole_house"
        if rng.random() < 0.1:
            params["free"] = "1"
        if rng.random() < 0.2:
            params["sort"] = "price"
        if rng.random() < 0.1:
            params["amenities"] = "wifi,printer"
        out.append(params)
    return out


def search_urls(n: int, *, seed: int = 7) -> list[str]:
    """The same mix as paths of the API, for HTTP load tools."""
    return ["/api/v1/spaces?" + urlencode(p) for p in search_mix(n, seed=seed)]


if __name__ == "__main__":  # python -m bench.generate [spaces] [bookings]: keeps the database
    import sys

    spaces = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    bookings = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    url = create_database(ADMIN_URL)
    print(generate_spaces(url, spaces), add_bookings(url, bookings, seed=1), url)
