"""URL builders compiled on first use (booking/routing.py) build exactly what werkzeug's
own eager builders build, for every rule of the app, known and unknown arguments alike."""

from __future__ import annotations

from werkzeug.routing import Map, Rule
from werkzeug.routing.converters import NumberConverter, PathConverter

from booking import create_app
from booking.routing import LazyBuilderRule


def _values(rule: Rule) -> dict:
    """A value each of the rule's arguments accepts."""
    values: dict = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, NumberConverter):
            values[name] = 7
        elif isinstance(converter, PathConverter):
            values[name] = "a/b c"
        else:
            values[name] = "abc é"
    return values


def test_every_rule_builds_what_werkzeug_builds():
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "SERVER_NAME": "localhost",
                      "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100 and all(isinstance(r, LazyBuilderRule) for r in rules)
    eager = Map([Rule(r.rule, endpoint=r.endpoint, methods=r.methods) for r in rules],
                converters=app.url_map.converters)
    # Nothing compiled yet: each builder is the stand-in that compiles it on first use.
    assert all(r._build.__func__.__qualname__.startswith("LazyBuilderRule.")
               for r in rules)
    checked = 0
    for rule, twin in zip(rules, eager.iter_rules(), strict=True):
        assert (rule.rule, rule.endpoint) == (twin.rule, twin.endpoint)
        values = _values(rule)
        assert rule.build(values) == twin.build(values)
        assert rule.build({**values, "q": "x y"}) == twin.build({**values, "q": "x y"})
        assert rule.build({**values, "q": "x y"}, append_unknown=False) == \
            twin.build({**values, "q": "x y"}, append_unknown=False)
        checked += 1
        assert not rule._build_unknown.__func__.__qualname__.startswith("LazyBuilderRule.")
    assert checked > 100
