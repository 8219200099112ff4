"""Walks EVERY route of the application (from app.url_map, so a new route is covered
the day it lands) as four visitors, and checks the status each gets against a table:

    anonymous · a company user (who made the booking in the world) · an operator of
    ANOTHER organisation · a municipality of ANOTHER organisation

Everything the URLs point at (space, unit, booking, campaign, ...) belongs to
organisations none of the visitors is a member of (tests/security_world.py). A route
that is not in EXPECTED fails the test: whoever adds a route decides who may use it.

Statuses: 200, 201, 204, 302 (a redirect that is not the log-in page), 400, 401, 403,
404, 405, 409, 422, 429; LOGIN = a redirect to the log-in page. A tuple of four gives the
status per visitor in the order above. POSTs are sent with an empty form (CSRF off
here; tests/test_security.py checks CSRF on every POST route).

Every HTML page a visitor gets is also checked for what the Content-Security-Policy
(script-src 'self'; style-src 'self') would block: inline <script>, style="" attributes,
on*="" handlers, javascript: URLs. Every /api/ answer is JSON, errors problem+json.
And every HTML page of both walks (200s, error pages, forms re-shown with their errors),
in Japanese and in English, must be valid HTML: the Nu HTML Checker (vnu) checks them, all
of a walk's pages in one run (tests/html_validity.py), and any error fails the walk.

To print the statuses the app gives today (to review, never to copy blindly):
    ROUTE_WALK_PRINT=/tmp/walk.txt .venv/bin/pytest tests/test_route_walk.py -k sqlite
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.html_validity import PageSet, assert_valid
from tests.security_world import ROLES, as_role, build_world

LOGIN = "login"

# Shorthands for common rows.
PUBLIC = (200, 200, 200, 200)
MEMBERS_ONLY = (LOGIN, 200, 200, 200)  # any logged-in user; their own data
# What belongs to another supporter organisation: companies are refused the console (403);
# supporters are in, but somebody else's space/unit/booking does not exist for them (404).
OTHERS_SPACE = (LOGIN, 403, 404, 404)
# Another municipality's campaign: only municipalities enter (403), theirs only (404).
OTHERS_MUNICIPALITY = (LOGIN, 403, 403, 404)

EXPECTED: dict[str, tuple] = {
    # ------------------------------------------------------------------ public
    "GET public.home": PUBLIC,
    "GET public.space": PUBLIC,
    "GET public.photo": (404, 404, 404, 404),  # the world's photo row has no file on disk
    "GET public.healthz": PUBLIC,
    "GET public.readyz": PUBLIC,
    "GET public.robots": PUBLIC,
    "GET public.favicon": PUBLIC,
    "POST public.language": (302, 302, 302, 302),
    "GET static": PUBLIC,
    # ------------------------------------------------------------------ search
    "GET search.search": PUBLIC,
    "GET search.leaflet": PUBLIC,
    "GET api.search_spaces": PUBLIC,
    "GET api.space_detail": PUBLIC,
    "GET api.unit_availability": PUBLIC,
    # ------------------------------------------------------------------ account
    "GET account.login": PUBLIC,
    "POST account.login": (422, 422, 422, 422),
    "GET account.signup": PUBLIC,
    "POST account.signup": (422, 422, 422, 422),
    "GET account.signup_supporter": PUBLIC,
    "POST account.signup_supporter": (422, 422, 422, 422),
    "POST account.logout": (LOGIN, 302, 302, 302),
    "POST account.logout_everywhere": (LOGIN, 302, 302, 302),
    "GET account.index": MEMBERS_ONLY,
    "GET account.password": MEMBERS_ONLY,
    "POST account.password": (LOGIN, 422, 422, 422),
    "GET account.api_tokens": MEMBERS_ONLY,
    "GET account.notifications": MEMBERS_ONLY,
    "POST account.notifications": (LOGIN, 302, 302, 302),  # nothing ticked: all off, saved
    "POST account.revoke_api_token": (LOGIN, 302, 404, 404),  # the company user's token
    "GET account.data": MEMBERS_ONLY,
    "GET account.data_json": MEMBERS_ONLY,
    # The company user's link: for another account it verifies nothing (403).
    "GET account.verify_email": (LOGIN, 200, 403, 403),
    "POST account.resend_verification": (LOGIN, 302, 302, 302),
    "POST account.delete": (LOGIN, 422, 422, 422),  # needs the password
    "GET account.audit": (LOGIN, 404, 404, 404),  # its owners only: for others it does not exist
    # ------------------------------------------------------------------ site admin
    "GET admin.organisations": (LOGIN, 403, 403, 403),
    "GET admin.audit": (LOGIN, 403, 403, 403),
    "POST admin.approve": (LOGIN, 403, 403, 403),
    "POST admin.revoke": (LOGIN, 403, 403, 403),
    "GET admin.outbox": (LOGIN, 403, 403, 403),
    "POST admin.outbox_retry": (LOGIN, 403, 403, 403),
    "GET admin.nationals": (LOGIN, 403, 403, 403),
    "GET admin.new_national": (LOGIN, 403, 403, 403),
    "POST admin.new_national": (LOGIN, 403, 403, 403),
    "GET admin.edit_national": (LOGIN, 403, 403, 403),
    "POST admin.edit_national": (LOGIN, 403, 403, 403),
    "GET admin.national_report": (LOGIN, 403, 403, 403),
    "GET admin.national_report_csv": (LOGIN, 403, 403, 403),
    # ------------------------------------------------------------------ API (no token sent)
    "GET api.openapi": PUBLIC,
    "GET api.problem_types": PUBLIC,  # what a problem's type URI names
    "GET api.problem_type_of": PUBLIC,
    "POST api.create_account": (422, 422, 422, 422),
    "POST api.create_token": (422, 422, 422, 422),
    "DELETE api.revoke_token": (401, 401, 401, 401),
    "GET api.list_bookings": (401, 401, 401, 401),  # bearer token only, never the cookie
    "POST api.create_booking": (401, 401, 401, 401),
    "GET api.get_booking": (401, 401, 401, 401),
    "PATCH api.change_booking": (401, 401, 401, 401),
    "DELETE api.cancel_booking": (401, 401, 401, 401),
    **{f"{method} api.{name}": (401, 401, 401, 401) for method, name in (
        ("GET", "list_entries"), ("POST", "join_waitlist"), ("GET", "get_entry"),
        ("DELETE", "leave_waitlist"), ("POST", "confirm_offer"), ("DELETE", "decline_offer"),
        ("POST", "preview_series"), ("POST", "create_series"), ("GET", "get_series"),
        ("DELETE", "cancel_series"), ("DELETE", "cancel_series_booking"),
        ("GET", "get_verification"), ("POST", "verify_email"),
        ("POST", "send_verification_mail"))},
    # ------------------------------------------------------------------ bookings (company)
    "GET bookings.mine": MEMBERS_ONLY,  # each sees their own (none for the others)
    "GET bookings.new": (LOGIN, 404, 404, 404),  # no unit chosen
    "POST bookings.new": (LOGIN, 404, 404, 404),
    "GET bookings.show": (LOGIN, 200, 404, 404),  # somebody else's booking does not exist
    "GET bookings.ics": (LOGIN, 200, 404, 404),
    "GET bookings.cancel": (LOGIN, 200, 404, 404),
    "POST bookings.cancel": (LOGIN, 302, 404, 404),
    "GET bookings.change": (LOGIN, 200, 404, 404),
    "POST bookings.change": (LOGIN, 422, 404, 404),
    "POST bookings.feed_secret": (LOGIN, 302, 302, 302),  # renews the user's own feed
    "GET bookings.feed": PUBLIC,  # the secret in the URL is the credential
    # ------------------------------------------------------------------ weekly series
    "GET series.new": (LOGIN, 404, 404, 404),  # no unit chosen
    "POST series.new": (LOGIN, 404, 404, 404),
    "GET series.show": (LOGIN, 200, 404, 404),  # the company's series; nobody else's
    "GET series.ics": (LOGIN, 200, 404, 404),
    "GET series.cancel_all": (LOGIN, 200, 404, 404),
    "POST series.cancel_all": (LOGIN, 302, 404, 404),
    "POST series.cancel_one": (LOGIN, 302, 404, 404),  # refused or done: back to the series
    # ------------------------------------------------------------------ waitlist
    "GET waitlist.index": MEMBERS_ONLY,  # each sees their companies' entries
    "POST waitlist.join": (LOGIN, 404, 404, 404),  # no unit chosen
    # The company's entry (waiting: nothing offered to confirm or decline); nobody else's.
    "GET waitlist.show": (LOGIN, 200, 404, 404),
    "POST waitlist.confirm": (LOGIN, 409, 404, 404),
    "POST waitlist.decline": (LOGIN, 409, 404, 404),
    "POST waitlist.leave": (LOGIN, 302, 404, 404),
    # ------------------------------------------------------------------ campaigns (public + consent)
    # ------------------------------------------------------------------ open data
    # Anyone may fetch them; the code is the world's space's prefecture (静岡県 220001).
    "GET opendata.index": PUBLIC,
    "GET opendata.columns": PUBLIC,
    "GET opendata.facilities_csv": PUBLIC,
    "GET opendata.facilities_json": PUBLIC,
    "GET opendata.municipality_csv": PUBLIC,
    "GET opendata.municipality_json": PUBLIC,
    "GET campaigns.index": PUBLIC,
    "GET campaigns.show": PUBLIC,
    "GET campaigns.national": PUBLIC,  # the world's national campaign (security_world)
    "GET campaigns.consents": (LOGIN, 403, 200, 403),  # operators: their own slots
    "POST campaigns.consent": (LOGIN, 403, 404, 403),  # a slot on another operator's unit
    "GET campaigns.participation": (LOGIN, 200, 403, 403),  # companies only
    "POST campaigns.participation": (LOGIN, 422, 403, 403),
    # ------------------------------------------------------------------ municipality console
    "GET municipality.index": (LOGIN, 403, 403, 200),
    "GET municipality.new_campaign": (LOGIN, 403, 403, 200),
    "POST municipality.new_campaign": (LOGIN, 403, 403, 422),
    "GET municipality.factors": (LOGIN, 403, 403, 200),
    "POST municipality.factors": (LOGIN, 403, 403, 422),
    "GET municipality.campaign": OTHERS_MUNICIPALITY,
    "GET municipality.edit_campaign": OTHERS_MUNICIPALITY,
    "POST municipality.edit_campaign": OTHERS_MUNICIPALITY,
    "POST municipality.publish": OTHERS_MUNICIPALITY,
    "GET municipality.report": OTHERS_MUNICIPALITY,
    "GET municipality.report_csv": OTHERS_MUNICIPALITY,
    "GET municipality.report_xlsx": OTHERS_MUNICIPALITY,
    "GET municipality.report_zip": OTHERS_MUNICIPALITY,
    "GET municipality.report_print": OTHERS_MUNICIPALITY,
    "GET municipality.new_slot": OTHERS_MUNICIPALITY,
    "POST municipality.new_slot": OTHERS_MUNICIPALITY,
    "GET municipality.edit_slot": OTHERS_MUNICIPALITY,
    "POST municipality.edit_slot": OTHERS_MUNICIPALITY,
    "POST municipality.delete_slot": OTHERS_MUNICIPALITY,
    "GET municipality.new_extra": OTHERS_MUNICIPALITY,
    "POST municipality.new_extra": OTHERS_MUNICIPALITY,
    "GET municipality.edit_extra": OTHERS_MUNICIPALITY,
    "POST municipality.edit_extra": OTHERS_MUNICIPALITY,
    "POST municipality.delete_extra": OTHERS_MUNICIPALITY,
    # ------------------------------------------------------------------ operator console
    # Municipalities may own spaces too, so they enter the console (and see only theirs).
    "GET operator.index": (LOGIN, 403, 200, 200),
    "GET operator.space_new": OTHERS_SPACE,
    "POST operator.space_new": OTHERS_SPACE,
    "GET operator.space": OTHERS_SPACE,
    "GET operator.space_edit": OTHERS_SPACE,
    "POST operator.space_edit": OTHERS_SPACE,
    "POST operator.space_publish": OTHERS_SPACE,
    "POST operator.space_delete": OTHERS_SPACE,
    "GET operator.hours": OTHERS_SPACE,
    "POST operator.hours": OTHERS_SPACE,
    "GET operator.photos": OTHERS_SPACE,
    "POST operator.photos": OTHERS_SPACE,
    "POST operator.photo_delete": OTHERS_SPACE,
    "GET operator.unit_new": OTHERS_SPACE,
    "POST operator.unit_new": OTHERS_SPACE,
    "GET operator.unit_edit": OTHERS_SPACE,
    "POST operator.unit_edit": OTHERS_SPACE,
    "POST operator.unit_delete": OTHERS_SPACE,
    "GET operator.month": OTHERS_SPACE,
    "GET operator.availability": OTHERS_SPACE,
    "POST operator.closure_add": OTHERS_SPACE,
    "POST operator.closure_delete": OTHERS_SPACE,
    "POST operator.override_add": OTHERS_SPACE,
    "POST operator.override_delete": OTHERS_SPACE,
    "GET operator.day": OTHERS_SPACE,
    "GET operator.export": OTHERS_SPACE,
    "POST operator.calendar_new": OTHERS_SPACE,
    "POST operator.calendar_revoke": OTHERS_SPACE,
    "GET operator.cancel": OTHERS_SPACE,
    "POST operator.cancel": OTHERS_SPACE,
    "POST operator.check_in": OTHERS_SPACE,
    "POST operator.no_show": OTHERS_SPACE,
    # ------------------------------------------------------------------ people (members, invitations)
    # org_id is the operator's: its people exist for its members only.
    "GET people.people": (LOGIN, 404, 404, 404),
    "POST people.invite": (LOGIN, 404, 404, 404),
    "POST people.change_role": (LOGIN, 404, 404, 404),
    "POST people.remove": (LOGIN, 404, 404, 404),
    "POST people.revoke": (LOGIN, 404, 404, 404),
    # The walk's token is a verification token, no invitation's: a link that opens nothing.
    "GET people.invitation": (404, 404, 404, 404),
    "POST people.invitation": (404, 404, 404, 404),
    "GET people.space_members_page": (LOGIN, 404, 404, 404),
    "POST people.space_member_add": (LOGIN, 404, 404, 404),
    "POST people.space_member_remove": (LOGIN, 404, 404, 404),
    # ------------------------------------------------------------------ monthly statement
    # In the console (companies refused it, 403); another organisation's space: 404.
    "GET statements.month": OTHERS_SPACE,
    "GET statements.csv": OTHERS_SPACE,
    "GET statements.totals_csv": OTHERS_SPACE,
    "GET statements.pdf": OTHERS_SPACE,
    # ------------------------------------------------------------------ receipts
    # The booking's document: for its booker (the company user) and nobody else of the
    # walk; but the walk has cancelled it by then (POST bookings.cancel sorts before) and
    # no document was issued before: there is none (tests/test_receipts.py downloads it).
    "GET receipts.booking_document": (LOGIN, 404, 404, 404),
    # org_id is the operator's: its owners set the registration number.
    "GET receipts.registration": (LOGIN, 404, 404, 404),
    "POST receipts.registration": (LOGIN, 404, 404, 404),
}


def _url_values(world, endpoint: str) -> dict:
    values = dict(world.url_values)
    objects = world.objects
    values["org_id"] = objects["operator"].id
    if endpoint.startswith(("municipality.", "campaigns.")):
        values["org_id"] = objects["municipality"].id
        values["slug"] = objects["campaign"].slug
    if endpoint.startswith("opendata."):
        # 静岡県's code: the world's space is in it (the XSS walk rewrites its city)
        values["code"] = "220001"
    if endpoint == "api.problem_type_of":
        values["code"] = "not_enough_seats"
    if endpoint == "static":
        values["filename"] = "css/site.css"
    if endpoint in ("operator.leaflet", "search.leaflet"):
        values["filename"] = "leaflet.js"
    return values


# The status walk sees its pages in one language per visitor, both languages in all; the
# owners' walk gets every page in both.
WALK_LANGUAGE = {"anon": "ja", "company": "en", "operator_other": "ja", "municipality_other": "en"}


def _speak(client, lang: str) -> None:
    """The visitor's chosen language (what the language switch stores)."""
    with client.session_transaction() as sess:
        sess["lang"] = lang


