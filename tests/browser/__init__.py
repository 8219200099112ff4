"""Browser tests (Playwright + Debian Chromium): journeys, accessibility, both languages."""
