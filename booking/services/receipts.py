"""Receipts, qualified invoices (適格請求書), credit notes and usage certificates.

Which document a booking gets (one per booking, plus a credit note when it is cancelled):
- the company pays something (`Booking.price_amount` > 0): a 適格請求書 (INVOICE) from the
  space's operator when the operator has a valid registration number, else a 領収書
  (RECEIPT) that says it is not a qualified invoice;
- a free campaign booking (price 0): a 利用証明書 (USAGE_CERTIFICATE);
- a booking cancelled after its receipt or invoice was issued: a credit note
  (返還インボイス, CREDIT_NOTE) for the whole amount, referring to the original's number.

When: on first download (the booking page's link, the mail's link, the API's
`receipt_url`) once the booking is a booking (confirmed, checked in, no-show, released),
so a booking never looked at costs no number. Issuing is idempotent: the document of a
kind for a booking is issued once and read back afterwards (same number, same content:
`content` is frozen at issue and the PDF is drawn from it). A cancelled booking's credit
note is issued the same way, on the first download after the cancellation (dated with
the cancellation); a booking cancelled before any document was issued gets none.

The municipality's share (`subsidy_amount`): the company did not pay it, so the company's
document covers only what the company paid and names the municipality's share beside it
as not included; the operator claims that share from the municipality with its monthly
statement (services/statements.py), not with a document to the company.

Numbers: per issuer, from the issuer's `ReceiptCounter` row, locked in the issuing
transaction (PostgreSQL: SELECT … FOR UPDATE then UPDATE … RETURNING; SQLite: the
IMMEDIATE transaction of booking.db.begin_write). The number is taken only after the
"already issued?" check under that lock, so numbers are unique and, as long as the
transaction commits, without gaps; a transaction rolled back after taking a number
gives it back with everything else (the counter row is rolled back too), so a number is
never printed twice.

The PDF is Japanese (the language of the tax documents), whatever the reader's language;
`era=True` prints its dates in 和暦 (booking.wareki).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking import clock, db
from booking.clock import TOKYO
from booking.models import (
    Booking,
    BookingStatus,
    DocumentKind,
    Organisation,
    OrgKind,
    PricePer,
    Receipt,
    ReceiptCounter,
    User,
)
from booking.services import access, pricing
from booking.services.errors import DomainError
from booking.services.pdf_documents import PdfDocument
from booking.wareki import wareki

# Statuses of a booking that was made (and may be billed): a document may be issued.
ISSUABLE = (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN, BookingStatus.NO_SHOW,
            BookingStatus.RELEASED)
MONEY_KINDS = (DocumentKind.RECEIPT, DocumentKind.INVOICE)

TITLES = {
    DocumentKind.INVOICE: "適格請求書",
    DocumentKind.RECEIPT: "領収書",
    DocumentKind.CREDIT_NOTE: "適格返還請求書（返還インボイス）",
    DocumentKind.USAGE_CERTIFICATE: "利用証明書",
}

# ----------------------------------------------------------------- registration number


def registration_check_digit(twelve: str) -> int:
    """The check digit of a 法人番号 (and of an invoice registration number's 13 digits):
    9 − (Σ Pn × Qn mod 9), Pn the n-th digit from the right of the other twelve, Qn 1 for
    odd n and 2 for even n (法人番号の指定等に関する省令 第2条)."""
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(twelve), start=1))
    return 9 - total % 9


# Spaces and the dashes people type between digit groups (hyphen, minus, katakana 長音).
_SEPARATORS = {" ", "\t", "-", "\u2010", "\u2212", "\u30fc"}


def normalise_registration_number(raw: str | None) -> str:
    """What a person typed, as stored: full-width folded, upper case, without spaces or
    hyphens (full-width "t7000-0120…" → "T7000012050002"); "" for nothing."""
    text = unicodedata.normalize("NFKC", raw or "").upper()
    return "".join(ch for ch in text if ch not in _SEPARATORS)


def valid_registration_number(value: str | None) -> bool:
    """"T" and 13 digits whose first digit is the check digit of the other twelve."""
    if not value or len(value) != 14 or value[0] != "T" or not value[1:].isascii() \
            or not value[1:].isdigit():
        return False
    return int(value[1]) == registration_check_digit(value[2:])


def registration_of(session: Session, user: User, org_id: int) -> Organisation:
    """The operator or municipality whose number `user`, an owner, may set; companies
    issue no documents ("not_found")."""
    organisation = access.fetch(session, user, "own", Organisation, org_id)
    if organisation.kind == OrgKind.COMPANY:
        raise DomainError("not_found")
    return organisation


def set_registration_number(session: Session, user: User, org_id: int,
                            raw: str | None) -> Organisation:
    """An operator's or municipality's owner sets (or clears, with nothing) its number."""
    organisation = registration_of(session, user, org_id)
    value = normalise_registration_number(raw)
    if value and not valid_registration_number(value):
        raise DomainError("invoice_registration_number", field="registration_number")
    organisation.invoice_registration_number = value or None
    session.flush()
    return organisation


# ----------------------------------------------------------------------------- issuing


def _find_booking(session: Session, user: User, reference: str) -> Booking:
    """The booking, for the booker, the company's admins, its operator, a site admin;
    "not_yours" (404) for anyone else, who is told nothing about what exists."""
    booking = session.scalar(sa.select(Booking).where(Booking.reference == reference.upper()))
    if booking is None or not access.allowed(user, "receipt", booking):
        raise DomainError("not_yours")
    return booking


def _issued(session: Session, booking_id: int) -> list[Receipt]:
    return list(session.scalars(
        sa.select(Receipt).where(Receipt.booking_id == booking_id).order_by(Receipt.id)))


def _wanted(booking: Booking, issued: list[Receipt]) -> tuple[DocumentKind, Receipt | None] | None:
    """The document the booking's link stands for now (kind, and the original a credit
    note refers to), or None when there is none to give."""
    if booking.status in ISSUABLE:
        for document in issued:
            if document.kind != DocumentKind.CREDIT_NOTE:
                return document.kind, None  # issued already: its kind, whatever it is
        if booking.price_amount == 0:
            return DocumentKind.USAGE_CERTIFICATE, None
        issuer = booking.unit.space.organisation
        return (DocumentKind.INVOICE if valid_registration_number(
            issuer.invoice_registration_number) else DocumentKind.RECEIPT), None
    if booking.status == BookingStatus.CANCELLED:
        original = next((d for d in issued if d.kind in MONEY_KINDS), None)
        if original is not None:
            return DocumentKind.CREDIT_NOTE, original
    return None


def available(session: Session, booking: Booking) -> bool:
    """Whether the booking's document link leads to a document (no query for a booking
    that is not cancelled)."""
    if booking.status in ISSUABLE:
        return True
    if booking.status != BookingStatus.CANCELLED:
        return False
    return (session.scalar(sa.select(sa.func.count(Receipt.id)).where(
        Receipt.booking_id == booking.id, Receipt.kind.in_(MONEY_KINDS))) or 0) > 0


def documents_of(session: Session, user: User, reference: str) -> list[Receipt]:
    """The documents issued for the booking so far (oldest first), for those who may
    download them."""
    return _issued(session, _find_booking(session, user, reference).id)


def issue(session: Session, user: User, reference: str) -> Receipt:
    """The booking's current document, issued now if it has not been: its receipt,
    invoice or usage certificate, or for a cancelled one its credit note. Idempotent."""
    booking = _find_booking(session, user, reference)
    wanted = _wanted(booking, _issued(session, booking.id))
    if wanted is None:
        raise DomainError("not_yours")
    for document in _issued(session, booking.id):
        if document.kind == wanted[0]:
            return document  # the same number every time
    booking_id, issuer_id = booking.id, booking.unit.space.organisation_id
    # Decided in a transaction of its own, under the issuer's counter lock.
    db.begin_write(session)
    last = _lock_counter(session, issuer_id)
    booking = session.scalars(sa.select(Booking).where(Booking.id == booking_id)
                              .execution_options(populate_existing=True)).one()
    issued = _issued(session, booking_id)
    wanted = _wanted(booking, issued)
    if wanted is None:
        raise DomainError("not_yours")
    kind, original = wanted
    for document in issued:
        if document.kind == kind:
            return document  # issued by a concurrent request while we waited
    sequence = session.scalar(
        sa.update(ReceiptCounter).where(ReceiptCounter.issuer_id == issuer_id)
        .values(last_number=ReceiptCounter.last_number + 1)
        .returning(ReceiptCounter.last_number))
    assert sequence == last + 1  # we hold the row lock
    number = f"{issuer_id:04d}-{sequence:06d}"
    receipt = Receipt(issuer_id=issuer_id, sequence=sequence, number=number, kind=kind,
                      booking_id=booking.id, recipient_id=booking.company_id,
                      credit_of_id=original.id if original else None, issued_at=clock.now(),
                      content=_content(booking, kind, number, original))
    session.add(receipt)
    session.flush()
    return receipt


def _lock_counter(session: Session, issuer_id: int) -> int:
    """The issuer's counter row, created at its first document, locked for this
    transaction; its last number."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(ReceiptCounter).values(issuer_id=issuer_id, last_number=0)
                        .on_conflict_do_nothing(index_elements=["issuer_id"]))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(ReceiptCounter).values(issuer_id=issuer_id, last_number=0)
                        .on_conflict_do_nothing(index_elements=["issuer_id"]))
    return int(session.scalar(
        sa.select(ReceiptCounter.last_number).where(ReceiptCounter.issuer_id == issuer_id)
        .with_for_update()) or 0)


