"""What every journey does on every page: axe-core, language leftovers, a screenshot.

`T(lang, msgid)` gives the text a page shows for a catalogue message, so the journeys can
click "予約する" / "Book" by its visible name in either language.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent.parent
PO = ROOT / "booking" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# The walks over every page (phone width, console) check each page by script and save a
# full-page screenshot only of a page that fails, unless SCREENSHOTS=all asks for every
# one (to look at them, as a reviewer does): a tall PNG costs a second of CPU, and the
# walks visit hundreds of pages in CI.
ALL_SCREENSHOTS = os.environ.get("SCREENSHOTS") == "all"
LANGS = ("ja", "en")


@cache
def _catalogue() -> dict[str, str]:
    with PO.open("rb") as f:
        catalog = read_po(f)
    found: dict[str, str] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        value = message.string if isinstance(message.string, str) else message.string[0]
        if value:
            found[key] = value
    return found


def T(lang: str, msgid: str, **params) -> str:  # upper case: reads like _()
    """The text shown for `msgid` in `lang` (untranslated messages show the msgid)."""
    text = _catalogue().get(msgid, msgid) if lang == "en" else msgid
    return text % params if params else text


# --- axe-core -------------------------------------------------------------------------

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '')),
  }));
}"""


def axe_violations(page) -> list[dict]:
    """Serious and critical violations axe-core finds on the page as it is now."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        raise AssertionError("axe-core was not injected into the page")
    return [v for v in page.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]


# --- language leftovers ---------------------------------------------------------------

# Every text a person reads or hears: text nodes plus the attributes read aloud. Each with
# the language of its nearest `lang` attribute, so that a Japanese name marked lang="ja" on
# an English page is not a leftover.
TEXTS_JS = """() => {
  const out = [];
  const langOf = (el) => { const h = el && el.closest('[lang]'); return h ? h.getAttribute('lang') : ''; };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || el.closest('script,style,noscript,template,textarea,code,kbd,samp')) continue;
    const text = node.textContent.trim();
    if (text) out.push([text, langOf(el)]);
  }
  for (const el of document.querySelectorAll('[alt],[title],[aria-label],[placeholder]')) {
    for (const a of ['alt', 'title', 'aria-label', 'placeholder']) {
      const v = el.getAttribute(a);
      if (v && v.trim()) out.push([v.trim(), langOf(el)]);
    }
  }
  for (const el of document.querySelectorAll('input[type=submit],input[type=button]')) {
    if (el.value) out.push([el.value, langOf(el)]);
  }
  out.push([document.title, document.documentElement.getAttribute('lang') || '']);
  return out;
}"""

CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}(?:['’-][A-Za-z]+)*")
# Language-neutral tokens: e-mail addresses, URLs and paths, file names, slugs
# (telework-days-2027), booking references (F5EC129E9C).
NEUTRAL = re.compile(
    r"\S+@\S+|\w+://\S+|(?<!\w)(?:/[\w.{}<>-]+)+|\b[\w-]+\.(?:ics|csv|json|png|jpg|svg)\b"
    r"|\b[a-z0-9]+(?:-[a-z0-9]+)+\b|\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6,}\b|\b[A-Z0-9]{8,}\b"
)
# Latin words a Japanese page may show: product and format names, units.
JA_LATIN_OK = {
    "wi-fi", "wifi", "csv", "ics", "icalendar", "ical", "webcal", "google", "outlook", "apple",
    "thunderbird", "api", "url", "pdf", "id", "co", "ltd", "npo", "hr", "studio", "koto",
    "gsi", "leaflet", "openstreetmap", "osm", "contributors", "km", "sun", "mon", "tue",
    "wed", "thu", "fri", "sat", "am", "pm", "jr", "uid", "utc", "jst", "tm", "ok", "fy",
    "email", "e-mail", "english", "json", "excel", "https", "http", "www", "post", "get",
    "jpeg", "jpg", "png", "webp", "mb", "kb", "utf", "bom", "yyyy", "mm", "dd", "yyyy-mm-dd",
    "co2", "kg", "tdm", "min", "max",
    # Names of API parameters, shown as they must be typed.
    "campaign",
}


@cache
def proper_names(lang: str = "en") -> tuple[str, ...]:
    """Names from the demo data (shown as they are in both languages), longest first.

    Prefecture names only in their romanised form on Japanese pages (例: Shizuoka): an
    English page must say Shizuoka, not 静岡県."""
    from booking.seeds import demo

    names: set[str] = set()
    for name, name_en, _kind, _pref, address in demo.ORGANISATIONS:
        names.update({name, name_en, address})
    for _email, name, _org in demo.USERS:
        names.add(name)
    from booking.seeds import history  # the companies of the demo's history and their users

    for company in history.COMPANIES:
        names.update({company.name, company.name_en, company.address})
        names.update(name for _local, name in company.users)
    for spec in demo.SPACES:
        names.update({spec["name"], spec["name_en"], spec["city"], spec["address"],
                      spec["station"], spec["access"]})
        for unit in spec["units"]:
            names.update({unit["name"], unit["name_en"]})
    for year in (2019, 2026, 2027, 2028):
        for spec in demo.campaigns_for(year):
            names.update({spec["name"], spec["name_en"]})
    if lang == "ja":
        from booking.prefectures import PREFECTURES

        names.update(p.name_en for p in PREFECTURES)
    # The map tiles' attribution (config MAP_TILE_ATTRIBUTION) is the provider's own name.
    names.update({"日本語", "地理院タイル (GSI Japan)", "地理院タイル"})
    return tuple(sorted((n for n in names if n), key=len, reverse=True))


def leftovers(texts: list[list[str]], lang: str, extra_names: tuple[str, ...] = ()) -> list[str]:
    """Texts of the other language on a page of `lang`, outside proper names."""
    names = tuple(sorted(set(proper_names(lang)) | set(extra_names), key=len, reverse=True))
    found = []
    for text, text_lang in texts:
        if text_lang and not text_lang.startswith(lang):
            continue  # marked as the other language on purpose
        rest = NEUTRAL.sub(" ", text)
        for name in names:
            if name in rest:
                rest = rest.replace(name, " ")
        if lang == "en":
            if CJK.search(rest):
                found.append(text)
        else:
            words = [w for w in LATIN_WORD.findall(rest) if w.lower() not in JA_LATIN_OK]
            if words:
                found.append(text)
    return sorted(set(found))


# --- the check of one page ------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80]


class Auditor:
    """Checks each page a journey visits; `lang` is the language the journey runs in."""

    def __init__(self, test_name: str, lang: str) -> None:
        self.test_name = slug(test_name)
        self.lang = lang
        self.extra_names: tuple[str, ...] = ()
        self.pages: list[str] = []

    def __call__(self, page, label: str, *, axe: bool = True, full_page: bool = False) -> Path:
        """Checks the page as it is now; `full_page` for a journey's main pages (a tall PNG
        costs a second of CPU on a busy CI machine)."""
        page.wait_for_load_state("load")
        html_lang = page.evaluate("() => document.documentElement.lang")
        assert html_lang == self.lang, f"{label}: <html lang={html_lang!r}>, expected {self.lang!r}"
        shot = SCREENSHOTS / self.test_name / f"{slug(label)}.{self.lang}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        if full_page:
            # A full-page shot resizes the viewport, and Chromium then scrolls a focused
            # text field back into view at the next click: on a tall page the click lands
            # beside the button it meant. The field is left first (as a person would).
            page.evaluate("() => document.activeElement?.matches('input, textarea, select')"
                          " && document.activeElement.blur()")
        page.screenshot(path=str(shot), full_page=full_page)
        self.pages.append(f"{label} ({page.url})")
        problems = []
        if axe:
            for v in axe_violations(page):
                problems.append(f"axe {v['impact']} {v['id']}: {v['help']}\n      "
                                + "\n      ".join(v["nodes"]))
        left = leftovers(page.evaluate(TEXTS_JS), self.lang, self.extra_names)
        if left:
            other = "Japanese" if self.lang == "en" else "English"
            problems.append(f"{other} left over on a {self.lang} page: {left[:15]}")
        assert not problems, f"{label} [{self.lang}] {page.url}:\n  " + "\n  ".join(problems)
        return shot


# --- small steps every journey takes ----------------------------------------------------

DEMO_PASSWORD = "telework-demo-2019"


def set_language(page, lang: str) -> None:
    """Switches the session's language with the visible switch, as a person would."""
    page.goto("/")
    current = page.evaluate("() => document.documentElement.lang")
    if current != lang:
        page.get_by_role("button", name="English" if lang == "en" else "日本語").click()
        page.wait_for_function(f"() => document.documentElement?.lang === '{lang}'")


