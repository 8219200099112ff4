#!/usr/bin/env bash
# Debian packages the test suite needs: Java (the Nu HTML Checker, vnu.jar), Chromium and CJK fonts for browser tests, libical
# (through GObject introspection) for the iTIP check of calendar files, wrk (the load
# generator of bench/ and its smoke test), poppler-utils + poppler-data (pdftotext, with the
# CJK CMaps, reads the receipts' Japanese text in tests). Installs only what is missing, never upgrades
# anything (an upgrade of PostgreSQL's packages under the running server once broke it).
set -euo pipefail
needed=(openjdk-17-jre-headless chromium fonts-noto-cjk gir1.2-ical-3.0 python3-gi wrk redis-server poppler-utils poppler-data)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install --no-upgrade ${missing[*]})" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}"
