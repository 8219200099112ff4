"""Command-line tasks: flask seed, flask create-admin (more are added by the services)."""

from __future__ import annotations

import click
from flask import Flask

from booking.extensions import db


@click.command("seed")
def seed_command() -> None:
    """Load the demo data of booking/seeds/ and its history (running it twice changes nothing)."""
    from booking import seeds
    from booking.seeds import demo, history

    created, made = seeds.seed(db.session)
    total = sum(created.values())
    click.echo(f"seed: {total} rows created " + ", ".join(f"{k}={v}" for k, v in created.items()))
    if made.get("bookings"):
        click.echo("history: " + ", ".join(f"{k}={v}" for k, v in made.items())
                   + " (made through the booking services; their mail is not sent)")
    else:
        click.echo("history: loaded already")
    if made.get("refused"):
        click.echo(f"history: {made['refused']} steps refused (see the log)", err=True)
    click.echo("Demo accounts (demo only, password for all: " + demo.DEMO_PASSWORD + "):")
    for email, _name, org in demo.USERS:
        click.echo(f"  {email:24} {org or 'site admin'}")
    for email, org in history.accounts_listed():
        click.echo(f"  {email:40} {org}")


@click.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", default="Site admin")
@click.password_option()
def create_admin_command(email: str, name: str, password: str) -> None:
    """Create a site admin who approves supporter organisations."""
    from booking.services import accounts, addresses
    from booking.services.errors import DomainError

    if len(password) < 10:
        raise click.BadParameter("at least 10 characters", param_hint="password")
    try:
        accounts.create_user(db.session, email=email, password=password, name=name,
                             is_admin=True)
    except addresses.AddressError as error:
        raise click.BadParameter(error.explanation, param_hint="email") from None
    except DomainError:  # email_taken (an AddressError is answered above)
        raise click.ClickException(f"{email} is already registered") from None
    db.session.commit()
    click.echo(f"admin {email} created")


@click.command("rebuild-loads")
def rebuild_loads_command() -> None:
    """After SQL that bypassed the application (an import, a restore): recount unit_loads
    from the bookings and make every process reload its search catalogue."""
    from booking.services import derived

    written = derived.rebuild(db.session.connection())
    db.session.commit()
    click.echo(f"unit loads: {written} rows")


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(create_admin_command)
    app.cli.add_command(rebuild_loads_command)
    from booking.services.mail import outbox_cli

    app.cli.add_command(outbox_cli)
    from booking.services.jobs import jobs_cli

    app.cli.add_command(jobs_cli)


def main() -> None:
    """`telework-booking …` (the wheel's console script): flask's command line with the
    application of booking/wsgi.py, so `telework-booking db upgrade`, `… seed`,
    `… outbox run` need no FLASK_APP."""
    from flask.cli import FlaskGroup

    from booking import create_app

    FlaskGroup(name="telework-booking", create_app=lambda: create_app(),
               help="Workspace booking: flask's commands (db, seed, outbox, jobs…).").main()