def log_in(page, lang: str, email: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/account/login")
    page.get_by_label(T(lang, "メールアドレス")).fill(email)
    page.get_by_label(T(lang, "パスワード")).fill(password)
    page.locator("main").get_by_role("button", name=T(lang, "ログイン")).click()
    page.wait_for_url(lambda url: "/account/login" not in url)


# --- the same texts from HTML without a browser (tests/test_i18n.py) --------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


def html_texts(html: str) -> list[list[str]]:
    """What TEXTS_JS collects, from server HTML: [text, nearest lang] pairs."""
    from html.parser import HTMLParser

    out: list[list[str]] = []

    class Collector(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.stack: list[tuple[str, str | None]] = []  # (tag, lang)
            self.title: list[str] = []

        def lang(self) -> str:
            for _tag, lang in reversed(self.stack):
                if lang is not None:
                    return lang
            return ""

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            lang = a.get("lang")
            if tag not in VOID:
                self.stack.append((tag, lang))
            here = lang if lang is not None else self.lang()
            for name in ("alt", "title", "aria-label", "placeholder"):
                if a.get(name) and a[name].strip():
                    out.append([a[name].strip(), here])
            if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
                out.append([a["value"], here])

        def handle_startendtag(self, tag, attrs):
            self.handle_starttag(tag, attrs)
            if tag not in VOID and self.stack:
                self.stack.pop()

        def handle_endtag(self, tag):
            for i in range(len(self.stack) - 1, -1, -1):
                if self.stack[i][0] == tag:
                    del self.stack[i:]
                    break

        def handle_data(self, data):
            tags = {t for t, _l in self.stack}
            if tags & {"script", "style", "noscript", "template", "textarea", "code", "kbd", "samp"}:
                return
            text = data.strip()
            if not text:
                return
            if "body" in tags or "title" in tags:
                out.append([text, self.lang()])

    Collector().feed(html)
    return out


@contextmanager
def served_in_thread(app) -> Iterator[str]:
    """`app` on werkzeug's threaded server in this process: its base URL, until the block ends.

    Each answer is read whole and its iterable closed before werkzeug writes it. werkzeug
    closes a streamed file (a stylesheet) only after draining the socket, which raises when
    Chromium has already dropped the connection on leaving the page; the file then reached
    the garbage collector open, and its ResourceWarning failed whichever test came next.
    """
    from werkzeug.serving import make_server

    def read_whole(environ, start_response):
        answer = app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            if hasattr(answer, "close"):
                answer.close()

    server = make_server("127.0.0.1", 0, read_whole, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
