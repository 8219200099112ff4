"""The JSON API of shared/API.md, under /api/v1. Every error is problem+json.

Each module of this package adds its routes to `bp` and its paths to `openapi.PATHS`.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from flask import Blueprint

# Token auth, no cookies: CSRF does not apply (create_app exempts this blueprint).
bp = Blueprint("api", __name__, url_prefix="/api/v1")

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    import_module(f"{__name__}.{_info.name}")
