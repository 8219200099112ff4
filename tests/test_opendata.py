"""Open data: the public spaces as the 公共施設一覧 of the 自治体標準オープンデータセット,
per municipality and site-wide, CSV (read with pandas) and its JSON twin."""

from __future__ import annotations

import io
import json
from datetime import date

import pandas as pd
import pytest

from booking import municipalities
from booking.models import OrgKind
from booking.municipalities import check_digit, full_code, valid_code
from booking.services import opendata

LIST = json.loads(opendata.LIST_FILE.read_text(encoding="utf-8"))
OFFICIAL = [c["name"] for c in LIST["columns"]]


def _csv(client, path: str) -> pd.DataFrame:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    return pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig", dtype=str,
                       keep_default_na=False)


@pytest.fixture
def world(make):
    """A public space in 静岡市葵区 (with a campaign slot), one in 吉川市, an unpublished
    space, and a space of an operator the site admin has not approved."""
    shizuoka = make.space(name="静岡ワークスペース", city="静岡市葵区", address="静岡市葵区御幸町3-21",
                          prefecture_code=22, contact_phone="054-000-0000", postal_code="420-0857",
                          name_en="Shizuoka Workspace",
                          description="駅から5分", closed_on_holidays=True)
    desk = make.unit(shizuoka, name="フリーデスク", price_amount=1100)
    campaign = make.campaign(make.organisation(OrgKind.MUNICIPALITY, name="静岡市"),
                             name="お試しテレワーク", starts_on=date(2027, 7, 22),
                             ends_on=date(2027, 9, 6))
    make.slot(campaign, desk, start_date=date(2027, 7, 24), end_date=date(2027, 7, 26))
    yoshikawa = make.space(name="おあしす", city="吉川市", address="吉川市きよみ野1-1",
                           prefecture_code=11, lat=35.87, lon=139.84)
    make.unit(yoshikawa, price_amount=0)
    hidden = make.space(name="非公開スペース", published=False)
    stranger = make.space(make.organisation(approved=False), name="未承認の運営者のスペース")
    return {"shizuoka": shizuoka, "yoshikawa": yoshikawa, "hidden": hidden,
            "stranger": stranger}


def test_check_digit_of_known_codes():
    # 011002 札幌市: the standard's own 記入例; 221007 静岡市; 352128 柳井市: the Digital
    # Agency template's sample row; 130001 東京都: Tokyo's published file name.
    assert full_code("01100") == "011002"
    assert full_code("22100") == "221007"
    assert full_code("35212") == "352128"
    assert full_code("13000") == "130001"
    assert check_digit("01100") == "2"
    assert valid_code("221007") and not valid_code("221008") and not valid_code("22100")
    assert not valid_code("abcdef")


def test_every_municipality_has_its_code():
    # Published codes: 千代田区 131016, 吉川市 112437, さいたま市 111007 and its 大宮区 111031.
    assert municipalities.locate(13, "千代田区").body.code == "131016"
    assert municipalities.locate(11, "吉川市").body.code == "112437"
    omiya = municipalities.locate(11, "さいたま市大宮区")
    assert (omiya.body.code, omiya.location.code) == ("111007", "111031")
    # With or without the 郡; a town of the same name in another prefecture is another code.
    assert municipalities.locate(20, "立科町") == municipalities.locate(20, "北佐久郡立科町")
    assert municipalities.locate(20, "立科町").body.label == "長野県立科町"
    assert municipalities.locate(36, "神山町").body.label == "徳島県神山町"
    assert municipalities.locate(13, "どこにもない町") is None
    table = municipalities._table()
    assert len(table) > 1700  # every 市区町村 of Japan (1,741 + the wards of 20 cities)
    # Every ward of a designated city lies in its city's block of codes.
    for code, (pref, city) in municipalities.DESIGNATED_CITIES.items():
        wards = [c for c, (p, name) in table.items()
                 if p == pref and name.startswith(city) and name != city]
        assert wards, city
        assert all(code < c < f"{int(code) + 50:05d}" for c in wards), city


def test_list_file_names_its_source_and_the_columns_we_cannot_fill():
    assert LIST["dataset"] == "公共施設一覧"
    assert LIST["sources"] and all("url" in s for s in LIST["sources"])
    assert "digital.go.jp" in LIST["sources"][0]["url"]
    assert len(OFFICIAL) == len(set(OFFICIAL)) == 56
    # The 正式版's layout, not the older 推奨データセット's.
    assert OFFICIAL[:4] == ["全国地方公共団体コード", "ID", "地方公共団体名", "名称"]
    assert OFFICIAL[-4:] == ["URL", "画像", "画像ライセンス", "備考"]
    assert "都道府県コード又は市区町村コード" not in OFFICIAL
    empty = [c["name"] for c in LIST["columns"] if c["ours"].startswith("EMPTY")]
    assert "名称_カナ" in empty and "車椅子可" in empty


