"""The Content-Security-Policy in a real browser: Chromium reports every script, style or
other resource the policy blocks (`securitypolicyviolation` events and "Refused to ..."
console messages). Crawls the pages each demo account reaches by following links from
its start pages (bounded), so new pages are covered when they are linked."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from tests.browser.helpers import log_in

ACCOUNTS = {
    "anonymous": (None, ["/", "/search?near=静岡&date=2027-07-26", "/account/login",
                         "/account/signup", "/campaigns/"]),
    "company": ("company@example.jp", ["/", "/bookings/", "/account/"]),
    "operator": ("operator@example.jp", ["/operator/", "/account/"]),
    "city": ("city@example.jp", ["/municipality/", "/account/"]),
    "admin": ("admin@example.jp", ["/admin/organisations", "/admin/audit"]),
}
MAX_PAGES = 30
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' @' + e.sourceFile
                    + ':' + e.lineNumber);
});
"""


@pytest.mark.parametrize("who", list(ACCOUNTS))
def test_no_page_breaks_the_content_security_policy(page, live_server, who):
    email, start = ACCOUNTS[who]
    refused: list[str] = []
    page.on("console", lambda m: refused.append(f"{page.url}: {m.text}")
            if "Content Security Policy" in m.text or m.text.startswith("Refused to") else None)
    page.add_init_script(WATCH)
    if email:
        log_in(page, "ja", email)
    queue, seen, violations = list(start), set(), []
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = page.goto(path)
        if response is None or "text/html" not in response.headers.get("content-type", ""):
            continue
        page.wait_for_load_state("load")
        violations += [f"{path}: {v}" for v in page.evaluate("() => window.__csp || []")]
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            target = urljoin(live_server + path, href)
            parts = urlsplit(target)
            if parts.netloc != urlsplit(live_server).netloc:
                continue
            local = parts.path + (f"?{parts.query}" if parts.query else "")
            if local.endswith((".ics", ".csv", ".json")) or local.startswith(("/static/", "/photos/")):
                continue
            if local not in seen:
                queue.append(local)
    assert len(seen) >= min(3, len(start))
    assert not violations, "\n".join(violations)
    assert not refused, "\n".join(refused)
