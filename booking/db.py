"""Engine events that make booking transactions serialise on SQLite.

PostgreSQL serialises competing bookings of a unit with a row lock (`SELECT … FOR UPDATE`
in booking.services.reservations), and the campaign rules of one company with an advisory
lock taken before it (`campaign_company_lock`). SQLite has no row locks: the whole database is the
lock, and a transaction that reads first and writes later can be refused ("database is
locked") or read stale data. So a booking transaction on SQLite is begun with
`BEGIN IMMEDIATE`: it takes the write lock before its first read, and competing bookings
wait for it (up to the busy timeout) instead of failing.

How it works with Flask-SQLAlchemy, which creates the engines itself: the listeners are
registered on the Engine *class*, so they apply to every engine, and only act on SQLite.
They are registered by `install()`, which create_app calls: importing this module changes
nothing.

- `connect`: sets a busy timeout, so a waiting writer waits rather than fails at once.
- `checkout` (with `checkin`): a PostgreSQL connection idle for a while is pinged before
  use (PING_AFTER_IDLE_SECONDS), so that a request after a database restart gets a live one.
- `begin`: when the connection was procured with the execution option
  `sqlite_begin_immediate=True` (see `begin_write()`), emits `BEGIN IMMEDIATE` itself.
  pysqlite (in its default, legacy transaction mode) then sees a transaction in progress
  and adds no `BEGIN` of its own. Every other transaction is left exactly as before.
"""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Session,
    make_transient_to_detached,
    scoped_session,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import Pool

IMMEDIATE_OPTION = "sqlite_begin_immediate"
SQLITE_BUSY_TIMEOUT_MS = 20_000
# How long a booking waits for competing bookings of the same unit before "busy, try
# again". Each holds the lock for a few tens of milliseconds, but a rush of fifty on a
# loaded machine queues for seconds; 20 s stays under gunicorn's 30 s request timeout.
POSTGRES_LOCK_TIMEOUT = "20s"


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite" and conn.get_execution_options().get(IMMEDIATE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled PostgreSQL connection is pinged at checkout only when it has been idle longer
# than this (HikariCP's default "alive bypass window"): one given back moments ago is
# alive, and SQLAlchemy's pool_pre_ping, which pings every checkout, cost a round trip on
# every request (two on a booking; a tenth of a cached calendar answer).
PING_AFTER_IDLE_SECONDS = 0.5
_IDLE_SINCE = "idle_since"  # the connection record's info (cleared when it is replaced)


def _note_idle(_dbapi_connection, record) -> None:
    if record is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


def _has_word(connection: psycopg.Connection) -> bool:
    """Something to read on an idle connection, seen without a round trip: a server that
    stops or restarts (or pg_terminate_backend) sends each client an error and closes the
    socket. (Nothing else is sent to an idle connection of ours unasked, except perhaps
    TLS housekeeping: so it is a reason to ping, not a verdict.)"""
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    return bool(readable)


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    """A PostgreSQL connection idle past PING_AFTER_IDLE_SECONDS, or with word from the
    server since it was used (_has_word), is pinged (an empty statement outside a
    transaction, as SQLAlchemy's pool_pre_ping sends); a closed one, or one that does not
    answer, is replaced before anyone uses it (DisconnectionError: the pool drops it and
    connects anew). One lost unseen within the window (a network cut, no word from the
    server) fails its first statement: a 503 (web.DATABASE_DOWN), and SQLAlchemy then
    drops every connection of the pool older than that error. A new one is not pinged."""
    if not isinstance(dbapi_connection, psycopg.Connection):
        return
    if dbapi_connection.closed:
        raise sa.exc.DisconnectionError("connection closed")
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None or (time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS
                              and not _has_word(dbapi_connection)):
        return
    autocommit = dbapi_connection.autocommit
    try:
        dbapi_connection.autocommit = True
        dbapi_connection.execute(";")  # an empty statement, as SQLAlchemy pings
        dbapi_connection.autocommit = autocommit
    except psycopg.Error as error:
        raise sa.exc.DisconnectionError(str(error)) from error


WROTE = "wrote"  # session.info: this transaction has flushed changes


class PendingWork(RuntimeError):
    """A booking decision was asked for while the session held uncommitted changes."""


