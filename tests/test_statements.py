"""The operator's monthly statement (月次明細, services/statements.py): which bookings
count in which Tokyo month, the totals and their tax, the CSV files (read by pandas),
the PDF (read by pdftotext), the page with its 和暦 option and English labels, and who
may read it."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date

import pandas as pd
import pytest

from booking.extensions import db
from booking.models import BookingStatus, OrgKind
from booking.services import statements
from booking.services.availability import at

DEC = date(2026, 12, 1)


@pytest.fixture
def world(make):
    """A space of 静岡テレワーク運営 with a desk and a room; bookings of December 2026 and
    January 2027 (Tokyo), one through 駒ヶ根テスト市's subsidised slot; bookings that do not
    count; another operator's space with a December booking."""
    operator = make.organisation(OrgKind.OPERATOR, name="静岡テレワーク運営",
                                 invoice_registration_number="T1234567890123")
    space = make.space(operator, name="御幸町ワークス")
    desk = make.unit(space, name="フリー席", price_amount=1100)
    room = make.unit(space, name="会議室A", price_amount=3300)
    staff = make.user(organisation=operator, role="staff")
    hostile = make.company(name="=1+2 商事")
    plain = make.company(name="駿河商事株式会社")
    city = make.organisation(OrgKind.MUNICIPALITY, name="駒ヶ根テスト市")
    campaign = make.campaign(city, name="テレワーク・デイズ試行")
    slot = make.slot(campaign, desk)

    def book(unit, day, company, price, status=BookingStatus.CONFIRMED, seats=1, **kw):
        return make.booking(unit, at(day, 540), at(day, 1080), seats, company=company,
                            price_amount=price, status=status, **kw)

    counted = [
        book(desk, date(2026, 12, 1), hostile, 1105),
        book(room, date(2026, 12, 10), plain, 2215, BookingStatus.CHECKED_IN, seats=2),
        book(desk, date(2026, 12, 11), plain, 1105, BookingStatus.NO_SHOW),
        book(desk, date(2026, 12, 15), hostile, 550, campaign_slot_id=slot.id,
             subsidy_amount=1650),
        book(desk, date(2026, 12, 16), plain, 1100, BookingStatus.RELEASED),
        book(desk, date(2026, 12, 31), plain, 1100),
    ]
    not_counted = [
        book(desk, date(2026, 12, 2), plain, 9999, BookingStatus.CANCELLED),
        book(desk, date(2026, 12, 3), plain, 7777, BookingStatus.OFFERED),
        book(desk, date(2026, 12, 4), plain, 6666, BookingStatus.EXPIRED),
        # 2027-01-01 00:00 in Tokyo is still 2026-12-31 in UTC: January's.
        make.booking(desk, at(date(2027, 1, 1), 0), at(date(2027, 1, 1), 600), 1,
                     company=plain, price_amount=4400),
        book(desk, date(2026, 11, 30), plain, 5555),
    ]
    other_operator = make.organisation(OrgKind.OPERATOR, name="別の運営会社")
    other_space = make.space(other_operator, name="よその施設")
    stranger = make.user(organisation=other_operator)
    elsewhere = book(make.unit(other_space), date(2026, 12, 1), plain, 3000)
    company_user = make.user(organisation=plain, role="owner")
    return {"operator": operator, "space": space, "staff": staff, "counted": counted,
            "not_counted": [*not_counted, elsewhere], "stranger": stranger,
            "company_user": company_user, "other_space": other_space}


# December: what the companies paid, the subsidy, each tax once on its total.
PAID = 1105 + 2215 + 1105 + 550 + 1100 + 1100  # 7175
PAID_TAX = PAID * 10 // 110  # 652
RECEIPTS_TAX = 100 + 201 + 100 + 50 + 100 + 100  # 651: each receipt's own tax, summed
SUBSIDY, SUBSIDY_TAX = 1650, 150
TOTAL, TOTAL_TAX = PAID + SUBSIDY, (PAID + SUBSIDY) * 10 // 110  # 8825, 802


def _statement(world, month=DEC):
    with db.session.no_autoflush:
        return statements.statement(db.session, world["staff"], world["space"], month)


def test_the_month_holds_exactly_the_bookings_that_count(app, world):
    found = _statement(world)
    assert [line.booking.reference for line in found.lines] == [
        b.reference for b in world["counted"]]
    january = _statement(world, date(2027, 1, 1))
    assert [line.booking.reference for line in january.lines] == [
        world["not_counted"][3].reference]


