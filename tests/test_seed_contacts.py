"""The demo spaces' contact (booking/seeds/demo.py contact_email): a made-up address under
example.jp and no phone number (an invented one could be somebody's); `flask seed` on a
demo database from before spaces had a contact fills in the empty ones, and keeps what an
operator entered."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from booking.extensions import db
from booking.models import Organisation, OrgKind, Space
from booking.seeds import demo
from booking.services import receipts

DAY = date(2019, 7, 1)  # the demo alone, without its history (tests/test_seed_history.py)


def _spaces() -> dict[str, Space]:
    db.session.expire_all()
    return {s.slug: s for s in db.session.scalars(sa.select(Space))}


def test_every_demo_space_has_a_made_up_address_and_no_phone(app):
    demo.load(db.session, today=DAY)
    db.session.commit()
    spaces = _spaces()
    assert set(spaces) == {spec["slug"] for spec in demo.SPACES}
    assert spaces["enishia-shizuoka"].contact_email == "info@enishia-shizuoka.example.jp"
    for space in spaces.values():
        assert space.contact_email.endswith(".example.jp"), space.contact_email
        assert space.contact_phone == ""


def test_seeding_an_older_demo_fills_the_empty_contacts_only(app):
    demo.load(db.session, today=DAY)
    db.session.commit()
    db.session.execute(sa.update(Space).values(contact_email=""))  # as before the contact
    db.session.execute(sa.update(Space).where(Space.slug == "koto-komagane")
                       .values(contact_email="desk@koto.example.jp", contact_phone="000-000-0000"))
    db.session.commit()
    created = demo.load(db.session, today=DAY)
    db.session.commit()
    assert sum(created.values()) == 0  # no row made twice
    spaces = _spaces()
    assert spaces["koto-komagane"].contact_email == "desk@koto.example.jp"  # the operator's
    assert spaces["koto-komagane"].contact_phone == "000-000-0000"
    assert spaces["enishia-shizuoka"].contact_email == "info@enishia-shizuoka.example.jp"
    assert all(s.contact_email for s in spaces.values())
    filled = {slug: (s.contact_email, s.contact_phone) for slug, s in spaces.items()}
    demo.load(db.session, today=DAY)  # a third time: nothing changes
    db.session.commit()
    assert {slug: (s.contact_email, s.contact_phone) for slug, s in _spaces().items()} == filled


def test_one_demo_operator_issues_qualified_invoices_the_others_plain_receipts(app):
    demo.load(db.session, today=DAY)
    db.session.commit()
    numbers = {o.name: o.invoice_registration_number
               for o in db.session.scalars(sa.select(Organisation)
                                           .where(Organisation.kind == OrgKind.OPERATOR))}
    assert numbers.pop("エニシア静岡") == "T7123456789012"
    assert receipts.valid_registration_number("T7123456789012")
    assert numbers and not any(numbers.values())
