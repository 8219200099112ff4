"""One blueprint per audience or surface; each module exposes `bp`."""

from __future__ import annotations

from importlib import import_module

from flask import Flask

# Order matters only for readability.
MODULES = ("public", "account", "admin")


def register_blueprints(app: Flask) -> None:
    for name in MODULES:
        module = import_module(f"booking.blueprints.{name}")
        app.register_blueprint(module.bp)
