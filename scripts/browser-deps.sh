#!/usr/bin/env bash
# axe-core for the browser tests' accessibility checks, from the npm registry at the version
# pinned in tests/browser/package-lock.json (never from a CDN). Skips when already installed.
set -euo pipefail
cd "$(dirname "$0")/../tests/browser"
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
