"""The morning digest (issue 19): from 07:00 Tokyo each operator member who switched it on
(and verified their address) gets one mail of the day's arrivals at their spaces, with
the company's note as plain text; once a day even with two workers; nothing without
arrivals; in the person's language. Through the real SMTP path (tests/mailbox.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking.extensions import db
from booking.models import JobRun, OrgKind, OutboxMessage, PricePer, UnitKind
from booking.services import digest, jobs, mail
from booking.services.availability import at
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day, wait_for_connections

NOTE = "車椅子で伺います。\n詳細は https://evil.example/x をご覧ください"


@pytest.fixture
def app_config(smtp_port, backend):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 6, "max_overflow": 2}
            if backend == "postgresql" else {}}


def clock_at(day, minutes: int):
    return time_machine.travel(at(day, minutes), tick=False)


@pytest.fixture
def w(make):
    """The small world with a meeting room; the owner (Japanese) and an English staff
    member want the digest, a third does not, a fourth has not verified their address;
    another operator's space has a booking too. Bookings on `day`, made the day before."""
    out = worlds.world(make, owner=True, capacity=10)
    org = out["org"]
    out["room"] = make.unit(out["space"], name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                            fits_people=6, price_amount=1500, price_per=PricePer.HOUR,
                            max_length=8)
    out["staff_en"] = make.user("staff-en@example.jp", organisation=org, role="staff",
                                name="Staff Smith", locale="en")
    out["quiet"] = make.user("quiet@example.jp", organisation=org, role="staff")
    out["unverified"] = make.user("unverified@example.jp", organisation=org, role="staff",
                                  verified=False)
    for key in ("owner", "staff_en", "unverified"):
        out[key].notify_digest = True
    other = make.organisation(OrgKind.OPERATOR, name="よその運営")
    out["other_owner"] = make.user("other-op@example.jp", organisation=other, name="他 次郎")
    out["other_owner"].notify_digest = True
    out["other_space"] = make.space(other, name="よそのスペース")
    out["other_desks"] = make.unit(out["other_space"], capacity=5)
    out["day"] = day = future_day(3)
    db.session.commit()
    with clock_at(day - timedelta(days=1), 12 * 60):
        desks = out["desks"]
        [out["desk_booking"]] = r.book(db.session, desks, out["booker"],
                                       [r.day_period(desks, day)], 2, note=NOTE)
        [out["room_booking"]] = r.book(db.session, out["room"], out["booker"],
                                       [r.hours_period(day, 13 * 60, 15 * 60)], 1)
        r.book(db.session, out["other_desks"], out["booker"],
               [r.day_period(out["other_desks"], day)], 1)
        r.book(db.session, desks, out["booker"],  # tomorrow's: not in today's digest
               [r.day_period(desks, day + timedelta(days=1))], 1)
    db.session.execute(sa.delete(OutboxMessage))  # the booking mails: not the point here
    db.session.commit()
    return out


def _digests() -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage).where(
        OutboxMessage.kind == "digest").order_by(OutboxMessage.recipient)))


def _text(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def test_from_seven_once_a_day_to_those_who_want_it(w, smtp_server):
    day = w["day"]
    with clock_at(day, 6 * 60 + 59):
        assert jobs.run_due(db.session, only="digest")["digest"] == ("ok", 0)
        assert _digests() == []
    with clock_at(day, 7 * 60):
        assert jobs.run_due(db.session, only="digest")["digest"] == ("ok", 3)
        assert [m.recipient for m in _digests()] == sorted(
            ["other-op@example.jp", w["owner"].email, "staff-en@example.jp"])
    with clock_at(day, 9 * 60):  # later the same morning: not again
        assert jobs.run_due(db.session, only="digest")["digest"] == ("ok", 0)
        assert len(_digests()) == 3
        assert mail.run_once(db.session)["sent"] == 3
    got = {str(m["To"]): m for m in smtp_server.parsed()}
    assert set(got) == {w["owner"].email, "staff-en@example.jp", "other-op@example.jp"}

    ja = got[w["owner"].email]
    assert ja["Subject"].startswith("【本日の来場予定】") and "2件" in ja["Subject"]
    body = _text(ja)
    assert "運営 太郎 様" in body and "テレワーク静岡" in body
    assert "09:00–18:00 フリーデスク / デモ商事 / 2席" in body
    assert "13:00–15:00 会議室 / デモ商事 / 1席" in body
    assert w["desk_booking"].reference in body
    # The note as plain text, its link replaced; the other operator's space is not there.
    assert "施設へのメモ: 車椅子で伺います。" in body and "[リンク省略]" in body
    assert "evil.example" not in body and "よそのスペース" not in body
    assert f"/operator/spaces/{w['space'].id}/day?day={day.isoformat()}" in body
    html = ja.get_body(("html",)).get_content()
    assert "車椅子で伺います。<br>" in html and "evil.example" not in html

    en = got["staff-en@example.jp"]
    assert en["Subject"].startswith("[Today's arrivals]") and "2 bookings" in en["Subject"]
    english = _text(en)
    assert "Dear Staff Smith," in english and "2 arrivals are expected" in english
    assert "Note to the space" in english and "施設へのメモ" not in english

    other = _text(got["other-op@example.jp"])
    assert "よそのスペース" in other and "テレワーク静岡" not in other
    assert db.session.scalar(sa.select(sa.func.count(JobRun.id))) == 1


def test_nothing_without_arrivals_or_outside_the_morning(w, smtp_server):
    day = w["day"] + timedelta(days=2)  # no bookings that day
    with clock_at(day, 7 * 60 + 30):
        assert digest.run(db.session) == 0
    assert _digests() == []
    # Claimed all the same: the day is done.
    assert db.session.scalars(sa.select(JobRun.key)).all() == [day.isoformat()]
    with clock_at(w["day"], 12 * 60):  # past noon: too late for "today's arrivals"
        assert digest.run(db.session) == 0
    assert _digests() == []


def test_switched_off_nobody_gets_it(w):
    for key in ("owner", "staff_en", "unverified", "other_owner"):
        w[key].notify_digest = False
    db.session.commit()
    with clock_at(w["day"], 7 * 60 + 5):
        assert digest.run(db.session) == 0
    assert _digests() == []


def test_two_workers_send_one_digest_each(w, app, backend, smtp_server):
    """Two workers run the digest at 07:00 at once (threads, own sessions): one mail per
    person, one claim of the day; the database checked afterwards."""
    wait_for_connections(4)
    moment = at(w["day"], 7 * 60)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def worker() -> None:
        with time_machine.travel(moment, tick=False), app.app_context():
            try:
                barrier.wait(timeout=30)
                for _round in range(3):
                    results.append(jobs.run_due(db.session, only="digest")["digest"])
            except Exception as error:  # a failure of the test
                results.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 6 and all(res[0] == "ok" for res in results), results
    assert sum(res[1] for res in results) == 3
    db.session.expire_all()
    assert [m.recipient for m in _digests()] == sorted(
        ["other-op@example.jp", w["owner"].email, "staff-en@example.jp"])
    assert db.session.scalars(sa.select(JobRun.key).where(JobRun.name == "digest")).all() == [
        w["day"].isoformat()]
    with time_machine.travel(moment, tick=False):
        assert mail.run_once(db.session)["sent"] == 3
    assert smtp_server.recipients() == sorted(
        ["other-op@example.jp", w["owner"].email, "staff-en@example.jp"])