def find(session: Session, user: User, receipt_id: int, reference: str) -> Receipt:
    """One document already issued for the booking, for those who may download the
    booking's documents; "not_yours" (404) otherwise."""
    booking = _find_booking(session, user, reference)
    receipt = session.get(Receipt, receipt_id)
    if receipt is None or receipt.booking_id != booking.id:
        raise DomainError("not_yours")
    return receipt


# ----------------------------------------------------------------------------- content

PER_JA = {PricePer.DAY: "日", PricePer.HOUR: "時間", PricePer.NIGHT: "泊"}


def _content(booking: Booking, kind: DocumentKind, number: str,
             original: Receipt | None) -> dict[str, Any]:
    """Everything the document says, frozen now (names, amounts and dates as they are
    today: a later rename or price change does not rewrite an issued document)."""
    if original is not None:
        return _credit_content(booking, number, original)
    space = booking.unit.space
    issuer = space.organisation
    breakdown = pricing.of_booking(booking)
    start, end = booking.starts_at.astimezone(TOKYO), booking.ends_at.astimezone(TOKYO)
    slot = booking.campaign_slot
    municipality = slot.campaign.organisation.name if slot is not None else ""
    amount = breakdown.company_pays
    return {
        "kind": kind.value,
        "number": number,
        "issued_on": clock.today().isoformat(),
        "issuer": {"name": issuer.name,
                   "registration_number": issuer.invoice_registration_number
                   if kind == DocumentKind.INVOICE else None,
                   "postal_code": issuer.postal_code, "address": issuer.address},
        "recipient": {"name": booking.company.name if booking.company else ""},
        "reference": booking.reference,
        "first_day": start.date().isoformat(),
        # The last day used: a stay's check-out day, otherwise the day of the last instant.
        "last_day": (end.date() if breakdown.price_per == PricePer.NIGHT
                     else (end - timedelta(microseconds=1)).date()).isoformat(),
        "times": f"{start:%H:%M}〜{end:%H:%M}" if breakdown.price_per == PricePer.HOUR else "",
        "description": f"{space.name} {booking.unit.name}",
        "quantity": f"{breakdown.length}{PER_JA[breakdown.price_per]} × {booking.seats}席",
        "campaign": slot.campaign.name if slot is not None else "",
        "base": breakdown.base, "discount": breakdown.discount,
        "subsidy": breakdown.subsidy, "municipality": municipality,
        "amount": amount, "tax_percent": breakdown.tax_percent,
        "tax": pricing.tax_included_in(amount, breakdown.tax_percent),
    }


