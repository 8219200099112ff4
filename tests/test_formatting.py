"""booking.formatting: one way to write times of day, yen, distances and dates; the
rules that stand once on the models (a slot's price, a public space, an offered slot)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from booking import formatting
from booking.extensions import db
from booking.labels import booking_status_label
from booking.models import BookingStatus, CampaignSlot, OrgKind, Space
from booking.services.availability import at


@pytest.mark.parametrize(("text", "minutes"), [
    ("09:30", 570), ("9:30", 570), (" 18:00 ", 1080), ("00:00", 0), ("24:00", 1440),
    ("", None), ("  ", None), (None, None),
])
def test_parse_hhmm(text, minutes):
    assert formatting.parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["24:01", "25:00", "9", "9:5", "09:60", "ab:cd", "9時"])
def test_parse_hhmm_refuses_what_is_no_time_of_day(text):
    with pytest.raises(ValueError):
        formatting.parse_hhmm(text)


def test_times_of_day_are_zero_padded():
    assert formatting.hhmm(540) == "09:00"
    assert formatting.hhmm(0) == "00:00" and formatting.hhmm(1440) == "24:00"
    assert formatting.hhmm(formatting.parse_hhmm("7:05")) == "07:05"
    assert formatting.local_time(datetime(2019, 7, 24, 0, 5, tzinfo=UTC)) == "09:05"  # Tokyo
    assert formatting.local_stamp(datetime(2019, 7, 23, 15, 0, tzinfo=UTC)) == "2019-07-24 00:00"


def test_form_times_of_day():
    assert formatting.minutes_of(time(9, 30)) == 570
    assert formatting.time_of(570) == time(9, 30)
    assert formatting.time_of(1440) == time(0, 0)  # the end of the day, as a time field shows it


def test_yen_and_distance(app):
    with app.test_request_context():
        assert formatting.yen(1234567) == "¥1,234,567"
        assert formatting.yen(0) == "無料" and formatting.yen(None) == ""
        assert formatting.yen_amount(0) == "¥0"
        assert formatting.thousands(1234567) == "1,234,567" and formatting.thousands(468.6) == "468.6"
        assert formatting.distance(12.345) == "12.3 km" and formatting.distance(None) == ""
    with app.test_request_context(), force_locale("en"):
        assert formatting.yen(0) == "Free"


def test_dates_and_periods_in_both_languages(app):
    wednesday = date(2019, 7, 24)
    assert formatting.local_date(wednesday, "ja") == "2019年7月24日(水)"
    assert formatting.local_date(date(2019, 7, 1), "en") == "Mon 1 Jul 2019"
    # An instant is shown on its Tokyo date: 20:00 UTC is already the next day there.
    assert formatting.local_date(datetime(2019, 7, 23, 20, 0, tzinfo=UTC), "ja") == \
        "2019年7月24日(水)"
    one_day = (at(wednesday, 540), at(wednesday, 1080))
    assert formatting.local_period(*one_day, "ja") == "2019年7月24日(水) 09:00–18:00"
    assert formatting.local_period(*one_day, "en") == "Wed 24 Jul 2019 09:00–18:00"
    stay = (at(wednesday, 900), at(date(2019, 7, 26), 600))
    assert formatting.local_period(*stay, "ja") == \
        "2019年7月24日(水) 15:00 – 2019年7月26日(金) 10:00"
    with app.app_context(), force_locale("en"):
        assert formatting.local_period(*stay) == "Wed 24 Jul 2019 15:00 – Fri 26 Jul 2019 10:00"


def test_filters_are_the_formatting_functions(app):
    for name, function in formatting.FILTERS.items():
        assert app.jinja_env.filters[name] is function


def test_one_wording_of_booking_statuses(app):
    with app.test_request_context():
        assert [booking_status_label(s) for s in BookingStatus] == \
            ["確定", "チェックイン済み", "来場なし", "キャンセル済み",
             "空き待ちからのご案内(未確定)", "ご案内の期限切れ", "未チェックインのため解放"]
        assert booking_status_label("cancelled") == "キャンセル済み"
    with app.test_request_context(), force_locale("en"):
        assert booking_status_label(BookingStatus.NO_SHOW) == "No-show"


# ------------------------------------------------------------------------------- model rules


def test_a_slot_price_is_its_own_or_the_units(app, make):
    unit = make.unit(price_amount=1500)
    campaign = make.campaign()
    assert make.slot(campaign, unit, price_amount=0).price_for() == 0
    assert make.slot(campaign, unit, price_amount=500).price_for(unit) == 500
    keeps = make.slot(campaign, unit, price_amount=None)
    assert keeps.price_for() == 1500 and keeps.price_for(unit) == 1500


def test_space_is_public_in_python_and_in_sql(app, make):
    approved = make.organisation(OrgKind.OPERATOR)
    waiting = make.organisation(OrgKind.OPERATOR, approved=False)
    public = make.space(approved)
    hidden = make.space(approved, published=False)
    unapproved = make.space(waiting)
    assert [s.is_public for s in (public, hidden, unapproved)] == [True, False, False]
    ids = [public.id, hidden.id, unapproved.id]
    found = db.session.scalars(sa.select(Space.id).where(Space.id.in_(ids), Space.is_public))
    assert list(found) == [public.id]
    # Beside a join of organisations (here: an approved one), the rule still reads the
    # space's own organisation.
    from booking.models import Organisation

    joined = db.session.scalars(
        sa.select(Space.id).join(Organisation, Organisation.id == approved.id)
        .where(Space.id.in_(ids), Space.is_public))
    assert list(joined) == [public.id]


def test_slot_is_offered_in_python_and_in_sql(app, make):
    city = make.organisation(OrgKind.MUNICIPALITY)
    unapproved_city = make.organisation(OrgKind.MUNICIPALITY, approved=False)
    unit = make.unit()
    offered = make.slot(make.campaign(city), unit)
    no_consent = make.slot(make.campaign(city), unit, operator_consent=False)
    unpublished = make.slot(make.campaign(city, published=False), unit)
    not_approved = make.slot(make.campaign(unapproved_city), unit)
    slots = [offered, no_consent, unpublished, not_approved]
    assert [s.is_offered for s in slots] == [True, False, False, False]
    found = db.session.scalars(sa.select(CampaignSlot.id).where(
        CampaignSlot.id.in_([s.id for s in slots]), CampaignSlot.is_offered))
    assert list(found) == [offered.id]


def test_slot_covers_its_dates(app, make):
    slot = make.slot(make.campaign(), make.unit(), start_date=date(2027, 7, 23),
                     end_date=date(2027, 7, 26))
    assert slot.covers(date(2027, 7, 23), date(2027, 7, 26))
    assert not slot.covers(date(2027, 7, 22), date(2027, 7, 23))
    assert not slot.covers(date(2027, 7, 26), date(2027, 7, 27))
    inside = db.session.scalar(sa.select(sa.func.count()).select_from(CampaignSlot).where(
        CampaignSlot.id == slot.id, CampaignSlot.covers(date(2027, 7, 24), date(2027, 7, 25))))
    assert inside == 1


def test_every_mail_kind_has_a_label_on_the_outbox_page():
    """Each KIND_* of any service module (and the operator's kinds) is named in words on
    the site admin's outbox page, not shown as its code."""
    import importlib
    import pkgutil

    import booking.services
    from booking import labels
    from booking.services import mail

    kinds = set(mail.OPERATOR_KINDS.values()) | {
        "operator_series_confirmation", "operator_series_cancellation"}
    for info in pkgutil.iter_modules(booking.services.__path__):
        module = importlib.import_module(f"booking.services.{info.name}")
        kinds |= {value for name, value in vars(module).items()
                  if name.startswith("KIND_") and isinstance(value, str)}
    assert {"confirmation", "consent_request", "operator_update"} <= kinds
    assert kinds - set(labels.MAIL_KINDS) == set()
