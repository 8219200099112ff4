#!/usr/bin/env bash
# Until the first release, the schema is one initial migration, regenerated from the
# models (nothing is deployed yet that would need a chain of upgrades).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f booking/migrations/versions/*.py
FLASK_APP=wsgi DATABASE_URL="sqlite:///$tmp/empty.sqlite3" .venv/bin/flask --debug db migrate -m "initial schema" >/dev/null
ls booking/migrations/versions/