def _credit_content(booking: Booking, number: str, original: Receipt) -> dict[str, Any]:
    """A credit note: the original's content, returned whole, dated at the cancellation."""
    before = dict(original.content)
    cancelled = (booking.cancelled_at or clock.now()).astimezone(TOKYO).date()
    return {**before, "kind": DocumentKind.CREDIT_NOTE.value, "number": number,
            "issued_on": clock.today().isoformat(), "returned_on": cancelled.isoformat(),
            "credit_of": {"number": original.number, "kind": original.kind.value,
                          "issued_on": before.get("issued_on", "")}}


# ------------------------------------------------------------------------------- PDF


def yen(amount: int) -> str:
    return f"¥{amount:,}"


def _day(iso: str, era: bool) -> str:
    day = date.fromisoformat(iso)
    return wareki(day, "ja") if era else f"{day.year}年{day.month}月{day.day}日"


@dataclass(frozen=True)
class Pdf:
    filename: str
    body: bytes


def render(receipt: Receipt, *, era: bool = False) -> Pdf:
    """The document as a PDF, drawn from its frozen content (the same every time)."""
    c = receipt.content
    kind = DocumentKind(c["kind"])
    title = TITLES[kind]
    if kind == DocumentKind.CREDIT_NOTE and c["credit_of"]["kind"] != DocumentKind.INVOICE:
        title = "返金明細書"  # the original was no qualified invoice: no 返還インボイス either
    doc = PdfDocument(f"{title} {c['number']}", author=c["issuer"]["name"])
    doc.title(title)
    doc.paragraph(f"No. {c['number']}  発行日 {_day(c['issued_on'], era)}", align="right")
    doc.space(6)
    if c["recipient"]["name"]:
        doc.paragraph(f"{c['recipient']['name']} 御中", size=13)
    doc.space(6)
    period = _day(c["first_day"], era)
    if c["last_day"] != c["first_day"]:
        period += f"〜{_day(c['last_day'], era)}"
    if c["times"]:
        period += f" {c['times']}"
    rows = [("発行者", c["issuer"]["name"])]
    if c["issuer"].get("address"):
        postal = f"〒{c['issuer']['postal_code']} " if c["issuer"].get("postal_code") else ""
        rows.append(("所在地", postal + c["issuer"]["address"]))
    number = c["issuer"].get("registration_number")
    rows.append(("登録番号", number or "なし（適格請求書発行事業者の登録番号はありません）"))
    if kind == DocumentKind.CREDIT_NOTE:
        credit = c["credit_of"]
        rows.append(("返還の対象", f"No. {credit['number']}（{TITLES[DocumentKind(credit['kind'])]}、"
                                   f"発行日 {_day(credit['issued_on'], era)}）"))
        rows.append(("返還の日", _day(c["returned_on"], era)))
    rows.append(("取引年月日", period))
    rows.append(("予約番号", c["reference"]))
    if c["campaign"]:
        rows.append(("キャンペーン", c["campaign"]))
    doc.pairs(rows)
    doc.space(8)
    amount, tax, rate = c["amount"], c["tax"], c["tax_percent"]
    if kind == DocumentKind.USAGE_CERTIFICATE:
        doc.paragraph("下記のとおり施設を利用されたことを証明します。")
        doc.table(["内容", "数量", "ご負担額"],
                  [[c["description"], c["quantity"], yen(amount)]],
                  widths=[0.55, 0.25, 0.2], aligns=["left", "left", "right"])
        doc.paragraph(f"ご負担額 {yen(amount)}（無料でのご利用です）")
    else:
        label = {DocumentKind.CREDIT_NOTE: "返還額（税込）",
                 DocumentKind.RECEIPT: "領収金額（税込）"}.get(kind, "ご請求額（税込）")
        doc.big_amount(label, yen(amount))
        doc.table(["内容", "数量", "税率", "金額（税込）"],
                  [[c["description"], c["quantity"], f"{rate}%", yen(amount)]],
                  widths=[0.5, 0.2, 0.1, 0.2], aligns=["left", "left", "right", "right"])
        doc.space(4)
        doc.pairs([(f"{rate}%対象", f"{yen(amount)}（うち消費税 {yen(tax)}）"),
                   ("税抜金額", yen(amount - tax))], label_width=130)
        if kind == DocumentKind.RECEIPT:
            doc.space(6)
            doc.paragraph("上記の金額を領収しました。")
            doc.paragraph("本書は適格請求書ではありません（発行者は適格請求書発行事業者として"
                          "登録されていません）。")
        if kind == DocumentKind.CREDIT_NOTE:
            doc.space(6)
            doc.paragraph("ご予約のキャンセルにより、上記の金額を返還します。")
    if c["discount"]:
        doc.paragraph(f"通常料金 {yen(c['base'])} からキャンペーン割引 {yen(c['discount'])}")
    if c["subsidy"]:
        doc.paragraph(f"自治体負担分 {yen(c['subsidy'])}（{c['municipality']}が負担。"
                      "本書の金額には含まれません）")
    return Pdf(f"{c['number']}.pdf", doc.to_bytes())
