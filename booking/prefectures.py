"""The 47 prefectures: JIS code, names, and the prefectural office's position (approximate)."""

from __future__ import annotations

from typing import NamedTuple


class Prefecture(NamedTuple):
    code: int
    name: str
    name_en: str
    lat: float
    lon: float


PREFECTURES: tuple[Prefecture, ...] = tuple(Prefecture(*row) for row in (
    (1, "北海道", "Hokkaido", 43.0642, 141.3469),
    (2, "青森県", "Aomori", 40.8244, 140.7400),
    (3, "岩手県", "Iwate", 39.7036, 141.1527),
    (4, "宮城県", "Miyagi", 38.2688, 140.8721),
    (5, "秋田県", "Akita", 39.7186, 140.1024),
    (6, "山形県", "Yamagata", 38.2404, 140.3633),
    (7, "福島県", "Fukushima", 37.7500, 140.4678),
    (8, "茨城県", "Ibaraki", 36.3418, 140.4468),
    (9, "栃木県", "Tochigi", 36.5657, 139.8836),
    (10, "群馬県", "Gunma", 36.3911, 139.0608),
    (11, "埼玉県", "Saitama", 35.8569, 139.6489),
    (12, "千葉県", "Chiba", 35.6050, 140.1233),
    (13, "東京都", "Tokyo", 35.6895, 139.6917),
    (14, "神奈川県", "Kanagawa", 35.4478, 139.6425),
    (15, "新潟県", "Niigata", 37.9026, 139.0236),
    (16, "富山県", "Toyama", 36.6953, 137.2113),
    (17, "石川県", "Ishikawa", 36.5947, 136.6256),
    (18, "福井県", "Fukui", 36.0652, 136.2216),
    (19, "山梨県", "Yamanashi", 35.6642, 138.5684),
    (20, "長野県", "Nagano", 36.6513, 138.1810),
    (21, "岐阜県", "Gifu", 35.3912, 136.7223),
    (22, "静岡県", "Shizuoka", 34.9769, 138.3831),
    (23, "愛知県", "Aichi", 35.1802, 136.9066),
    (24, "三重県", "Mie", 34.7303, 136.5086),
    (25, "滋賀県", "Shiga", 35.0045, 135.8686),
    (26, "京都府", "Kyoto", 35.0214, 135.7556),
    (27, "大阪府", "Osaka", 34.6863, 135.5200),
    (28, "兵庫県", "Hyogo", 34.6913, 135.1830),
    (29, "奈良県", "Nara", 34.6851, 135.8329),
    (30, "和歌山県", "Wakayama", 34.2261, 135.1675),
    (31, "鳥取県", "Tottori", 35.5036, 134.2383),
    (32, "島根県", "Shimane", 35.4723, 133.0505),
    (33, "岡山県", "Okayama", 34.6618, 133.9344),
    (34, "広島県", "Hiroshima", 34.3966, 132.4596),
    (35, "山口県", "Yamaguchi", 34.1859, 131.4714),
    (36, "徳島県", "Tokushima", 34.0658, 134.5593),
    (37, "香川県", "Kagawa", 34.3401, 134.0434),
    (38, "愛媛県", "Ehime", 33.8416, 132.7657),
    (39, "高知県", "Kochi", 33.5597, 133.5311),
    (40, "福岡県", "Fukuoka", 33.6064, 130.4183),
    (41, "佐賀県", "Saga", 33.2494, 130.2988),
    (42, "長崎県", "Nagasaki", 32.7448, 129.8737),
    (43, "熊本県", "Kumamoto", 32.7898, 130.7417),
    (44, "大分県", "Oita", 33.2382, 131.6126),
    (45, "宮崎県", "Miyazaki", 31.9111, 131.4239),
    (46, "鹿児島県", "Kagoshima", 31.5602, 130.5581),
    (47, "沖縄県", "Okinawa", 26.2124, 127.6809),
))

BY_CODE = {p.code: p for p in PREFECTURES}


def by_code(code: int | None) -> Prefecture | None:
    return BY_CODE.get(code) if code is not None else None


def find(text: str) -> Prefecture | None:
    """A prefecture from its JIS code, Japanese name (with or without 都道府県) or English name."""
    text = text.strip()
    if text.isdigit():
        return BY_CODE.get(int(text))
    lowered = text.lower().removesuffix(" prefecture").removesuffix("-ken").strip()
    for p in PREFECTURES:
        short = p.name if p.code == 1 else p.name[:-1]
        if text in (p.name, short) or lowered == p.name_en.lower():
            return p
    return None


def choices(locale: str = "ja") -> list[tuple[int, str]]:
    return [(p.code, p.name_en if locale == "en" else p.name) for p in PREFECTURES]
