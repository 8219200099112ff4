"""Hostile input at every route of the URL map: never a server error.

Walks app.url_map (a new route is covered the day it lands) as the owner of what the
URL points at (tests/security_world.py; the company's bearer token under /api/), and
sends each route:

  * a NUL byte in the path (string arguments), in the query, in the form and in a JSON
    body: PostgreSQL refuses NUL in text, so it must be stopped at the edge (400);
  * a JSON body nested 100 000 levels deep (Python's parser recurses): 400;
  * the edge dates 9999-12-31 and 0001-01-01 (and months 9999-12, 0001-01) in every
    date parameter the walk can find: the date inputs and date-like fields of the forms
    and links on the pages it visits, and the date parameters and properties of the
    OpenAPI document. Adding days to 9999-12-31 or converting it to UTC overflows:
    these must be refused as bad input (4xx), never a 500.

The forms are filled with what their page shows (prefilled values, the first option of
a select, a plausible value otherwise), so that the edge date gets past the other
fields' validation and reaches the code that uses it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from booking.extensions import db
from booking.services import tokens
from tests.security_world import as_role, build_world
from tests.test_route_walk import _url_values

NUL = "a\x00b"
EDGE_DATES = ("9999-12-31", "0001-01-01")
EDGE_MONTHS = {"9999-12-31": "9999-12", "0001-01-01": "0001-01"}
DEEP_JSON = "[" * 100_000 + "]" * 100_000
DATE_NAME = re.compile(r"(date|day|month|_on$|^start$|^end$|^from$|^to$)")
# Run last: they end the session, revoke the token, cancel or delete what the others use.
DESTRUCTIVE = ("cancel", "delete", "revoke", "logout", "no_show", "check_in", "publish",
               "approve")
# HOSTILE_WALK_LOG=/tmp/walk.txt: every request of the walk and its status, to review.
WALK_LOG = os.environ.get("HOSTILE_WALK_LOG")


def _role(endpoint: str) -> str:
    if endpoint.startswith("operator."):
        return "operator_owner"
    if endpoint.startswith("municipality."):
        return "municipality_owner"
    if endpoint.startswith("admin."):
        return "admin"
    if endpoint in ("campaigns.consents", "campaigns.consent"):
        return "operator_owner"
    return "company"


# --------------------------------------------------------------------------- page parsing


@dataclass
class Form:
    action: str  # the URL it is sent to, with its query
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    dates: set[str] = field(default_factory=set)  # names of date (or month) fields


class _Forms(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "?" in a.get("href", "") and a["href"].startswith("/"):
            self.links.append(a["href"])
        if tag == "form":
            self._form = Form(action=a.get("action") or self.page_url,
                              method=(a.get("method") or "get").lower())
            self.forms.append(self._form)
            return
        form = self._form
        if form is None or not a.get("name"):
            return
        name, kind = a["name"], a.get("type", "text").lower()
        if tag == "input":
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a or name not in form.fields:
                    form.fields[name] = a.get("value") or "y"
                return
            form.fields[name] = a.get("value") or _plausible(name, kind)
            if kind in ("date", "month") or DATE_NAME.search(name):
                form.dates.add(name)
        elif tag == "select":
            self._select = name
            form.fields.setdefault(name, "")
        elif tag == "option" and self._select:
            if not form.fields[self._select] or "selected" in a:
                form.fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            form.fields[name] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form.fields[self._textarea] += data


def _plausible(name: str, kind: str) -> str:
    if kind == "number":
        return "1"
    if kind == "time" or name in ("checkin", "checkout") or name.endswith(("_time", "open",
                                                                           "close")):
        return "10:00"
    if kind == "email" or "email" in name:
        return "someone@example.jp"
    return "テスト"


def _path(url: str) -> str:
    return urlsplit(url).path


# --------------------------------------------------------------------------- OpenAPI


def _resolve(schema: dict, schemas: dict) -> dict:
    if "$ref" in schema:
        return schemas[schema["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            for option in schema[key]:
                if option.get("type") != "null":
                    return _resolve(option, schemas)
    return schema


def _date_kind(schema: dict, schemas: dict) -> str | None:
    """"date" or "date-time" when the schema (or its items) is one."""
    schema = _resolve(schema, schemas)
    if schema.get("format") in ("date", "date-time"):
        return schema["format"]
    if schema.get("type") == "array":
        kind = _date_kind(schema.get("items", {}), schemas)
        return f"list-{kind}" if kind else None
    return None


def _date_value(kind: str, day: str, name: str) -> object:
    if kind.startswith("list-"):
        return [_date_value(kind[5:], day, name)]
    if kind == "date-time":
        return f"{day}T{'18' if name == 'end' else '09'}:00:00+09:00"
    return day


@dataclass
class ApiOperation:
    query_dates: dict[str, str]  # name -> date kind
    query_names: list[str]
    body: dict | None  # the request body's schema (resolved)
    schemas: dict  # the document's components, to resolve $refs inside the body


def _api_operations(client) -> dict[tuple[str, str], ApiOperation]:
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    found = {}
    for path, item in doc["paths"].items():
        flask_path = "/api/v1" + re.sub(r"\{(\w+)\}", r"<\1>", path)
        for method, op in item.items():
            if method == "parameters":
                continue
            params = [p for p in [*item.get("parameters", []), *op.get("parameters", [])]
                      if p["in"] == "query"]
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            found[(flask_path, method.upper())] = ApiOperation(
                query_dates={p["name"]: k for p in params
                             if (k := _date_kind(p.get("schema", {}), schemas))},
                query_names=[p["name"] for p in params],
                body=_resolve(body["schema"], schemas) if body else None,
                schemas=schemas,
            )
    return found


def _api_bodies(op: ApiOperation, ids: dict, day: str | None) -> list[dict]:
    """Bodies with the required properties, one per date property set to `day` (start
    and end go together); with `day` None, one body with every string property NUL."""
    body, schemas = op.body, op.schemas
    props = body.get("properties", {})
    base = {}
    for name in body.get("required", []):
        base[name] = ids.get(name, 1) if name.endswith("_id") else "someone@example.jp"
    if day is None:
        every = dict(base)
        for name, schema in props.items():
            schema = _resolve(schema, schemas)
            if schema.get("type") == "string" or name in ("attendees",):
                every[name] = [NUL] if schema.get("type") == "array" else NUL
        return [every]
    bodies = []
    for name, schema in props.items():
        kind = _date_kind(schema, schemas)
        if kind is None or name == "end":
            continue
        one = {**base, name: _date_value(kind, day, name)}
        if name == "start" and "end" in props:
            one["end"] = _date_value(kind, day, "end")
        if name == "date" and "nights" in props:
            bodies.append({**one, "nights": 2})
        bodies.append(one)
    return bodies


# --------------------------------------------------------------------------- the walk


class Walker:
    def __init__(self, app, world) -> None:
        self.app, self.world = app, world
        self.client = app.test_client()
        self.forms: dict[str, list[Form]] = {}  # by path
        self.links: dict[str, list[str]] = {}  # by path: URLs with a query
        self.errors: list[str] = []
        self.not_refused: list[str] = []

    def open(self, role: str, url: str, method: str = "GET", *, expect_400: bool = False,
             **kwargs):
        headers = kwargs.pop("headers", {})
        if url.startswith("/api/") and role == "company":
            token, _ = tokens.issue(db.session, self.world.users["company"], 1)
            db.session.commit()
            headers["Authorization"] = f"Bearer {token}"
        as_role(self.client, self.world.users[role])
        label = f"{method} {url!r} as {role} {str(kwargs)[:200]}"
        try:
            response = self.client.open(url, method=method, headers=headers, **kwargs)
        except Exception as error:  # TESTING: what would have been a 500 is raised here
            db.session.rollback()
            self.errors.append(f"{label}: {type(error).__name__}: {str(error)[:200]}")
            return None, ""
        try:
            body = response.get_data()  # bytes: an icon or a photo is not text
        finally:
            response.close()
        # Text and JSON are read; downloads (an XLSX, a zip, a PDF, an icon) are bytes.
        textual = response.mimetype.startswith("text/") or response.mimetype.endswith("json")
        body = body.decode() if textual else ""
        if WALK_LOG:
            with Path(WALK_LOG).open("a") as log:
                log.write(f"{response.status_code} {label}\n")
        if response.status_code >= 500:
            self.errors.append(f"{label}: {response.status_code}")
        elif expect_400 and response.status_code != 400:
            self.not_refused.append(f"{label}: {response.status_code}")
        if url.startswith("/api/") and response.status_code >= 400:
            assert response.mimetype == "application/problem+json", label
        return response, body

    def url(self, rule, **override) -> str:
        values = {**_url_values(self.world, rule.endpoint), **override}
        with self.app.test_request_context():
            from flask import url_for

            return url_for(rule.endpoint, **{a: values[a] for a in rule.arguments})

    def discover(self, rules) -> None:
        """Every GET page as its owner, then every linked page with a query: their forms
        and links, by path."""
        seen_links: set[tuple[str, tuple]] = set()
        pages = [(_role(r.endpoint), self.url(r)) for r in rules if "GET" in r.methods]
        while pages:
            role, url = pages.pop()
            response, body = self.open(role, url)
            if response is None or response.mimetype != "text/html":
                continue
            parser = _Forms(url)
            parser.feed(body)
            for form in parser.forms:
                same = self.forms.setdefault(_path(form.action), [])
                key = (form.action, form.method, sorted(form.fields))
                if all((f.action, f.method, sorted(f.fields)) != key for f in same):
                    same.append(form)
            for link in parser.links:
                path = _path(link)
                key = (path, tuple(sorted(k for k, _ in parse_qsl(urlsplit(link).query))))
                if key in seen_links:
                    continue
                seen_links.add(key)
                self.links.setdefault(path, []).append(link)
                pages.append((role, link))

    def date_names(self) -> set[str]:
        names = set()
        for forms in self.forms.values():
            for form in forms:
                names |= form.dates
        return names


def _edge(name: str, day: str, form: Form | None = None) -> str:
    month = name == "month" or (form is not None and name.endswith("month"))
    return EDGE_MONTHS[day] if month else day


def _sorted_rules(app):
    def key(rule):
        return (any(word in rule.endpoint for word in DESTRUCTIVE), rule.rule, rule.endpoint)

    return sorted(app.url_map.iter_rules(), key=key)


def test_no_route_gives_a_server_error_for_hostile_input(app, make):
    world = build_world(make)
    walker = Walker(app, world)
    rules = [r for r in _sorted_rules(app) if r.endpoint != "static"]
    walker.discover(rules)
    api = _api_operations(walker.client)
    global_dates = walker.date_names()
    ids = {"unit_id": world.objects["unit"].id}

    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            role = _role(rule.endpoint)
            url = walker.url(rule)
            path = _path(url)
            op = api.get((re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule), method))
            forms = [f for f in walker.forms.get(path, [])
                     if (f.method == "get") == (method == "GET")]
            links = walker.links.get(path, []) if method == "GET" else []

            # NUL in the path: every string argument of the rule.
            strings = [a for a in rule.arguments
                       if not isinstance(rule._converters[a].to_python("1"), int)]
            if strings:
                walker.open(role, walker.url(rule, **dict.fromkeys(strings, NUL)), method,
                            expect_400=True)
            # NUL in the query, the form, a JSON body.
            names = {n for f in forms for n in f.fields} | set(op.query_names if op else ())
            names |= {k for link in links for k, _ in parse_qsl(urlsplit(link).query)}
            query = urlencode(dict.fromkeys(names or {"q"}, NUL))
            walker.open(role, f"{url}?{query}", method, expect_400=True)
            if method != "GET":
                for form in forms or [Form(url, "post", {"field": ""})]:
                    data = dict.fromkeys(form.fields or ["field"], NUL)
                    walker.open(role, form.action, method, data=data, expect_400=True)
                bodies = _api_bodies(op, ids, None) if op and op.body else [{"x": NUL}]
                for body in bodies:
                    walker.open(role, url, method, json=body, expect_400=True)
            # Deep JSON.
            if method != "GET" or url.startswith("/api/"):
                walker.open(role, url, method, data=DEEP_JSON,
                            content_type="application/json", expect_400=True)

            # Edge dates.
            for day in EDGE_DATES:
                if method == "GET":
                    for form in forms:
                        params = {**form.fields,
                                  **{n: _edge(n, day, form) for n in form.dates}}
                        walker.open(role, f"{path}?{urlencode(params)}")
                    for link in links:
                        params = {k: (_edge(k, day) if DATE_NAME.search(k) else v)
                                  for k, v in parse_qsl(urlsplit(link).query)}
                        walker.open(role, f"{path}?{urlencode(params)}")
                    if op:
                        params = {n: _date_value(k, day, n) for n, k in op.query_dates.items()}
                        params = {n: (v[0] if isinstance(v, list) else v)
                                  for n, v in params.items()}
                        if params:
                            walker.open(role, f"{url}?{urlencode(params)}")
                    if not forms and not links and not op:
                        walker.open(role, f"{url}?{urlencode(dict.fromkeys(global_dates, day))}")
                    continue
                for form in forms:
                    data = {**form.fields, **{n: _edge(n, day, form) for n in form.dates}}
                    walker.open(role, form.action, method, data=data)
                    # One edge, the other dates as the page shows them (a long range).
                    for name in form.dates:
                        walker.open(role, form.action, method,
                                    data={**form.fields, name: _edge(name, day, form)})
                if op and op.body:
                    for body in _api_bodies(op, ids, day):
                        walker.open(role, url, method, json=body)
                if not forms and not op:
                    walker.open(role, url, method, data=dict.fromkeys(global_dates, day))

    assert not walker.errors, "server errors:\n" + "\n".join(walker.errors)
    assert not walker.not_refused, "NUL bytes or deep JSON not refused with 400:\n" + "\n".join(
        walker.not_refused)


def test_nul_bytes_and_deep_json_are_refused_before_anything_reads_them(client):
    """The answers themselves: problem+json under /api/, a short page elsewhere."""
    response = client.get("/spaces/a%00b")
    assert response.status_code == 400 and response.mimetype == "text/html"
    response = client.post("/account/login", data={"email": "a\x00@example.jp",
                                                   "password": "x"})
    assert response.status_code == 400
    response = client.post("/api/v1/tokens", json={"email": "a\x00@example.jp",
                                                   "password": "x"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "NUL" in response.get_json()["detail"]
    response = client.post("/api/v1/tokens", data=DEEP_JSON, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    # A JSON body a little deep but reasonable is read as before (a 422 about its fields).
    response = client.post("/api/v1/tokens", json={"email": [[["x"]]], "password": "x"})
    assert response.status_code == 422
