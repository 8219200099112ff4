"""booking.db.insert_together: the rows of several tables in one statement on PostgreSQL
(one per table on SQLite), ids in the order given, defaults as an INSERT fills them, and
all or nothing when one table refuses its row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from booking.db import as_flushed, insert_together, next_ids
from booking.extensions import db
from booking.models import AuditEntry, IdempotencyRecord, OutboxMessage


def _batches(user_id: int, key: str, mails: int = 3) -> list[tuple[type, list[dict]]]:
    audit = [{"user_id": user_id, "organisation_id": None, "action": f"test.{n}",
              "target": f"Booking:{n}", "detail": {"n": n, "名前": "予約"}} for n in range(2)]
    outbox = [{"kind": "confirmation", "recipient": f"to-{n}@example.jp", "subject": "",
               "message": b"", "booking_id": None, "facts": {"n": n}} for n in range(mails)]
    records = [{"user_id": user_id, "key": key, "request_hash": "h" * 64, "status_code": 201,
                "response": {"bookings": [{"reference": "ABC"}]}}]
    return [(AuditEntry, audit), (OutboxMessage, outbox), (IdempotencyRecord, records)]


def test_rows_of_three_tables_in_one_statement_in_their_order(make, count_queries, backend):
    user = make.user()
    db.session.commit()
    batches = _batches(user.id, "key-1")
    with count_queries() as statements:
        insert_together(db.session, batches)
    db.session.commit()
    assert len(statements) == (1 if backend == "postgresql" else 3), statements

    audit = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(a.action, a.detail) for a in audit] == [
        ("test.0", {"n": 0, "名前": "予約"}), ("test.1", {"n": 1, "名前": "予約"})]
    assert all(a.at is not None for a in audit)  # the column's default, filled in
    mails = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.recipient for m in mails] == [f"to-{n}@example.jp" for n in range(3)]
    assert [m.facts for m in mails] == [{"n": n} for n in range(3)]
    assert all(m.attempts == 0 and m.sent_at is None and m.created_at is not None
               for m in mails)
    [record] = db.session.scalars(sa.select(IdempotencyRecord)).all()
    assert (record.key, record.status_code, record.response) == (
        "key-1", 201, {"bookings": [{"reference": "ABC"}]})


def test_a_refused_row_leaves_none_of_the_others(make, backend):
    user = make.user()
    db.session.commit()
    insert_together(db.session, _batches(user.id, "key-1"))
    db.session.commit()
    counts = [db.session.scalar(sa.select(sa.func.count()).select_from(model))
              for model, _rows in _batches(user.id, "x")]

    # The same idempotency key again: its unique index refuses the last table's row.
    with pytest.raises(sa.exc.IntegrityError):
        insert_together(db.session, _batches(user.id, "key-1", mails=2))
    db.session.rollback()
    assert [db.session.scalar(sa.select(sa.func.count()).select_from(model))
            for model, _rows in _batches(user.id, "x")] == counts


def test_shapes_differ_and_empty_tables_are_left_out(make, count_queries, backend):
    user = make.user()
    db.session.commit()
    for mails in (1, 4, 2):
        insert_together(db.session, [(AuditEntry, []),
                                     *_batches(user.id, f"key-{mails}", mails)[1:]])
    with count_queries() as statements:
        insert_together(db.session, [(AuditEntry, []), (OutboxMessage, [])])
    db.session.commit()
    assert statements == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0
    assert [m.facts["n"] for m in db.session.scalars(
        sa.select(OutboxMessage).order_by(OutboxMessage.id))] == [0, 0, 1, 2, 3, 0, 1]


def test_an_object_as_flushed_is_stored_by_insert_together_and_gone_after_a_rollback(
        make, count_queries, backend):
    """as_flushed: the object is persistent at once (its ids from next_ids, its defaults
    filled in, nothing read on access), its row goes in with insert_together; a rollback
    takes it out of the session with its row, and the ids handed out are not met again."""
    user = make.user()
    db.session.commit()
    [first_id] = next_ids(db.session, AuditEntry, 1)
    entry = AuditEntry(id=first_id, user_id=user.id, action="test.as_flushed", target="T:1")
    with count_queries() as statements:
        row = as_flushed(db.session, entry)
        assert entry in db.session and entry.at is not None and entry.detail == {}
    assert statements == []
    assert row["id"] == first_id and row["at"] == entry.at
    insert_together(db.session, [(AuditEntry, [row])])
    db.session.commit()
    assert db.session.scalar(sa.select(AuditEntry.action).where(
        AuditEntry.id == first_id)) == "test.as_flushed"

    [second_id] = next_ids(db.session, AuditEntry, 1)
    refused = AuditEntry(id=second_id, user_id=user.id, action="test.refused", target="T:2")
    insert_together(db.session, [(AuditEntry, [as_flushed(db.session, refused)])])
    db.session.rollback()
    assert refused not in db.session
    assert db.session.get(AuditEntry, second_id) is None
    [third_id] = next_ids(db.session, AuditEntry, 1)  # SQLite may give the same id again
    again = AuditEntry(id=third_id, user_id=user.id, action="test.again", target="T:3")
    insert_together(db.session, [(AuditEntry, [as_flushed(db.session, again)])])
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 2
