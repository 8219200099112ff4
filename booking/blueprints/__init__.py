"""One blueprint per audience or surface; each module (or package) here exposes `bp`.

Every module of this package is registered, so a new surface needs no edit here.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from flask import Flask


def register_blueprints(app: Flask) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = import_module(f"{__name__}.{info.name}")
        if hasattr(module, "bp"):
            app.register_blueprint(module.bp)