_AS_FLUSHED = "as_flushed"  # session.info: objects as_flushed made persistent in this transaction


def _forget_as_flushed(session: Session, _previous) -> None:
    """A rollback takes away the rows of objects as_flushed attached: unlike objects that
    were added new, the session would keep them as persistent (and a later id, which
    SQLite may hand out again, would meet them in the identity map)."""
    for obj in session.info.pop(_AS_FLUSHED, ()):
        if obj in session:
            session.expunge(obj)


def _committed_as_flushed(session: Session) -> None:
    session.info.pop(_AS_FLUSHED, None)


def _remember_writes(session: Session, _context) -> None:
    session.info[WROTE] = True


def _forget_writes(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended
        session.info.pop(WROTE, None)


LISTENERS = (
    (Engine, "connect", _sqlite_on_connect),
    (Engine, "begin", _sqlite_on_begin),
    (Pool, "checkin", _note_idle),
    (Pool, "checkout", _ping_if_idle),
    (Session, "after_flush", _remember_writes),
    (Session, "after_soft_rollback", _forget_as_flushed),
    (Session, "after_commit", _committed_as_flushed),
    (Session, "after_transaction_end", _forget_writes),
)


def install() -> None:
    """Register the engine and session listeners above (create_app calls it; a second
    call registers nothing twice)."""
    install_listeners(LISTENERS)


def install_listeners(listeners: tuple[tuple[type, str, Callable[..., Any]], ...]) -> None:
    """Register (target, event, function) listeners that are not registered yet: the one
    way the ORM hooks of booking.db and of the services are installed."""
    for target, name, function in listeners:
        if not sa.event.contains(target, name, function):
            sa.event.listen(target, name, function)


def campaign_company_lock(campaign_id: int, company_id: int) -> tuple[int, int]:
    """The key of the lock under which a campaign's rules are decided for one company
    (reservations.book and change take it before the unit lock, so that two requests of
    one company on different units of a campaign count one after the other).

    PostgreSQL: `pg_advisory_xact_lock(campaign_id, company_id)`, the two-integer form;
    nothing else in the application takes advisory locks of that form (another use would
    pick the one-bigint form, whose keys never meet these). Released with the transaction.
    """
    return int(campaign_id), int(company_id)


def company_lock(company_id: int) -> int:
    """The key of the lock under which a company's limits are counted (bookings and
    invitations per hour and day, services/limits.py): reservations.book takes it first,
    before the campaign lock and the unit lock, so that the company's requests on any
    units count one after the other.

    PostgreSQL: `pg_advisory_xact_lock(company_id)`, the one-bigint form, whose keys never
    meet the two-integer keys of campaign_company_lock. Released with the transaction.
    """
    return int(company_id)


def begin_write(session: Session, lock: tuple[int, int] | None = None,
                company: int | None = None) -> sa.Connection:
    """Start a transaction in which a booking is decided (the request's edge commits it or
    rolls it back: booking.unit_of_work).

    The decision must run in a transaction of its own that takes its lock before its first
    read: a transaction that has only read is ended (nothing is lost), and
    one that holds changes not yet committed is a programming error (PendingWork), never
    committed behind its caller's back. On SQLite that transaction is
    begun with BEGIN IMMEDIATE (one writer at a time: it is every lock at once); on
    PostgreSQL a lock timeout is set for it, and the unit rows are locked by the caller.

    `lock` (PostgreSQL): an advisory lock taken first, before any row lock, by the same
    statement that sets the lock timeout (so it costs no round trip): see
    campaign_company_lock. Waiting for it longer than the timeout is "busy" like a row lock.
    `company` (see company_lock): taken by that statement too, before `lock`.
    """
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's db.session
        session = session()
    if session.new or session.dirty or session.deleted or session.info.get(WROTE):
        raise PendingWork("begin_write() after changes in the same transaction: "
                          "a booking is decided in a transaction of its own")
    if session.in_transaction():
        # It only read (checked above): committed rather than rolled back, the same for
        # the data, because psycopg forgets its prepared statements at every ROLLBACK
        # (DEALLOCATE ALL, one more round trip, and every statement parsed anew).
        session.commit()
    conn = session.connection(execution_options={IMMEDIATE_OPTION: True})
    if conn.dialect.name == "postgresql":
        # Waiting longer than this for a competing booking answers "busy, try again".
        locks = []  # in this order (a select list is evaluated left to right)
        if company is not None:
            locks.append(f"pg_advisory_xact_lock({int(company)}::bigint)")
        if lock is not None:
            a, b = (int(key) for key in lock)
            locks.append(f"pg_advisory_xact_lock({a}, {b})")
        if not locks:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{POSTGRES_LOCK_TIMEOUT}'")
        else:
            # set_config(..., true) is SET LOCAL; the subquery (kept apart by OFFSET 0) is
            # evaluated before the lock is asked for, so the timeout already applies to it.
            conn.exec_driver_sql(
                f"SELECT {', '.join(locks)} FROM (SELECT set_config("
                f"'lock_timeout', '{POSTGRES_LOCK_TIMEOUT}', true) OFFSET 0) AS timeout")
    return conn


def read_outside_a_transaction(session: Session) -> None:
    """PostgreSQL, a request's session that has not begun and will only read (a search, a
    calendar feed): its statements run without a transaction, so no BEGIN and COMMIT
    round trips (the unit of work's commit then sends nothing). What must be read at once
    is read in one statement; other reads may come from moments milliseconds apart, as
    they would from the moment a booking is made. SQLite: nothing changes."""
    own = session() if isinstance(session, scoped_session) else session  # (the request's)
    if not own.in_transaction() and own.get_bind().dialect.name == "postgresql":
        own.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def one_of(column: InstrumentedAttribute[Any], values: list | str, item: type[sa.types.TypeEngine],
           as_array: bool) -> sa.ColumnElement[bool]:
    """`column` is one of `values`: a list, or the name of a bind parameter given when the
    statement runs. `as_array` (PostgreSQL only): `= ANY` of one array parameter, so that
    the statement is the same for any number of values, prepared and planned once per
    connection (an IN list is a new statement for each count, planned anew: the loads of
    211 units took 3.9 ms so, 2.8 this way). Else an IN list."""
    name, given = (values, None) if isinstance(values, str) else (None, values)
    if as_array:
        return column == sa.any_(sa.bindparam(name, given, type_=postgresql.ARRAY(item)))
    return column.in_(sa.bindparam(name, given, expanding=True))


def is_lock_timeout(error: BaseException) -> bool:
    """A lock wait that gave up (PostgreSQL lock_timeout, SQLite busy) or a deadlock."""
    if not isinstance(error, sa.exc.OperationalError | sa.exc.DBAPIError):
        return False
    orig = getattr(error, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in {"55P03", "40P01", "40001"}:  # lock_not_available, deadlock, serialization
        return True
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig).lower()


def early_ids(session: Session, model: type[Any], count: int) -> list[int]:
    """next_ids that may be taken before the write lock: PostgreSQL's; none on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    return next_ids(session, model, count)


def as_flushed(session: Session, obj: Any) -> dict:
    """A new object (its id set: next_ids) made persistent as if it had been flushed, and
    its row, for insert_together to insert in this transaction (before a flush needs it):
    no INSERT of its own, and none of the flush's work. Columns it was not given take
    their Python defaults (or None), on the object too; its collections start empty."""
    table = cast(sa.Table, type(obj).__table__)
    given = sa.inspect(obj).dict
    [filled] = _with_defaults(table, [{c.key: given[c.key] for c in table.c if c.key in given}])
    row = {column.key: filled.get(column.key) for column in table.c}
    for key, value in row.items():
        if key not in given:
            setattr(obj, key, value)
    make_transient_to_detached(obj)
    session.add(obj)
    session.info.setdefault(_AS_FLUSHED, []).append(obj)
    for relationship in sa.inspect(type(obj)).relationships:
        if relationship.uselist:
            set_committed_value(obj, relationship.key, [])
    return row


def next_ids(session: Session, model: type[Any], count: int) -> list[int]:
    """`count` new ids of the model's table, for rows inserted with them later in the
    transaction (insert_together). PostgreSQL: from its id column's sequence, which hands
    each value out once, inside a transaction or not (a rolled-back one leaves a gap).
    SQLite: after the largest in the table, as SQLite numbers rows itself: only under the
    write lock of the transaction that inserts them (BEGIN IMMEDIATE, begin_write)."""
    if count <= 0:
        return []
    table = cast(sa.Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(_next_ids_statement(table), {"count": count}))
    first = session.scalar(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0) + 1))
    return list(range(first, first + count))


@cache
def _next_ids_statement(table: sa.Table) -> sa.Select:
    return sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id"))).select_from(
        sa.func.generate_series(1, sa.bindparam("count", type_=sa.Integer)))


@dataclass(frozen=True)
class OnConflict:
    """An upsert: a row whose `keys` are taken already updates these columns instead."""
    keys: tuple[str, ...]
    update: tuple[str, ...]


Batch = tuple[type[Any], list[dict]] | tuple[type[Any], list[dict], OnConflict]


def insert_together(session: Session, batches: list[Batch]) -> None:
    """Insert rows of several models' tables (`batches`: (mapped class, rows), with an
    OnConflict third for an upsert) in one round trip where the database allows it
    (PostgreSQL: every INSERT but the last runs as a data-modifying WITH clause of the
    last); SQLite, which has none, takes one statement per table. A table's rows take
    their ids in the order given. A booking sends its unit loads, audit entry, mails and
    idempotency record this way: each round trip under the unit's lock is one the next
    booking waits."""
    tables = [(table := cast(sa.Table, batch[0].__table__), _with_defaults(table, batch[1]),
               batch[2] if len(batch) > 2 else None)  # type: ignore[misc]
              for batch in batches if batch[1]]
    if not tables:
        return
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        for table, rows, conflict in tables:
            session.execute(insert_statement(dialect, table, conflict), rows)
        return
    shape = tuple((table, len(rows), tuple(sorted(rows[0])), conflict)
                  for table, rows, conflict in tables)
    session.execute(_together(shape), {f"{table.name}_{i}_{key}": value
                                       for table, rows, _conflict in tables
                                       for i, row in enumerate(rows)
                                       for key, value in row.items()})


@cache
def insert_statement(dialect: str, table: sa.Table, conflict: OnConflict | None = None
                     ) -> sa.Insert:
    """An INSERT into `table` (many rows: executemany), an upsert with `conflict`; built
    once (under a booking's lock, building an upsert cost a tenth of a millisecond)."""
    if conflict is None:
        return sa.insert(table)
    return _upserting((postgresql.insert if dialect == "postgresql"
                       else sqlite_dialect.insert)(table), conflict)


def _upserting(insert: Any, conflict: OnConflict) -> sa.Insert:
    """`insert` (PostgreSQL's or SQLite's INSERT) as the upsert `conflict` says."""
    return insert.on_conflict_do_update(index_elements=list(conflict.keys),
                                        set_={c: insert.excluded[c] for c in conflict.update})


@cache
def _together(shape: tuple[tuple[sa.Table, int, tuple[str, ...], OnConflict | None], ...]
              ) -> sa.Insert:
    """insert_together's statement for so many rows of each table with these columns, built
    once. Each INSERT takes its rows from a SELECT of parameters per row (UNION ALL): an
    INSERT … VALUES of several rows is compiled anew at every execution by SQLAlchemy,
    which does not cache it, and that cost half a millisecond under the lock."""
    inserts = []
    for table, count, keys, conflict in shape:
        rows = [sa.select(*(sa.bindparam(f"{table.name}_{i}_{key}", type_=table.c[key].type)
                            for key in keys)) for i in range(count)]
        insert = postgresql.insert(table).from_select(
            list(keys), rows[0] if count == 1 else sa.union_all(*rows), include_defaults=False)
        inserts.append(insert if conflict is None else _upserting(insert, conflict))
    *before, last = inserts
    return last.add_cte(*(s.cte(f"insert_{i}") for i, s in enumerate(before)))


def _with_defaults(table: sa.Table, rows: list[dict]) -> list[dict]:
    """The rows with their columns' Python-side defaults filled in (as an INSERT would):
    two tables' INSERTs in one statement would otherwise both name a default's parameter
    after its column (created_at), which SQLAlchemy refuses to compile."""
    defaults = [(column.key, column.default) for column in table.c
                if column.default is not None and not column.default.is_sequence]
    return [{**{key: default.arg(None) if default.is_callable else default.arg
                for key, default in defaults if key not in row}, **row} for row in rows]