def _status_name(response) -> object:
    if response.status_code == 302 and "/account/login" in response.headers.get("Location", ""):
        return LOGIN
    return response.status_code


class _Markup(HTMLParser):
    """What a browser would see as markup: tags, attributes, inline script text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.injected = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in values
            if self._in_script:
                self.problems.append(f"inline script: {self.get_starttag_text()}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler attribute: {self.get_starttag_text()}")
            if name == "style":
                self.problems.append(f"style attribute: {self.get_starttag_text()}")
            if name in ("href", "src", "action", "formaction") and value and \
                    value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL: {self.get_starttag_text()}")
        if tag == "img" and values.get("src") == "x":  # the XSS payload became a tag
            self.injected = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and "alert(" in data:
            self.injected = True


def _markup(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser


def _csp_problems(html: str) -> list[str]:
    return _markup(html).problems


def test_every_route_is_in_the_table_and_answers_as_expected(app, make):
    world = build_world(make)
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
    printing = bool(os.environ.get("ROUTE_WALK_PRINT"))
    missing, wrong, csp, api_not_json = [], [], [], []
    clients = {role: app.test_client() for role in ROLES}
    seen: dict[str, list] = {}
    pages = PageSet()

    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            key = f"{method} {rule.endpoint}"
            values = _url_values(world, rule.endpoint)
            unknown = [a for a in rule.arguments if a not in values]
            if unknown:
                missing.append(f"{key}: no value for URL parameter(s) {unknown} "
                               "(add them to tests/security_world.py)")
                continue
            with app.test_request_context():
                from flask import url_for

                url = url_for(rule.endpoint, **{a: values[a] for a in rule.arguments})
            got = []
            for role in ROLES:
                client = clients[role]
                as_role(client, world.users[role])
                _speak(client, WALK_LANGUAGE[role])
                # Forms carry their CSRF token on the pages (its hidden input is checked as
                # HTML); the POSTs go without one (tests/test_security.py checks CSRF).
                app.config["WTF_CSRF_ENABLED"] = method == "GET"
                response = client.open(url, method=method, data={} if method != "GET" else None)
                got.append(_status_name(response))
                body = response.get_data()  # bytes: an icon is not text
                response.close()
                body = body.decode() if response.mimetype == "text/html" else ""
                if response.mimetype == "text/html":
                    csp += [f"{key} as {role}: {p}" for p in _csp_problems(body)]
                    pages.add(f"{method} {url} as {role} [{WALK_LANGUAGE[role]}] "
                              f"{response.status_code}", body)
                if url.startswith("/api/") and response.status_code != 204:
                    ok_type = ("application/problem+json" if response.status_code >= 400
                               else "application/json")
                    if response.mimetype != ok_type and not url.endswith(".ics"):
                        api_not_json.append(f"{key} as {role}: {response.status_code} "
                                            f"{response.mimetype}")
            seen[key] = got
            if key not in EXPECTED:
                missing.append(f"{key}: not in EXPECTED (got {tuple(got)})")
                continue
            expected = EXPECTED[key]
            for i, role in enumerate(ROLES):
                allowed = expected[i] if isinstance(expected[i], set) else {expected[i]}
                if got[i] not in allowed:
                    wrong.append(f"{key} ({url}) as {role}: expected {expected[i]}, got {got[i]}")

    if printing:
        with Path(os.environ["ROUTE_WALK_PRINT"]).open("w") as out:
            for key, got in seen.items():
                out.write(f'    "{key}": {tuple(got)},\n')
    assert not missing, "routes missing from the table:\n" + "\n".join(missing)
    assert not wrong, "unexpected statuses:\n" + "\n".join(wrong)
    assert not csp, "pages the Content-Security-Policy would break:\n" + "\n".join(csp)
    assert not api_not_json, "API answers that are not JSON/problem+json:\n" + "\n".join(
        api_not_json)
    assert_valid(pages)


# The booker's token on their own booking: /api/v1/bookings/<reference>, by method.
OWN_BOOKING_API = {"GET": 200, "PATCH": 422, "DELETE": 200}  # PATCH {}: nothing to change
# What names one of the company's things in an /api/ URL: its booking, its place in a
# waitlist, its series.
OWN_THINGS = {"reference", "series_id", "entry_id"}


@pytest.mark.parametrize("role", ["company", "operator_other", "municipality_other"])
def test_api_routes_with_a_token_of_another_organisation(app, make, role):
    """Bearer tokens reach only what the token's user may see (the walk sends none): the
    booker's own booking answers as it should; the company's booking, waitlist place and
    series do not exist for anybody else, whatever the method."""
    from flask import url_for

    world = build_world(make)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world.tokens[role]}"}
    checked, refused = [], []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or not rule.arguments & OWN_THINGS:
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **{a: world.url_values[a] for a in rule.arguments})
        methods = rule.methods - {"HEAD", "OPTIONS"}
        if rule.arguments == {"reference"}:  # the booking's own routes
            assert methods <= set(OWN_BOOKING_API), (rule.endpoint,
                                                     methods - set(OWN_BOOKING_API))
            # In this order: read, change (an empty change), then cancel.
            for method in [m for m in OWN_BOOKING_API if m in methods]:
                response = client.open(url, method=method, headers=headers, json={})
                expected = OWN_BOOKING_API[method] if role == "company" else 404
                assert response.status_code == expected, (
                    method, url, response.status_code, response.get_data(as_text=True)[:300])
                checked.append(method)
        elif role != "company":  # the company's own answers: tests/test_api_*.py
            for method in sorted(methods):
                response = client.open(url, method=method, headers=headers, json={})
                assert response.status_code == 404, (
                    method, url, response.status_code, response.get_data(as_text=True)[:300])
                refused.append(rule.endpoint)
    assert sorted(checked) == sorted(OWN_BOOKING_API)
    if role != "company":
        assert {"api.get_series", "api.cancel_series_booking", "api.get_entry",
                "api.confirm_offer"} <= set(refused)


# Who owns what each GET route shows, among the owners walked below: each of them must get
# 200. The others must get no server error (their statuses are the table above's business).
# A GET route missing here fails the walk: whoever adds one says whose it is.
OWNER_ROLES = ("operator_owner", "municipality_owner", "company", "admin")
ALL_OWNERS = frozenset(OWNER_ROLES)
OPERATOR = frozenset({"operator_owner"})
MUNICIPALITY = frozenset({"municipality_owner"})
# The booking: the company that made it, the operator of its space, the site admin.
BOOKING = frozenset({"company", "operator_owner", "admin"})
OWNERS: dict[str, frozenset[str]] = {
    "public.home": ALL_OWNERS, "public.space": ALL_OWNERS, "public.photo": ALL_OWNERS,
    "public.healthz": ALL_OWNERS, "public.readyz": ALL_OWNERS, "public.robots": ALL_OWNERS,
    "public.favicon": ALL_OWNERS,
    "static": ALL_OWNERS, "search.search": ALL_OWNERS, "search.leaflet": ALL_OWNERS,
    "api.openapi": ALL_OWNERS, "api.search_spaces": ALL_OWNERS, "api.space_detail": ALL_OWNERS,
    "api.unit_availability": ALL_OWNERS, "api.problem_types": ALL_OWNERS,
    "api.problem_type_of": ALL_OWNERS,
    "account.login": ALL_OWNERS, "account.signup": ALL_OWNERS,
    "account.signup_supporter": ALL_OWNERS, "account.index": ALL_OWNERS,
    "account.password": ALL_OWNERS, "account.api_tokens": ALL_OWNERS, "account.data": ALL_OWNERS,
    "account.data_json": ALL_OWNERS, "bookings.mine": ALL_OWNERS,
    "account.notifications": ALL_OWNERS,
    "account.verify_email": frozenset({"company"}),  # the link made for the company user
    "bookings.feed": ALL_OWNERS,  # the secret in the URL is the credential
    "campaigns.index": ALL_OWNERS, "campaigns.show": ALL_OWNERS,
    **{f"opendata.{name}": ALL_OWNERS for name in (
        "index", "columns", "facilities_csv", "facilities_json", "municipality_csv",
        "municipality_json")},
    "campaigns.national": ALL_OWNERS,
    "account.audit": frozenset({"operator_owner", "admin"}),  # org_id: the operator's
    "admin.audit": frozenset({"admin"}), "admin.organisations": frozenset({"admin"}),
    "admin.outbox": frozenset({"admin"}),
    **{f"admin.{name}": frozenset({"admin"}) for name in (
        "nationals", "new_national", "edit_national", "national_report", "national_report_csv")},
    # The company user's token is sent to /api/ routes (the cookie is never enough there).
    "api.list_bookings": frozenset({"company"}), "api.get_booking": frozenset({"company"}),
    "api.list_entries": frozenset({"company"}), "api.get_entry": frozenset({"company"}),
    "api.get_series": frozenset({"company"}), "api.get_verification": frozenset({"company"}),
    "bookings.new": frozenset({"company"}),  # ?unit_id= (QUERY)
    "bookings.show": BOOKING, "bookings.ics": BOOKING, "bookings.cancel": BOOKING,
    "bookings.change": BOOKING,
    "waitlist.index": ALL_OWNERS, "waitlist.show": frozenset({"company"}),
    "series.new": frozenset({"company"}),  # ?unit_id= (QUERY)
    "series.show": BOOKING, "series.ics": BOOKING, "series.cancel_all": BOOKING,
    "campaigns.participation": frozenset({"company"}),
    "campaigns.consents": OPERATOR,  # the slot is on the operator's unit
    "people.people": OPERATOR, "people.space_members_page": OPERATOR,
    **{f"statements.{name}": OPERATOR for name in ("month", "csv", "totals_csv", "pdf")},
    "receipts.booking_document": BOOKING, "receipts.registration": OPERATOR,
    "people.invitation": frozenset(),  # the walk's token opens no invitation
    "operator.index": frozenset({"operator_owner", "municipality_owner"}),
    **{f"operator.{name}": OPERATOR for name in (
        "space_new", "space", "space_edit", "hours", "photos", "unit_new", "unit_edit",
        "month", "availability", "day", "export", "cancel")},
    **{f"municipality.{name}": MUNICIPALITY for name in (
        "index", "factors", "new_campaign", "campaign", "edit_campaign", "report", "report_csv",
        "report_xlsx", "report_zip", "report_print",
        "new_slot", "edit_slot", "new_extra", "edit_extra")},
}
# Query arguments a GET route needs besides its URL parameters.
QUERY = {"bookings.new": {"unit_id": "unit_id"}, "series.new": {"unit_id": "unit_id"},
         "operator.export": {"start": "2027-07-01", "end": "2027-08-31"}}


def test_every_page_works_for_its_owners_under_the_csp(app, make):
    """Every GET route as the owners of what it shows (and the site admin), with an XSS
    payload in every text field of the data (names, descriptions, addresses, notes,
    attendee names, ...): the owners get 200, nobody a server error, the payload never
    comes out as markup, and nothing on the page that script-src/style-src 'self' would
    block."""
    from flask import url_for

    from booking.extensions import db
    from booking.services import photos
    from tests.test_security import XSS, _set_every_text

    world = build_world(make)
    for obj in [*world.objects.values(), *world.users.values()]:
        if obj is not None:
            _set_every_text(obj)
    for attendee in world.objects["booking"].attendees:
        attendee.name = XSS[:100]
    db.session.commit()
    # The photo row's file, so that its route can answer 200.
    stored = photos.photo_dir(app.config["UPLOAD_DIR"]) / world.url_values["filename"]
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(b"\xff\xd8\xff\xd9")
    problems, errors, unbuilt = [], [], []
    pages = PageSet()
    app.config["WTF_CSRF_ENABLED"] = True  # GETs only: the pages' forms carry their token
    for role in OWNER_ROLES:
        client = app.test_client()
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods:
                continue
            if rule.endpoint not in OWNERS:
                unbuilt.append(f"{rule.endpoint}: not in OWNERS (say whose it is)")
                continue
            values = _url_values(world, rule.endpoint)
            missing = [a for a in rule.arguments if a not in values]
            if missing:
                unbuilt.append(f"{rule.endpoint}: no value for {missing}")
                continue
            query = {k: values.get(v, v) for k, v in QUERY.get(rule.endpoint, {}).items()}
            with app.test_request_context():
                url = url_for(rule.endpoint, **{a: values[a] for a in rule.arguments}, **query)
            headers = {}
            if url.startswith("/api/") and role in world.tokens:
                headers["Authorization"] = f"Bearer {world.tokens[role]}"
            as_role(client, world.users[role])
            response = client.get(url, headers=headers)
            body = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
            response.close()
            if response.status_code >= 500:
                errors.append(f"{url} as {role}: {response.status_code}")
            elif role in OWNERS[rule.endpoint] and response.status_code != 200:
                errors.append(f"{url} as {role}, whose it is: {response.status_code}")
            if response.mimetype == "text/html":
                problems += [f"{url} as {role}: {p}" for p in _csp_problems(body)]
                if _markup(body).injected:
                    problems.append(f"{url} as {role}: user text came out as markup")
                pages.add(f"GET {url} as {role} [ja] {response.status_code}", body)
                if response.status_code == 200:  # in English too (error pages: the walk above)
                    english = client.get(url + ("&" if "?" in url else "?") + "lang=en",
                                         headers=headers)
                    pages.add(f"GET {url} as {role} [en] {english.status_code}",
                              english.get_data(as_text=True))
                    english.close()
    assert not unbuilt, "GET routes the walk could not build:\n" + "\n".join(sorted(set(unbuilt)))
    assert not errors, "\n".join(errors)
    assert not problems, "pages the Content-Security-Policy would break:\n" + "\n".join(problems)
    assert_valid(pages)