def test_totals_and_tax_once_per_rate_and_the_municipalitys_share(app, world):
    found = _statement(world)
    [rate] = found.rates
    assert (rate.percent, rate.company_paid, rate.company_tax) == (10, PAID, PAID_TAX)
    assert (rate.subsidies, rate.subsidies_tax) == (SUBSIDY, SUBSIDY_TAX)
    assert (rate.total, rate.tax, rate.receipts_tax) == (TOTAL, TOTAL_TAX, RECEIPTS_TAX)
    [claim] = found.claims
    assert (claim.name, claim.bookings, claim.amount, claim.tax) == (
        "駒ヶ根テスト市", 1, SUBSIDY, SUBSIDY_TAX)
    subsidised = [line for line in found.lines if line.subsidy]
    assert [(x.campaign_name, x.municipality_name) for x in subsidised] == [
        ("テレワーク・デイズ試行", "駒ヶ根テスト市")]


def test_an_empty_month_says_so(client, login, world):
    login(world["staff"])
    html = client.get(f"/operator/spaces/{world['space'].id}/statement?month=2026-10").get_data(
        as_text=True)
    assert "この月に数える予約はありません。" in html
    assert "この月に自治体へ請求する負担額はありません。" in html


def _csv(response) -> pd.DataFrame:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")  # the BOM
    return pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig", dtype=str,
                       keep_default_na=False)


def test_csv_files_read_by_pandas(client, login, world):
    login(world["staff"])
    base = f"/operator/spaces/{world['space'].id}"
    lines = _csv(client.get(f"{base}/statement.csv?month=2026-12"))
    assert list(lines.columns) == [
        "予約番号", "利用日", "開始日時", "終了日時", "区画", "会社", "席数", "状態",
        "企業の支払額(円・税込)", "うち消費税(円)", "税率(%)", "自治体負担額(円)", "請求先の自治体",
        "キャンペーン"]
    assert list(lines["予約番号"]) == [b.reference for b in world["counted"]]
    first = lines.iloc[0]
    assert first["利用日"] == "2026-12-01"
    assert first["開始日時"] == "2026-12-01 09:00"  # Tokyo time, not UTC
    assert first["会社"] == "'=1+2 商事"  # formula defused
    assert first["状態"] == "確定"
    assert [int(v) for v in lines["企業の支払額(円・税込)"]] == [1105, 2215, 1105, 550, 1100, 1100]
    assert sum(int(v) for v in lines["うち消費税(円)"]) == RECEIPTS_TAX
    campaign = lines[lines["自治体負担額(円)"] != "0"].iloc[0]
    assert (campaign["請求先の自治体"], campaign["キャンペーン"]) == (
        "駒ヶ根テスト市", "テレワーク・デイズ試行")

    totals = _csv(client.get(f"{base}/statement-totals.csv?month=2026-12"))
    assert list(totals.columns) == ["内訳", "税率(%)", "金額(円・税込)", "うち消費税(円)"]
    rows = {r["内訳"]: (int(r["金額(円・税込)"]), int(r["うち消費税(円)"]))
            for _, r in totals.iterrows()}
    assert rows == {"企業の支払額の合計": (PAID, PAID_TAX), "自治体負担額の合計": (SUBSIDY, SUBSIDY_TAX),
                    "売上の合計": (TOTAL, TOTAL_TAX), "駒ヶ根テスト市への請求額": (SUBSIDY, SUBSIDY_TAX)}

    wareki = _csv(client.get(f"{base}/statement.csv?month=2026-12&era=wareki"))
    assert wareki.iloc[0]["利用日"] == "令和8年12月1日"


def test_csv_in_english(client, login, world):
    login(world["staff"])
    lines = _csv(client.get(f"/operator/spaces/{world['space'].id}/statement.csv"
                            "?month=2026-12&lang=en"))
    assert list(lines.columns)[:3] == ["Reference", "Date", "Start"]
    assert "Company paid (yen, tax incl.)" in lines.columns
    assert lines.iloc[0]["Status"] == "Confirmed"


def _pdftotext(body: bytes) -> str:
    assert body.startswith(b"%PDF")
    tool = shutil.which("pdftotext")
    assert tool, "pdftotext (poppler-utils, scripts/system-packages.sh) is needed"
    done = subprocess.run([tool, "-layout", "-enc", "UTF-8", "-", "-"], input=body,
                          capture_output=True, check=True)
    return done.stdout.decode()


