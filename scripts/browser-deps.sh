#!/usr/bin/env bash
# From the npm registry at the versions pinned in tests/browser/package-lock.json (never from
# a CDN): axe-core for the browser tests' accessibility checks, and vnu-jar (the Nu HTML
# Checker's vnu.jar, run on the machine's Java) for the HTML validity of the route walk.
# --ignore-scripts: vnu-jar's postinstall would download a Java runtime; Java 17 is here
# (scripts/system-packages.sh). Skips when already installed.
set -euo pipefail
cd "$(dirname "$0")/../tests/browser"
if [ ! -f node_modules/axe-core/axe.min.js ] || [ ! -f node_modules/vnu-jar/build/dist/vnu.jar ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund
fi