def test_site_csv_has_exactly_the_official_columns_and_only_public_spaces(client, world):
    frame = _csv(client, "/opendata/facilities.csv")
    assert list(frame.columns) == OFFICIAL
    assert sorted(frame["名称"]) == ["おあしす", "静岡ワークスペース"]
    row = frame[frame["名称"] == "静岡ワークスペース"].iloc[0]
    assert row["全国地方公共団体コード"] == "221007"  # the city, not its ward
    assert row["地方公共団体名"] == "静岡県静岡市"
    assert row["所在地_全国地方公共団体コード"] == "221015"  # 葵区
    assert row["所在地_連結表記"] == "静岡県静岡市葵区御幸町3-21"
    assert (row["所在地_都道府県"], row["所在地_市区町村"]) == ("静岡県", "静岡市葵区")
    assert (row["所在地_町字"], row["所在地_番地以下"]) == ("御幸町", "3-21")
    assert row["郵便番号"] == "420-0857"
    assert row["名称_英字"] == "Shizuoka Workspace"
    assert row["名称_カナ"] == ""
    assert row["利用可能曜日"] == "月火水木金土日"
    assert (row["開始時間"], row["終了時間"]) == ("09:00", "18:00")
    assert row["利用可能時間特記事項"] == "祝日休業"
    assert row["電話番号"] == "054-000-0000"
    assert row["URL"].endswith(f"/spaces/{world['shizuoka'].slug}")
    assert row["説明"].startswith("駅から5分")
    assert "フリーデスク ¥1,100(税込)/ 1日" in row["説明"]
    assert "お試しテレワーク" in row["備考"] and "2027-07-24〜2027-07-26" in row["備考"]
    assert "無料" in row["備考"]
    assert float(row["緯度"]) == pytest.approx(34.9738)
    other = frame[frame["名称"] == "おあしす"].iloc[0]
    assert other["全国地方公共団体コード"] == other["所在地_全国地方公共団体コード"] == "112437"
    # No postal code: the address is not split by guesswork.
    assert (other["所在地_町字"], other["所在地_番地以下"]) == ("", "")


def test_municipality_file_holds_only_its_facilities(client, world):
    frame = _csv(client, "/opendata/221007/facilities.csv")
    assert list(frame.columns) == OFFICIAL
    assert list(frame["名称"]) == ["静岡ワークスペース"]
    prefecture = _csv(client, "/opendata/110001/facilities.csv")  # 埼玉県: all in it
    assert list(prefecture["名称"]) == ["おあしす"]
    # A wrong check digit, a code without public spaces, and junk: not found.
    for code in ("221008", "011002", "abc"):
        assert client.get(f"/opendata/{code}/facilities.csv").status_code == 404
        assert client.get(f"/opendata/{code}/facilities.json").status_code == 404


def test_json_twin_matches_the_csv(client, world):
    for base in ("/opendata", "/opendata/221007"):
        frame = _csv(client, f"{base}/facilities.csv")
        response = client.get(f"{base}/facilities.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        body = response.get_json()
        assert body["columns"] == OFFICIAL
        assert body["licence"] == "CC BY 4.0"
        assert [list(r) for r in body["facilities"]] == [OFFICIAL] * len(frame)
        assert body["facilities"] == frame.to_dict(orient="records")


def test_files_are_cacheable_and_carry_the_licence(client, world):
    response = client.get("/opendata/facilities.csv")
    assert "public" in response.headers["Cache-Control"]
    assert "creativecommons.org/licenses/by/4.0" in response.headers["Link"]


def test_index_page_lists_the_datasets_and_the_licence(client, world):
    html = client.get("/opendata/").get_data(as_text=True)
    assert "CC BY 4.0" in html
    assert "/opendata/221007/facilities.csv" in html and "/opendata/112437/facilities.json" in html
    assert "/opendata/facilities.csv" in html
    assert "/opendata/" in client.get("/").get_data(as_text=True)  # the footer links it


def test_empty_site(client):
    frame = _csv(client, "/opendata/facilities.csv")
    assert list(frame.columns) == OFFICIAL and frame.empty
    assert client.get("/opendata/facilities.json").get_json()["facilities"] == []
    assert "公開中のスペースはまだありません。" in client.get("/opendata/").get_data(as_text=True)


def test_column_list_is_published_with_its_source(client):
    response = client.get("/opendata/columns.json")
    assert response.status_code == 200
    assert [c["name"] for c in response.get_json()["columns"]] == OFFICIAL
