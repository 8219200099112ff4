"""Receipts, qualified invoices, credit notes and usage certificates: the PDFs read back
with pdftotext (Japanese fields, amounts), the registration number's check digit, who
may download, numbers unique under concurrent issuing (PostgreSQL, threads), the API's
receipt_url and the 和暦 option."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from booking import clock
from booking.clock import TOKYO
from booking.extensions import db
from booking.models import (
    Booking,
    BookingStatus,
    DocumentKind,
    Organisation,
    OrgKind,
    PricePer,
    Receipt,
    User,
)
from booking.services import receipts
from booking.services.errors import DomainError
from booking.wareki import wareki

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                reason="pdftotext (poppler-utils) is not installed: "
                                       "scripts/system-packages.sh")

VALID = "T7000012050002"  # 国税庁's own 法人番号 with T: check digit 7
INVALID = "T1000012050002"


def pdftext(body: bytes, tmp_path) -> str:
    assert body.startswith(b"%PDF-")
    path = tmp_path / "doc.pdf"
    path.write_bytes(body)
    out = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True, text=True).stdout
    return re.sub(r"[ \t]+", " ", out)


def _day_of_use() -> date:
    return clock.today() + timedelta(days=10)


class World:
    pass


@pytest.fixture
def w(make) -> World:
    """Demo-like: a coworking operator in Shizuoka with a registration number, one
    without, a company (admin and member), a municipality's campaign with a subsidised
    slot and a free slot."""
    w = World()
    w.operator = make.organisation(OrgKind.OPERATOR, name="しずおかワークス株式会社",
                                   invoice_registration_number=VALID,
                                   postal_code="420-0857", address="静岡県静岡市葵区御幸町")
    w.plain_operator = make.organisation(OrgKind.OPERATOR, name="まちなか書斎")
    w.company = make.company(name="株式会社テレワーク商事")
    w.admin = make.user(organisation=w.company, role="owner", name="会社管理者")
    w.booker = make.user(organisation=w.company, role="staff", name="予約者")
    w.colleague = make.user(organisation=w.company, role="staff", name="同僚")
    w.staff = make.user(organisation=w.operator, role="staff")
    w.owner = make.user(organisation=w.operator, role="owner")
    w.stranger_op = make.user(organisation=make.organisation(OrgKind.OPERATOR))
    w.site_admin = make.user(is_admin=True)
    w.space = make.space(w.operator, name="しずおかワークス駅前")
    w.unit = make.unit(w.space, name="フリーデスク", price_amount=1100,
                       price_per=PricePer.DAY)
    w.plain_unit = make.unit(make.space(w.plain_operator, name="書斎の家"), name="個室",
                             price_amount=3300, price_per=PricePer.DAY)
    w.city = make.organisation(OrgKind.MUNICIPALITY, name="静岡市")
    w.campaign = make.campaign(w.city, name="しずおかテレワーク推進")
    w.slot = make.slot(w.campaign, w.unit, price_amount=None, subsidy_cap=500)
    w.free_slot = make.slot(w.campaign, w.unit, price_amount=0)
    day = _day_of_use()
    start = datetime(day.year, day.month, day.day, 9, tzinfo=TOKYO)
    end = datetime(day.year, day.month, day.day, 18, tzinfo=TOKYO)
    w.day = day
    w.paid = make.booking(w.unit, start, end, 2, company=w.company, user_id=w.booker.id,
                          price_amount=2200)
    w.plain = make.booking(w.plain_unit, start, end, 1, company=w.company,
                           user_id=w.booker.id, price_amount=3300)
    w.subsidised = make.booking(w.unit, start, end, 1, company=w.company, user_id=w.booker.id,
                                campaign_slot_id=w.slot.id, price_amount=600,
                                subsidy_amount=500)
    w.free = make.booking(w.unit, start, end, 1, company=w.company, user_id=w.booker.id,
                          campaign_slot_id=w.free_slot.id, price_amount=0)
    db.session.commit()
    return w


def _issue(user: User, booking: Booking) -> Receipt:
    receipt = receipts.issue(db.session, user, booking.reference)
    db.session.commit()
    return receipt


def _amount(text: str, label: str) -> int:
    match = re.search(re.escape(label) + r"\s*¥([\d,]+)", text)
    assert match, (label, text)
    return int(match.group(1).replace(",", ""))


def _western(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def test_a_qualified_invoice_has_every_field(w, tmp_path):
    receipt = _issue(w.booker, w.paid)
    assert receipt.kind == DocumentKind.INVOICE and receipt.sequence == 1
    text = pdftext(receipts.render(receipt).body, tmp_path)
    assert "適格請求書" in text
    assert "しずおかワークス株式会社" in text and VALID in text  # issuer and its number
    assert "株式会社テレワーク商事 御中" in text  # the recipient
    assert f"No. {receipt.number}" in text
    assert _western(w.day) in text  # the transaction date
    assert "しずおかワークス駅前 フリーデスク" in text and "1日 × 2席" in text
    assert _amount(text, "ご請求額（税込）") == 2200
    assert "10%対象" in text
    # ¥2,200 tax-included at 10 %: tax ¥200 (rounded down once), ¥2,000 without tax.
    assert re.search(r"10%対象\s*¥2,200（うち消費税 ¥200）", text), text
    assert _amount(text, "税抜金額") == 2000
    assert "適格請求書ではありません" not in text


def test_an_operator_without_a_number_issues_a_receipt_that_says_it_is_no_invoice(w, tmp_path):
    receipt = _issue(w.admin, w.plain)
    assert receipt.kind == DocumentKind.RECEIPT
    text = pdftext(receipts.render(receipt).body, tmp_path)
    assert "領収書" in text and "まちなか書斎" in text
    assert "本書は適格請求書ではありません" in text
    assert "登録番号 なし" in text
    assert _amount(text, "領収金額（税込）") == 3300
    assert re.search(r"10%対象\s*¥3,300（うち消費税 ¥300）", text), text


def test_the_municipalitys_share_is_named_but_not_billed_to_the_company(w, tmp_path):
    text = pdftext(receipts.render(_issue(w.booker, w.subsidised)).body, tmp_path)
    assert _amount(text, "ご請求額（税込）") == 600
    assert re.search(r"10%対象\s*¥600（うち消費税 ¥54）", text), text
    assert "自治体負担分 ¥500（静岡市が負担。本書の金額には含まれません）" in text
    assert "しずおかテレワーク推進" in text


def test_a_free_campaign_booking_gets_a_usage_certificate(w, tmp_path):
    receipt = _issue(w.booker, w.free)
    assert receipt.kind == DocumentKind.USAGE_CERTIFICATE
    text = pdftext(receipts.render(receipt).body, tmp_path)
    assert "利用証明書" in text and "利用されたことを証明します" in text
    assert "株式会社テレワーク商事 御中" in text and "しずおかワークス株式会社" in text
    assert _amount(text, "ご負担額") == 0
    assert _western(w.day) in text


def test_downloading_twice_gives_the_same_number_and_numbers_follow_per_issuer(w):
    first = _issue(w.booker, w.paid)
    assert _issue(w.admin, w.paid).id == first.id  # idempotent, whoever asks
    second = _issue(w.booker, w.free)
    other_issuer = _issue(w.booker, w.plain)
    assert (first.sequence, second.sequence, other_issuer.sequence) == (1, 2, 1)
    assert first.number != second.number


def test_a_cancellation_after_issue_gives_a_credit_note_referring_to_the_original(w, tmp_path):
    from booking.services import reservations

    original = _issue(w.booker, w.paid)
    reservations.cancel(db.session, db.session.get(Booking, w.paid.id), w.booker)
    db.session.commit()
    note = _issue(w.booker, w.paid)
    assert note.kind == DocumentKind.CREDIT_NOTE and note.credit_of_id == original.id
    assert note.sequence == original.sequence + 1
    assert _issue(w.admin, w.paid).id == note.id
    text = pdftext(receipts.render(note).body, tmp_path)
    assert "返還インボイス" in text and VALID in text
    assert f"返還の対象 No. {original.number}（適格請求書" in text
    assert _amount(text, "返還額（税込）") == 2200
    assert re.search(r"10%対象\s*¥2,200（うち消費税 ¥200）", text), text
    # The original can still be downloaded.
    assert receipts.find(db.session, w.booker, original.id, w.paid.reference).id == original.id


def test_a_booking_cancelled_before_any_document_gets_none(w):
    from booking.services import reservations

    reservations.cancel(db.session, db.session.get(Booking, w.plain.id), w.booker)
    db.session.commit()
    assert not receipts.available(db.session, db.session.get(Booking, w.plain.id))
    with pytest.raises(DomainError):
        receipts.issue(db.session, w.booker, w.plain.reference)


def test_the_content_is_frozen_at_issue(w, tmp_path):
    receipt = _issue(w.booker, w.paid)
    w.operator.name = "改名後の会社"
    db.session.commit()
    text = pdftext(receipts.render(db.session.get(Receipt, receipt.id)).body, tmp_path)
    assert "しずおかワークス株式会社" in text and "改名後の会社" not in text


def test_wareki_dates(w, tmp_path):
    receipt = _issue(w.booker, w.paid)
    text = pdftext(receipts.render(receipt, era=True).body, tmp_path)
    assert wareki(w.day, "ja") in text and _western(w.day) not in text


# ------------------------------------------------------------------- registration number


FULL_WIDTH = "T7000-0120-50002".translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})


@pytest.mark.parametrize("raw", [VALID, "t7000012050002", FULL_WIDTH, "T 7000 0120 50002",
                                 "T9234567890123"])
def test_valid_registration_numbers(raw):
    assert receipts.valid_registration_number(receipts.normalise_registration_number(raw))


@pytest.mark.parametrize("raw", [INVALID, "7000012050002", "T700001205000", "T70000120500021",
                                 "X7000012050002", "T70000120500\uff102x", "", None])
def test_invalid_registration_numbers(raw):
    assert not receipts.valid_registration_number(receipts.normalise_registration_number(raw))


def test_the_check_digit_of_known_corporate_numbers():
    # 国税庁 7000012050002; the check digit of 000012050002 is 7.
    assert receipts.registration_check_digit("000012050002") == 7
    assert receipts.registration_check_digit("234567890123") == 9


def test_the_owner_sets_the_number_on_the_form_and_a_bad_one_is_refused_beside_it(
        w, client, login, app):
    app.config["WTF_CSRF_ENABLED"] = False
    login(w.owner)
    url = f"/organisations/{w.operator.id}/invoice-registration"
    page = client.get(url)
    assert page.status_code == 200 and VALID in page.get_data(as_text=True)
    refused = client.post(url, data={"registration_number": INVALID})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'id="registration_number-error"' in html and "チェックディジット" in html
    db.session.expire_all()
    assert db.session.get(Organisation, w.operator.id).invoice_registration_number == VALID
    saved = client.post(url, data={"registration_number": "\uff549234567890123"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, w.operator.id).invoice_registration_number \
        == "T9234567890123"
    assert client.post(url, data={"registration_number": ""}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, w.operator.id).invoice_registration_number is None


def test_only_owners_of_the_organisation_set_the_number(w, client, login):
    url = f"/organisations/{w.operator.id}/invoice-registration"
    login(w.staff)
    assert client.get(url).status_code == 403
    login(w.stranger_op)
    assert client.get(url).status_code == 404
    login(w.admin)  # a company issues no documents (and is not the operator)
    assert client.get(f"/organisations/{w.company.id}/invoice-registration").status_code == 404


# ------------------------------------------------------------------------------ access


def test_who_may_download(w, client, login):
    url = f"/bookings/{w.paid.reference}/receipt"
    for user in (w.booker, w.admin, w.staff, w.site_admin):
        login(user)
        response = client.get(url)
        assert response.status_code == 200, user.name
        assert response.mimetype == "application/pdf"
    for user in (w.colleague, w.stranger_op):
        login(user)
        assert client.get(url).status_code == 404, user.name
        assert client.get("/bookings/NOSUCHREF/receipt").status_code == 404
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Receipt.id))) == 1


def test_the_booking_page_links_the_document(w, client, login):
    login(w.booker)
    html = client.get(f"/bookings/{w.paid.reference}").get_data(as_text=True)
    assert f"/bookings/{w.paid.reference}/receipt" in html
    assert f"/bookings/{w.paid.reference}/receipt?era=wareki" in html


def test_the_api_booking_has_receipt_url(w, client):
    from booking.services import tokens

    token, _expires = tokens.issue(db.session, w.booker, 1)
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.get(f"/api/v1/bookings/{w.paid.reference}", headers=headers)
    assert response.status_code == 200
    url = response.json["receipt_url"]
    assert url.endswith(f"/bookings/{w.paid.reference}/receipt")
    listed = client.get("/api/v1/bookings", headers=headers).json["results"]
    assert {b["reference"]: b["receipt_url"] for b in listed}[w.free.reference].endswith(
        f"/bookings/{w.free.reference}/receipt")
    schema = client.get("/api/v1/openapi.json").json
    assert "receipt_url" in schema["components"]["schemas"]["Booking"]["properties"]


# ------------------------------------------------------------------------- the race

RACERS = 12


@pytest.mark.xdist_group("many_connections")
def test_numbers_stay_unique_when_many_issue_at_once(app, make, backend):
    if backend != "postgresql":
        pytest.skip("the race needs PostgreSQL's row locks (SQLite has one writer)")
    operator = make.organisation(OrgKind.OPERATOR, invoice_registration_number=VALID)
    company = make.company()
    booker = make.user(organisation=company)
    unit = make.unit(make.space(operator), price_amount=1100)
    day = _day_of_use()
    refs = []
    for i in range(RACERS):
        start = datetime(day.year, day.month, day.day, 9, tzinfo=TOKYO) + timedelta(days=i)
        b = make.booking(unit, start, start + timedelta(hours=9), 1, company=company,
                         user_id=booker.id, price_amount=1100)
        refs.append(b.reference)
    db.session.commit()
    user_id = booker.id
    # Each booking twice: two racers download the same booking's invoice at once.
    jobs = refs + refs
    barrier = threading.Barrier(len(jobs))
    outcomes: list[str] = []
    lock = threading.Lock()

    def racer(reference: str) -> None:
        with app.app_context():
            try:
                user = db.session.get(User, user_id)
                db.session.commit()
                barrier.wait(timeout=60)
                receipt = receipts.issue(db.session, user, reference)
                db.session.commit()
                outcome = receipt.number
            except Exception as error:  # any failure is reported below
                outcome = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=racer, args=(ref,)) for ref in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    db.session.expire_all()
    rows = db.session.execute(sa.select(Receipt.booking_id, Receipt.sequence)
                              .where(Receipt.issuer_id == operator.id)).all()
    assert len(rows) == RACERS  # one document per booking, however many asked
    assert sorted(seq for _b, seq in rows) == list(range(1, RACERS + 1))  # unique, no gap
    assert len({b for b, _s in rows}) == RACERS
    assert len(set(outcomes)) == RACERS  # both racers of a booking got the same number


def test_status_offered_has_no_document(w, make):
    offered = make.booking(w.unit, w.paid.starts_at, w.paid.ends_at, 1, company=w.company,
                           user_id=w.booker.id, price_amount=1100,
                           status=BookingStatus.OFFERED)
    db.session.commit()
    assert not receipts.available(db.session, offered)
    with pytest.raises(DomainError):
        receipts.issue(db.session, w.booker, offered.reference)


class TestConfirmationMail:
    """The booker's confirmation mail links the document (a link, no attachment); an
    invited attendee's does not (they may not download it)."""

    @pytest.fixture
    def app_config(self, smtp_port):
        return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}"}

    def test_the_bookers_mail_links_the_receipt(self, smtp_server, make):
        from booking.services import mail
        from tests import worlds
        from tests.edge import reservations as r

        world = worlds.world(make, capacity=50)
        unit, user = world["desks"], world["booker"]
        [booking] = r.book(db.session, unit, user,
                           [r.day_period(unit, worlds.future_day(10))], 1,
                           attendees=["hanako@example.jp"])
        assert mail.run_once(db.session)["sent"] == 2
        messages = {m["To"]: m for m in smtp_server.parsed()}
        link = f"/bookings/{booking.reference}/receipt"

        def bodies(message) -> str:
            return "".join(part.get_content() for part in message.walk()
                           if part.get_content_type() in ("text/plain", "text/html"))

        assert link in bodies(messages[user.email])
        assert link not in bodies(messages["hanako@example.jp"])
        assert not any(part.get_content_type() == "application/pdf"
                       for m in messages.values() for part in m.walk())
