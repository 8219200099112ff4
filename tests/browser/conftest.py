"""Browser tests: the real application under gunicorn, driven by Debian's Chromium.

Each pytest(-xdist) worker starts its own server on a free loopback port (the socket is
bound here and handed to gunicorn, so two workers can never race for a port) with its own
fresh SQLite database holding the demo data. Chromium is Debian's /usr/bin/chromium;
Playwright never downloads a browser. axe-core comes from the npm registry through
tests/browser/package-lock.json (`scripts/browser-deps.sh`, or installed here on first use).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _install_axe() -> None:
    """npm ci once, even when several xdist workers start together."""
    if AXE_JS.exists():
        return
    if shutil.which("npm") is None:
        pytest.fail("npm is needed for axe-core (tests/browser/package.json); install nodejs/npm")
    with (HERE / ".npm-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not AXE_JS.exists():
            # --ignore-scripts: as scripts/browser-deps.sh (vnu-jar would fetch a Java runtime)
            subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--prefix", str(HERE)],
                           check=True, cwd=HERE, timeout=300)


@pytest.fixture(scope="session")
def axe_source() -> str:
    _install_axe()
    return AXE_JS.read_text(encoding="utf-8")


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the application server exited:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the application server did not answer:\n{log.read_text(errors='replace')[-4000:]}")


def _compile_catalogues() -> None:
    """The server shows what the .po files say now, not a stale .mo."""
    with (HERE / ".npm-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([str(Path(sys.executable).with_name("pybabel")), "compile", "-f",
                        "-d", str(ROOT / "booking" / "translations")], check=True, timeout=60,
                       capture_output=True)


@pytest.fixture(scope="session")
def _server(tmp_path_factory) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """Starts gunicorn (without waiting for it: Chromium starts meanwhile)."""
    yield from start_server(tmp_path_factory.mktemp("live"))


def start_server(workdir: Path, clock: str | None = None
                 ) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """gunicorn serving a fresh demo database from `workdir`; its clock starts at `clock`
    (ISO 8601, TEST_CLOCK's form), by default the suite's instant."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/system-packages.sh (Debian's chromium)")
    _compile_catalogues()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'browser.sqlite3'}",
        "BOOKING_INSTANCE_DIR": str(workdir),
        "SECRET_KEY": "browser-tests-only",
        "MAIL_DIR": str(workdir / "mail"),
        "UPLOAD_DIR": str(workdir / "uploads"),
        # The journeys log the demo accounts in many times a minute.
        "RATELIMIT_ENABLED": "false",
        "PYTHONPATH": str(ROOT),
        "PUBLIC_URL": base,
        # Map tiles from this server (404s): the page must work without tiles, and the
        # tests never reach outside the machine.
        "MAP_TILE_URL": base + "/static/tiles/{z}/{x}/{y}.png",
    }
    if clock is not None:
        env["TEST_CLOCK"] = clock
    for name in ("REDIS_URL", "MAIL_URL", "GEOCODER"):
        env.pop(name, None)
    log = workdir / "server.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(gunicorn), "--bind", f"fd://{sock.fileno()}", "--workers", "1",
             "--threads", "4", "--worker-class", "gthread", "--timeout", "120",
             "--access-logfile", "-", "tests.browser.serve_setup:app"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),),
        )
    sock.close()
    _LOG_WATCH[log] = 0
    try:
        yield proc, base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # What no test's check has reported yet (written after the last test's teardown,
        # or by the server's start and end): fails the session's last test.
        late = _new_server_errors(log)
        if late:
            pytest.fail(f"the application server logged errors (log: {log}):\n{late}")


# Server log offset up to which errors have been reported, per log file.
_LOG_WATCH: dict[Path, int] = {}
# The server logs JSON lines (booking/logging.py, booking/gunicorn_conf.py); gunicorn's own text
# format and a bare traceback are caught too.
SERVER_ERRORS = ('"level": "error"', '"level": "critical"', "[ERROR]", "[CRITICAL]", "Traceback")


def _readable(line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict):
        return line
    head = f"{entry.get('level', '?')} {entry.get('logger', '?')}: {entry.get('msg', '')}"
    details = {k: v for k, v in entry.items() if k in ("request_id", "path", "method", "status")}
    return head + (f" {details}" if details else "") + (f"\n{entry['exc']}" if entry.get("exc") else "")


def _new_server_errors(log: Path) -> str:
    """The server's error lines (and tracebacks) since the last call, readable; "" when
    there are none."""
    with log.open("rb") as f:
        f.seek(_LOG_WATCH.get(log, 0))
        grown = f.read()
    _LOG_WATCH[log] = _LOG_WATCH.get(log, 0) + len(grown)
    lines = grown.decode(errors="replace").splitlines()
    hits = [line for line in lines if any(mark in line for mark in SERVER_ERRORS)]
    shown = "\n".join(_readable(line) for line in hits[:5])
    return shown + (f"\n... and {len(hits) - 5} more" if len(hits) > 5 else "")


@pytest.fixture(autouse=True)
def _server_log_is_clean(request):
    """A test that uses the live server fails (at teardown, named) when the server wrote a
    traceback or an [ERROR] line while it ran; one written before it started (after the
    previous test's check) is reported too, as such."""
    if "live_server" not in request.fixturenames:
        yield
        return
    _proc, _base, log = request.getfixturevalue("_server")
    before = _new_server_errors(log)
    yield
    during = _new_server_errors(log)
    if during:
        pytest.fail(f"the application server logged errors during this test (log: {log}):\n"
                    f"{during}")
    if before:
        pytest.fail(f"the application server logged errors before this test started, after "
                    f"the previous test's check (log: {log}):\n{before}")


@pytest.fixture(scope="session")
def browser():
    """One Chromium per worker: Playwright's sync API allows one instance per process, so
    every browser test module uses this fixture rather than its own sync_playwright()."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def live_server(_server, browser) -> str:
    """The application under gunicorn with a fresh demo database: its base URL."""
    proc, base, log = _server
    _wait_ready(base, proc, log)
    return base


@pytest.fixture
def new_context(browser, live_server: str, axe_source: str):
    """Makes browser contexts (a fresh session each: one per person in a journey)."""
    contexts = []

    def _make(width: int = 1280, height: int = 900, server: str | None = None, **kwargs):
        """A context on the live server (or on `server`, another one's base URL)."""
        base = server or live_server
        context = browser.new_context(
            base_url=base, locale="ja-JP", timezone_id="Asia/Tokyo",
            viewport={"width": width, "height": height}, accept_downloads=True, **kwargs,
        )
        context.set_default_timeout(30_000)

        # Only loopback: anything else is aborted, never fetched.
        def _route(route):
            url = route.request.url
            if url.startswith(base) or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", _route)
        # An init script runs whatever the page's Content-Security-Policy says, which an
        # injected <script> would not; axe is then there on every page.
        context.add_init_script(axe_source)
        contexts.append(context)
        return context

    yield _make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


@pytest.fixture
def audit(request):
    """An Auditor for the test's language (parameter `lang`, Japanese otherwise)."""
    from tests.browser.helpers import Auditor

    params = getattr(request.node, "callspec", None)
    lang = params.params.get("lang", "ja") if params else "ja"
    return Auditor(request.node.name, lang)