def test_pdf_read_by_pdftotext(client, login, world):
    login(world["staff"])
    base = f"/operator/spaces/{world['space'].id}"
    response = client.get(f"{base}/statement.pdf?month=2026-12")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    text = _pdftotext(response.data)
    for expected in ("月次明細", "御幸町ワークス", "静岡テレワーク運営", "T1234567890123",
                     "2026年12月", "=1+2 商事", "駿河商事株式会社", "フリー席", "会議室A",
                     "テレワーク・デイズ試行", "駒ヶ根テスト市への請求額", "2026-12-31",
                     "企業の支払額の合計", "自治体負担額の合計", "売上の合計",
                     f"¥{PAID:,}", f"¥{PAID_TAX:,}", f"¥{TOTAL:,}", f"¥{TOTAL_TAX:,}",
                     f"¥{SUBSIDY:,}", f"¥{SUBSIDY_TAX:,}", f"¥{RECEIPTS_TAX:,}"):
        assert expected in text, (expected, text)
    for absent in ("¥9,999", "¥7,777", "¥6,666", "¥4,400", "¥5,555", "¥3,000"):
        assert absent not in text
    wareki = _pdftotext(client.get(f"{base}/statement.pdf?month=2026-12&era=wareki").data)
    assert "令和8年12月" in wareki and "令和8年12月31日" in wareki


def test_page_table_totals_links_and_wareki(client, login, world):
    login(world["staff"])
    base = f"/operator/spaces/{world['space'].id}"
    space_page = client.get(base).get_data(as_text=True)
    assert f'href="{base}/statement"' in space_page
    response = client.get(f"{base}/statement?month=2026-12")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'class="list-table statement-lines"' in html and 'data-label="会社"' in html
    for b in world["counted"]:
        assert b.reference in html
    for b in world["not_counted"]:
        assert b.reference not in html
    for amount in (PAID, PAID_TAX, TOTAL, TOTAL_TAX, SUBSIDY, SUBSIDY_TAX):
        assert f"¥{amount:,}" in html
    assert "2026年12月1日(火)" in html
    assert f'{base}/statement.csv?month=2026-12"' in html
    assert f'{base}/statement.pdf?month=2026-12"' in html
    wareki = client.get(f"{base}/statement?month=2026-12&era=wareki").get_data(as_text=True)
    assert "令和8年12月1日" in wareki and "令和8年12月" in wareki
    assert "statement.pdf?month=2026-12&amp;era=wareki" in wareki
    english = client.get(f"{base}/statement?month=2026-12&era=wareki&lang=en").get_data(
        as_text=True)
    assert "Monthly statement" in english and "Reiwa 8 (2026), December 1" in english


def test_this_month_by_default_and_a_bad_month_beside_its_field(client, login, world):
    login(world["staff"])
    base = f"/operator/spaces/{world['space'].id}/statement"
    assert "2026年12月" in client.get(base).get_data(as_text=True)  # the suite's Tokyo today
    for bad in ("2026-13", "1999-12", "9999-01", "December", "2026-1"):
        for path in (base, f"{base}.csv", f"{base}.pdf", base.replace("statement",
                                                                         "statement-totals.csv")):
            response = client.get(f"{path}?month={bad}")
            assert response.status_code == 422, (path, bad)
            assert 'id="month-error"' in response.get_data(as_text=True)


def test_only_members_of_the_spaces_organisation(client, login, world, make):
    base = f"/operator/spaces/{world['space'].id}"
    paths = ("/statement", "/statement.csv", "/statement-totals.csv", "/statement.pdf")
    for path in paths:  # anonymous: the log-in page
        assert "/account/login" in client.get(base + path).headers["Location"]
    login(world["stranger"])  # another operator: the space does not exist for them
    for path in paths:
        assert client.get(base + path + "?month=2026-12").status_code == 404
    # …and their own space's statement does not show ours.
    own = client.get(f"/operator/spaces/{world['other_space'].id}/statement?month=2026-12")
    assert own.status_code == 200
    assert world["counted"][0].reference not in own.get_data(as_text=True)
    client.post("/account/logout")
    login(world["company_user"])  # a company: refused the console, as its other pages
    for path in paths:
        assert client.get(base + path).status_code == 403
