"""Builds booking/static/map/japan-prefectures.geojson, the maps' own base layer.

The maps draw these outlines beneath the tiles (booking/static/js/*map*.js), so that where
tiles cannot load (no network, a tile server down) the markers still sit on a Japan one
recognises. The outlines come from the `japanmap` package (Apache License 2.0, see
booking/static/map/README.txt): one polygon per prefecture, the part of it that holds
the prefectural capital (islands such as Sado or Awaji are not in the data). Coordinates
are rounded to 3 decimals (about 100 m), plenty for a base map, and kept small.

    pip install japanmap==0.6.0   # in a scratch environment; not a dependency of the app
    python scripts/prefecture_outlines.py [path/to/japanmap/japan.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from booking.prefectures import BY_CODE  # noqa: E402

OUT = ROOT / "booking" / "static" / "map" / "japan-prefectures.geojson"


def _source() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    import japanmap  # only where the outlines are rebuilt: not a dependency of the app

    return Path(japanmap.__file__).with_name("japan.json")


def ring(points: list, borders: list) -> list[list[float]]:
    """One closed ring from a prefecture's borders (each a run of point indices; a run
    starts where the previous one ended)."""
    out: list[list[float]] = []
    for _neighbour, indices in borders:
        for i in indices:
            lon, lat = points[i][0]
            point = [round(lon, 3), round(lat, 3)]
            if not out or out[-1] != point:
                out.append(point)
    if out[0] != out[-1]:
        out.append(out[0])
    return out


def main() -> None:
    points, prefectures = json.loads(_source().read_text(encoding="utf-8"))
    features = []
    for index, borders in enumerate(prefectures):
        code = index + 1
        features.append({
            "type": "Feature",
            "properties": {"code": code, "name": BY_CODE[code].name,
                           "name_en": BY_CODE[code].name_en},
            "geometry": {"type": "Polygon", "coordinates": [ring(points, borders)]},
        })
    text = json.dumps({"type": "FeatureCollection", "features": features},
                      ensure_ascii=False, separators=(",", ":"))
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(features)} prefectures, {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
