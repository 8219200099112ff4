"""The campaign report as files a municipality's tools read (services/workbooks.py): the
XLSX workbook (openpyxl and pandas, every sheet), the per-table CSV files in a zip, the
printable page (A4, 和暦), who may fetch them, and the old combined CSV still answering."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import BookingStatus, Campaign, CampaignSlot, Organisation, OrgKind, User
from booking.seeds import demo
from booking.services.availability import at

OASIS = (35.8787, 139.8563)

SHEETS_JA = ["レポートについて", "概要", "日別の稼働", "企業の所在都道府県", "参加区分", "施設別",
             "予約一覧", "係数"]
SHEETS_EN = ["About this report", "Overview", "Occupancy by day", "Company's prefecture",
             "Category", "By space", "Bookings", "Factor"]
BOOKING_COLUMNS_JA = ["予約番号", "企業", "施設", "開始日時(日本時間)", "終了日時(日本時間)", "席数", "状態",
                      "企業の支払額(円)", "自治体の補助額(円)"]
CSV_FILES = ["01-about.csv", "02-summary.csv", "03-occupancy.csv", "04-prefectures.csv",
             "05-participation.csv", "06-spaces.csv", "07-bookings.csv", "08-factors.csv"]
CSV_COLUMNS_JA = {
    "01-about.csv": ["事項", "内容"],
    "02-summary.csv": ["指標", "値"],
    "03-occupancy.csv": ["日付", "提供席数", "予約席数", "稼働率(%)"],
    "04-prefectures.csv": ["都道府県", "企業数"],
    "05-participation.csv": ["参加区分", "企業数", "コア日のテレワーク人数"],
    "06-spaces.csv": ["施設", "予約件数", "延べ席日数", "利用企業数", "無断キャンセル(来場なし)",
                      "企業の支払額(円)", "自治体の補助額(円)", "削減できた通勤時間(時間、推計)",
                      "削減できたCO2(kg、推計)"],
    "07-bookings.csv": BOOKING_COLUMNS_JA,
    "08-factors.csv": ["係数", "値", "単位"],
}


@pytest.fixture
def campaign(app, make) -> Campaign:
    """The seeded Telework Days 2019 campaign of 吉川市 with four bookings on おあしす, the
    first by a company whose name a spreadsheet would run as a formula."""
    demo.load(db.session, today=date(2019, 7, 1))
    db.session.commit()
    slot = db.session.scalar(sa.select(CampaignSlot).join(Campaign)
                             .where(Campaign.slug == "telework-days-2019-yoshikawa"))
    tokyo = make.company(name="=1+2 商事", prefecture_code=13)
    saitama = make.company(name="吉川ローカル株式会社", prefecture_code=11, lat=OASIS[0], lon=OASIS[1])
    chiba = make.company(name="千葉テスト株式会社", prefecture_code=12)
    unit, d = slot.unit, date
    make.booking(unit, at(d(2019, 7, 23), 540), at(d(2019, 7, 23), 1080), 3, company=tokyo,
                 campaign_slot_id=slot.id)
    make.booking(unit, at(d(2019, 7, 24), 540), at(d(2019, 7, 25), 1080), 2, company=tokyo,
                 campaign_slot_id=slot.id, status=BookingStatus.CHECKED_IN)
    make.booking(unit, at(d(2019, 7, 24), 540), at(d(2019, 7, 24), 1080), 1, company=saitama,
                 campaign_slot_id=slot.id, status=BookingStatus.NO_SHOW)
    make.booking(unit, at(d(2019, 7, 26), 540), at(d(2019, 7, 26), 1080), 2, company=chiba,
                 campaign_slot_id=slot.id, status=BookingStatus.CANCELLED)
    return slot.campaign


@pytest.fixture
def clerk(campaign, login) -> User:
    user = db.session.scalar(sa.select(User).where(User.email == "city@example.jp"))
    return login(user, demo.DEMO_PASSWORD)


def _xlsx(client, campaign: Campaign, query: str = "") -> bytes:
    response = client.get(f"/municipality/campaigns/{campaign.id}/report.xlsx{query}")
    assert response.status_code == 200
    assert response.mimetype == ("application/vnd.openxmlformats-officedocument"
                                 ".spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Content-Disposition"].endswith('.xlsx"')
    return response.data


def test_workbook_has_typed_cells_in_tokyo_time(clerk, campaign, client):
    book = openpyxl.load_workbook(io.BytesIO(_xlsx(client, campaign)))
    assert book.sheetnames == SHEETS_JA
    for ws in book.worksheets:
        assert ws.freeze_panes == "A2", ws.title  # the header row stays in view
        assert all(cell.font.bold for cell in ws[1] if cell.value is not None)
        assert ws.column_dimensions["A"].width >= 8

    bookings = book["予約一覧"]
    assert [c.value for c in bookings[1]] == BOOKING_COLUMNS_JA
    first = list(bookings[2])
    # 9:00 in Tokyo, written as the wall-clock time (Excel has no zones; the header says so).
    assert first[3].value.isoformat() == "2019-07-23T09:00:00" and first[3].is_date
    assert first[4].value.isoformat() == "2019-07-23T18:00:00"
    assert first[3].number_format == "yyyy-mm-dd hh:mm"
    # A company name starting with "=" is text, never a formula.
    assert first[1].value == "=1+2 商事" and first[1].data_type == "s"
    assert first[1].quotePrefix is True
    assert first[5].value == 3 and first[5].data_type == "n"
    assert first[6].value == "確定"
    assert isinstance(first[7].value, int) and "¥" in first[7].number_format
    statuses = [row[6].value for row in bookings.iter_rows(min_row=2)]
    assert statuses == ["確定", "チェックイン済み", "来場なし", "キャンセル済み"]

    days = book["日別の稼働"]
    assert [c.value for c in days[1]] == ["日付", "提供席数", "予約席数", "稼働率(%)"]
    rows = [[c.value for c in row] for row in days.iter_rows(min_row=2)]
    # openpyxl reads a date cell back as a datetime at midnight; its format is a date's.
    assert [(r[0].date(), r[1], r[2], r[3]) for r in rows] == [
        (date(2019, 7, 23), 20, 3, 15.0), (date(2019, 7, 24), 20, 3, 15.0),
        (date(2019, 7, 25), 20, 2, 10.0), (date(2019, 7, 26), 20, 0, 0.0)]
    assert days["A2"].is_date and days["A2"].number_format == "yyyy-mm-dd"

    summary = {r[0].value: r[1] for r in book["概要"].iter_rows(min_row=2)}
    assert summary["予約件数"].value == 3 and summary["延べ席日数"].value == 8
    assert summary["企業の支払額(円)"].number_format == '"¥"#,##0'
    co2 = summary["削減できたCO2(kg、推計)"]
    assert co2.data_type == "n" and co2.number_format == "#,##0.0"
    about = {r[0].value: r[1].value for r in book["レポートについて"].iter_rows(min_row=2)}
    assert about["期間の開始"].date() == campaign.starts_on
    assert "日本時間" in about["時刻"]


def test_every_sheet_reads_with_pandas(clerk, campaign, client):
    sheets = pd.read_excel(io.BytesIO(_xlsx(client, campaign)), sheet_name=None)
    assert list(sheets) == SHEETS_JA
    bookings = sheets["予約一覧"]
    assert list(bookings.columns) == BOOKING_COLUMNS_JA
    assert pd.api.types.is_datetime64_any_dtype(bookings["開始日時(日本時間)"])
    assert bookings["開始日時(日本時間)"].iloc[0].strftime("%H:%M") == "09:00"
    assert pd.api.types.is_integer_dtype(bookings["席数"])
    assert pd.api.types.is_integer_dtype(bookings["企業の支払額(円)"])
    assert bookings["企業"].iloc[0] == "=1+2 商事"
    days = sheets["日別の稼働"]
    assert pd.api.types.is_datetime64_any_dtype(days["日付"])
    assert list(days["予約席数"]) == [3, 3, 2, 0]
    assert pd.api.types.is_numeric_dtype(days["稼働率(%)"])
    prefectures = sheets["企業の所在都道府県"]
    assert dict(zip(prefectures["都道府県"], prefectures["企業数"], strict=True)) == {
        "埼玉県": 1, "東京都": 1}
    for name, frame in sheets.items():
        assert not any(str(c).startswith("Unnamed") for c in frame.columns), name


def test_workbook_in_english(clerk, campaign, client):
    data = _xlsx(client, campaign, "?lang=en")
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == SHEETS_EN
    bookings = book["Bookings"]
    headers = [c.value for c in bookings[1]]
    assert "Start (Japan time)" in headers and "Status" in headers
    status = headers.index("Status")
    assert [row[status].value for row in bookings.iter_rows(min_row=2)] == [
        "Confirmed", "Checked in", "No-show", "Cancelled"]


def _zip(client, campaign: Campaign, query: str = "") -> zipfile.ZipFile:
    response = client.get(f"/municipality/campaigns/{campaign.id}/report-csv.zip{query}")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].endswith('-csv.zip"')
    return zipfile.ZipFile(io.BytesIO(response.data))


def test_zip_holds_one_table_per_csv(clerk, campaign, client):
    archive = _zip(client, campaign)
    assert archive.namelist() == CSV_FILES
    for name in CSV_FILES:
        raw = archive.read(name)
        assert raw.startswith(b"\xef\xbb\xbf"), name
        frame = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
        assert list(frame.columns) == CSV_COLUMNS_JA[name], name
    bookings = pd.read_csv(io.BytesIO(archive.read("07-bookings.csv")), encoding="utf-8-sig")
    # Tokyo time with its offset: a program cannot take it for UTC.
    assert bookings["開始日時(日本時間)"].iloc[0] == "2019-07-23T09:00:00+09:00"
    assert pd.to_datetime(bookings["開始日時(日本時間)"]).iloc[0].hour == 9
    assert list(bookings["状態"]) == ["確定", "チェックイン済み", "来場なし", "キャンセル済み"]
    assert list(bookings["席数"]) == [3, 2, 1, 2]
    # The one CSV rule: a formula-looking name gets its quote.
    assert bookings["企業"].iloc[0] == "'=1+2 商事"
    summary = pd.read_csv(io.BytesIO(archive.read("02-summary.csv")), encoding="utf-8-sig")
    assert dict(zip(summary["指標"], summary["値"], strict=True))["予約件数"] == 3
    days = pd.read_csv(io.BytesIO(archive.read("03-occupancy.csv")), encoding="utf-8-sig")
    assert list(days["日付"]) == ["2019-07-23", "2019-07-24", "2019-07-25", "2019-07-26"]


def test_zip_in_english(clerk, campaign, client):
    archive = _zip(client, campaign, "?lang=en")
    assert archive.namelist() == CSV_FILES  # the same file names in every language
    bookings = pd.read_csv(io.BytesIO(archive.read("07-bookings.csv")), encoding="utf-8-sig")
    assert list(bookings["Status"]) == ["Confirmed", "Checked in", "No-show", "Cancelled"]
    assert bookings["Start (Japan time)"].iloc[0] == "2019-07-23T09:00:00+09:00"


def test_one_space_of_the_campaign(clerk, campaign, client):
    space_id = campaign.slots[0].unit.space_id
    book = openpyxl.load_workbook(io.BytesIO(_xlsx(client, campaign, f"?space={space_id}")))
    about = {r[0].value: r[1].value for r in book["レポートについて"].iter_rows(min_row=2)}
    assert about["施設"] != "キャンペーン全体"
    assert _zip(client, campaign, f"?space={space_id}").namelist() == CSV_FILES
    assert client.get(f"/municipality/campaigns/{campaign.id}/report.xlsx?space=999999"
                      ).status_code == 404


def test_print_view_a4_with_charts_and_wareki(clerk, campaign, client):
    page = client.get(f"/municipality/campaigns/{campaign.id}/report")
    html = page.get_data(as_text=True)
    for href in ("report.xlsx", "report-csv.zip", "report/print", "report/print?era=wareki"):
        assert f"/municipality/campaigns/{campaign.id}/{href}" in html, href

    printed = client.get(f"/municipality/campaigns/{campaign.id}/report/print")
    assert printed.status_code == 200
    text = printed.get_data(as_text=True)
    assert "css/report-print.css" in text
    assert text.count('<svg class="chart"') == 2
    assert "2019年7月22日" in text and "令和" not in text
    assert "=1+2 商事" not in text  # no per-booking list (company names) in the publication
    with client.get("/static/css/report-print.css") as response:
        css = response.get_data(as_text=True)
    assert "@page { size: A4" in css and "@media print" in css and ".site-header" in css

    wareki = client.get(f"/municipality/campaigns/{campaign.id}/report/print?era=wareki")
    text = wareki.get_data(as_text=True)
    assert "令和元年7月22日" in text and "令和元年7月23日" in text
    english = client.get(f"/municipality/campaigns/{campaign.id}/report/print?era=wareki&lang=en")
    assert "Reiwa 1 (2019), July 22" in english.get_data(as_text=True)


def test_old_combined_csv_still_answers(clerk, campaign, client):
    response = client.get(f"/municipality/campaigns/{campaign.id}/report.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"


def test_others_are_refused(campaign, client, make):
    urls = [f"/municipality/campaigns/{campaign.id}/{tail}"
            for tail in ("report.xlsx", "report-csv.zip", "report/print")]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/account/login" in response.headers["Location"]
    shizuoka = db.session.scalar(sa.select(Organisation).where(
        Organisation.name == "静岡市", Organisation.kind == OrgKind.MUNICIPALITY))
    other_clerk = make.user(organisation=shizuoka)
    client.post("/account/login", data={"email": other_clerk.email, "password": make.PASSWORD})
    for url in urls:
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"=1+2" not in response.data
    company_user = make.user(organisation=make.company(name="覗き見株式会社"))
    client.post("/account/logout")
    client.get("/")
    with client.session_transaction() as session:
        session.clear()
    client.post("/account/login", data={"email": company_user.email, "password": make.PASSWORD})
    for url in urls:
        assert client.get(url).status_code == 403, url


def test_text_with_control_characters_does_not_break_the_workbook(clerk, campaign, client):
    company = db.session.scalar(sa.select(Organisation).where(Organisation.name == "千葉テスト株式会社"))
    company.name = "千葉\x07テスト\x1b株式会社"
    db.session.commit()
    book = openpyxl.load_workbook(io.BytesIO(_xlsx(client, campaign)))
    names = [row[1].value for row in book["予約一覧"].iter_rows(min_row=2)]
    assert "千葉テスト株式会社" in names
    assert re.fullmatch(r"[^\x00-\x1f]+", names[-1])


def test_workbook_in_wareki_keeps_dates_as_dates(clerk, campaign, client):
    """?era=wareki: the same dates, shown in 和暦 by Excel's era format (元年 included),
    so that sorting and other programs still read dates."""
    book = openpyxl.load_workbook(io.BytesIO(_xlsx(client, campaign, "?era=wareki")))
    days = book["日別の稼働"]
    assert days["A2"].is_date and days["A2"].value.date() == date(2019, 7, 23)
    assert days["A2"].number_format == '[$-ja-JP-x-gannen]ggge"年"m"月"d"日"'
    first = list(book["予約一覧"][2])
    assert first[3].is_date and first[3].value.isoformat() == "2019-07-23T09:00:00"
    assert first[3].number_format.endswith(" hh:mm") and "ggge" in first[3].number_format
    frames = pd.read_excel(io.BytesIO(_xlsx(client, campaign, "?era=wareki")),
                           sheet_name=None)
    assert str(frames["日別の稼働"]["日付"].iloc[0].date()) == "2019-07-23"
    page = client.get(f"/municipality/campaigns/{campaign.id}/report").get_data(as_text=True)
    assert f"/municipality/campaigns/{campaign.id}/report.xlsx?era=wareki" in page
