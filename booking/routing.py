"""URL rules whose URL builders are compiled when first used.

Werkzeug compiles two URL-building functions for every rule as the rule is added (Python
source through `ast` and `compile`): with the app's 140 rules that is ~80 % of creating the app
(measured: 0.45 s → 0.09 s per `create_app`), paid by every worker at start, every CLI
command and every test. Most rules are never built in a given process, so each builder is
compiled on its first use instead. Relies on `Rule._compile_builder(append_unknown)`, which
werkzeug 3.x has; `Werkzeug<3.2` in pyproject.toml and tests/test_routing.py guard it.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Rule


class LazyBuilderRule(Rule):
    def _compile_builder(self, append_unknown: bool = True) -> Any:
        name = "_build_unknown" if append_unknown else "_build"

        def build(rule: Rule, *args: Any, **kwargs: Any) -> Any:
            # First use: compile the real builder, put it where werkzeug looks, call it.
            # Two threads may both compile it; either result is the same function.
            real = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            setattr(rule, name, real)
            return real(*args, **kwargs)

        return build
