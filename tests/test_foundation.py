"""The ground: which database we run on, migrations, model invariants, seeding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from booking.extensions import db
from booking.models import Booking, Organisation, OrgKind, Space, Unit, User
from tests.conftest import make_app


def test_runs_on_the_backend_it_was_asked_for(app, backend):
    # A silent fallback to SQLite would make the PostgreSQL half of CI meaningless.
    assert db.engine.dialect.name == backend
    if backend == "postgresql":
        assert db.session.scalar(sa.text("SELECT version()")).startswith("PostgreSQL")


def test_migrations_build_the_schema_the_models_describe(empty_database_url):
    app = make_app(empty_database_url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert diff == []


def test_seed_twice_creates_nothing_the_second_time(app, runner):
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    counts = {m: db.session.scalar(sa.select(sa.func.count()).select_from(m))
              for m in (Organisation, User, Space, Unit)}
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0, second.output
    assert "seed: 0 rows created" in second.output
    assert counts == {m: db.session.scalar(sa.select(sa.func.count()).select_from(m))
                      for m in (Organisation, User, Space, Unit)}
    assert counts[Space] == 7
    assert db.session.scalar(sa.select(Unit).where(Unit.name == "コワーキング席")).capacity == 85


@pytest.mark.parametrize(("field", "value"), [
    ("capacity", -1), ("price_amount", -100), ("min_length", 0),
])
def test_unit_check_constraints_hold_in_the_database(make, field, value):
    space = make.space()
    unit = make.unit(space)
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.update(Unit).where(Unit.id == unit.id).values(**{field: value})
                           .execution_options(synchronize_session=False))
        db.session.commit()
    db.session.rollback()


def test_booking_times_must_be_ordered_and_seats_positive(make):
    unit = make.unit()
    start = datetime(2027, 7, 24, 0, 0, tzinfo=UTC)
    with pytest.raises(sa.exc.IntegrityError):
        make.booking(unit, start, start - timedelta(hours=1))
    db.session.rollback()
    with pytest.raises(sa.exc.IntegrityError):
        make.booking(unit, start, start + timedelta(hours=1), seats=0)
    db.session.rollback()


def test_email_is_unique_whatever_the_letter_case(make):
    make.user("Someone@Example.jp")
    from booking.services.errors import DomainError

    with pytest.raises(DomainError) as taken:
        make.user("someone@EXAMPLE.JP")
    assert (taken.value.code, taken.value.field, taken.value.status) == ("email_taken", "email", 409)
    # And the database itself refuses a second lower-cased copy.
    db.session.add(User(email="someone@example.jp", name="x", password_hash="x",
                        session_token="t"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_datetimes_come_back_aware_in_utc(make):
    unit = make.unit()
    start = datetime(2027, 7, 24, 9, 0, tzinfo=UTC) + timedelta(hours=0)
    booking = make.booking(unit, start, start + timedelta(hours=9))
    db.session.expire_all()
    loaded = db.session.get(Booking, booking.id)
    assert loaded.starts_at == start
    assert loaded.starts_at.tzinfo is not None


def test_naive_datetimes_are_refused(make):
    unit = make.unit()
    with pytest.raises(sa.exc.StatementError):
        make.booking(unit, datetime(2027, 7, 24, 9), datetime(2027, 7, 24, 18))  # noqa: DTZ001 (naive on purpose)
    db.session.rollback()


def test_organisation_kind_is_checked_by_the_database(app):
    with pytest.raises(sa.exc.DBAPIError):
        db.session.execute(sa.text(
            "INSERT INTO organisations (kind, name, name_en, address, created_at) "
            "VALUES ('pirate', 'x', '', '', CURRENT_TIMESTAMP)"))
        db.session.commit()
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Organisation)) == 0
    assert OrgKind.COMPANY.value == "company"


_HOOKS = '''
from sqlalchemy.orm import Session
import booking.db, booking.extensions, booking.services.catalogue, booking.services.loads
import booking.services.search, booking.services.spaces

def hooks():
    names = ("before_flush", "after_flush", "after_flush_postexec", "after_transaction_end",
             "do_orm_execute", "before_commit")
    return sorted(f"{name}:{fn.__module__}.{fn.__name__}" for name in names
                  for fn in getattr(Session.dispatch, name)._clslevel.get(Session, ()))

before = hooks()
from booking import create_app
create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test"})
once = hooks()
create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test"})
booking.db.install()
booking.services.loads.install()
booking.services.catalogue.install()
booking.services.spaces.install()
modules = sorted({hook.split(":")[1].rsplit(".", 1)[0] for hook in once})
print(before, modules, once == hooks(), sep="\\n")
'''


def test_orm_hooks_are_installed_by_create_app_not_by_imports(tmp_path):
    """Importing the modules that keep derived data in step registers nothing; create_app
    installs their hooks, and installing them again adds none."""
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _HOOKS], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "BOOKING_INSTANCE_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    before, modules, unchanged = run.stdout.splitlines()[-3:]
    assert before == "[]"
    assert modules == ("['booking.db', 'booking.services.catalogue', 'booking.services.loads', "
                       "'booking.services.spaces']")
    assert unchanged == "True"
