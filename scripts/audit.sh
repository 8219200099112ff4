#!/usr/bin/env bash
# Known vulnerabilities in the installed packages (pip-audit against the package index).
# Fails on any finding. Where the index serves no vulnerability data (every package comes
# back "not found", as on this workplace's mirror), says so once and goes on: an audit
# that cannot be made is reported, not passed off as clean and not a red build.
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp)
trap 'rm -f "$report"' EXIT
if ! .venv/bin/pip-audit --local --progress-spinner off -f json -o "$report" >/dev/null 2>&1; then
  [ -s "$report" ] || { echo "pip-audit could not reach the package index; nothing was audited"; exit 0; }
  python3 - "$report" <<'PY' || exit 1
import json, sys
deps = json.load(open(sys.argv[1]))["dependencies"]
found = [(d["name"], d["version"], v["id"]) for d in deps for v in d.get("vulns", [])]
if found:
    print("pip-audit: known vulnerabilities:", *found, sep="\n  ")
    sys.exit(1)
PY
  echo "pip-audit failed without a finding; nothing was audited"; exit 0
fi
python3 - "$report" <<'PY'
import json, sys
deps = json.load(open(sys.argv[1]))["dependencies"]
skipped = sum(1 for d in deps if "skip_reason" in d)
if deps and skipped == len(deps):
    print(f"pip-audit: the package index served no vulnerability data for any of the "
          f"{len(deps)} installed packages; nothing was audited")
else:
    print(f"pip-audit: {len(deps) - skipped} packages audited, no known vulnerabilities"
          + (f" ({skipped} not found on the index)" if skipped else ""))
PY
