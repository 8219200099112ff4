"""The Nu HTML Checker (vnu) over the pages a test collected.

The checker is vnu.jar from the npm package vnu-jar, pinned in tests/browser/package.json and
package-lock.json and installed by scripts/browser-deps.sh (never from a CDN); it runs on the
machine's Java (scripts/system-packages.sh). A JVM takes seconds to start and vnu more to
read its schemas, so each pytest process starts vnu's web service ONCE, on a free port of
127.0.0.1, as soon as a test makes its first `PageSet` (the service boots while the test
walks its routes), and stops it when the process ends (or dies: PR_SET_PDEATHSIG). A test
adds every page it gets to its `PageSet` and asks for the errors once, at its end.

Pages that differ only in their CSRF token and the language switch's return address (the
same page at two URLs or for two visitors) are checked once; the report names the first URL
that gave the page and how many more did. What vnu said about a page is kept for the rest
of the process, so a page the other database's run of a walk gets again is not sent twice.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import hashlib
import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

VNU_JAR = Path(__file__).parent / "browser" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
INSTALL = "scripts/browser-deps.sh (npm ci in tests/browser) installs it"
BOOT_SECONDS = 300  # the service reads its schemas in ~5 s on an idle machine

# What differs between two answers that are the same page, and has no bearing on validity:
# the session's CSRF token, and the language switch's return address (the URL asked for).
_VARYING = re.compile(r'(<input [^>]*?name="(?:csrf_token|next)"[^>]*? value=")[^"]*"'
                      r'|(<input [^>]*? value=")[^"]*("[^>]*? name="(?:csrf_token|next)")')


def _same_page_key(html: str) -> str:
    masked = _VARYING.sub(lambda m: f'{m[1]}"' if m[1] else f"{m[2]}{m[3]}", html)
    return hashlib.sha256(masked.encode()).hexdigest()


def _install() -> None:
    """vnu.jar through scripts/browser-deps.sh once (make test runs it first; make test-fast
    does not), even when several xdist workers start together."""
    if VNU_JAR.is_file():
        return
    script = Path(__file__).resolve().parent.parent / "scripts" / "browser-deps.sh"
    with (VNU_JAR.parents[4] / ".npm-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not VNU_JAR.is_file():
            subprocess.run([str(script)], check=True, timeout=600)
    if not VNU_JAR.is_file():
        raise RuntimeError(f"vnu.jar is missing at {VNU_JAR}: {INSTALL}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Service:
    """vnu's web service (nu.validator.servlet.Main) for this process."""

    def __init__(self) -> None:
        _install()
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java is missing: scripts/system-packages.sh installs it")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - read if the service fails
        self.process = subprocess.Popen(
            [java, "-Xmx1g", "-Xss2m", "-Dnu.validator.servlet.bind-address=127.0.0.1",
             "-cp", str(VNU_JAR), "nu.validator.servlet.Main", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        self._ready = False
        self._lock = threading.Lock()
        self.said: dict[str, list[dict]] = {}  # vnu's messages per page key

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def _failed(self, why: str) -> RuntimeError:
        self.log.seek(0)
        return RuntimeError(f"vnu's service {why}: {self.log.read()[-3000:].decode(errors='replace')}")

    def wait_ready(self) -> None:
        with self._lock:
            deadline = time.monotonic() + BOOT_SECONDS
            while not self._ready:
                if self.process.poll() is not None:
                    raise self._failed(f"ended (exit {self.process.returncode})")
                if time.monotonic() > deadline:
                    raise self._failed(f"did not answer in {BOOT_SECONDS} s")
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        self._ready = True
                except OSError:
                    time.sleep(0.25)

    def messages(self, html: str) -> list[dict]:
        """vnu's messages about one document."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            connection.request("POST", "/?out=json", body=html.encode(),
                               headers={"Content-Type": "text/html; charset=utf-8",
                                        "User-Agent": "tests/html_validity.py"})
            answer = connection.getresponse()
            body = answer.read()
        finally:
            connection.close()
        if answer.status != 200:
            raise self._failed(f"answered {answer.status}: {body[:500]!r}")
        return json.loads(body)["messages"]


_service: _Service | None = None


def _checker() -> _Service:
    global _service
    if _service is None:
        _service = _Service()
    return _service


@dataclass
class Report:
    """What vnu said: errors and warnings (each with the page, line and message)."""

    errors: list[str]
    warnings: list[str]
    pages: int  # distinct pages
    checked: int  # of which vnu checked now (the others: already in this process)
    seconds: float


@dataclass
class PageSet:
    """HTML pages to check together; `add` them, then `check()` once. Making one starts
    the process's checker in the background; raises if vnu.jar or Java is missing."""

    _pages: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _checker()

    def add(self, label: str, html: str) -> None:
        """A page and where it came from (its URL, the visitor, the language...)."""
        key = _same_page_key(html)
        if key in self._pages:
            self._pages[key][1].append(label)
        else:
            self._pages[key] = (html, [label])

    def __len__(self) -> int:
        return len(self._pages)

    def check(self) -> Report:
        """vnu's errors and warnings about every page added, each page checked once."""
        started = time.monotonic()
        service = _checker()
        service.wait_ready()
        new = [(key, html) for key, (html, _labels) in self._pages.items()
               if key not in service.said]
        with ThreadPoolExecutor(max_workers=2) as pool:
            for key, said in zip([k for k, _ in new],
                                 pool.map(service.messages, [h for _, h in new]), strict=True):
                service.said[key] = said
        errors, warnings = [], []
        for key, (_html, labels) in self._pages.items():
            where = labels[0] + (f" (and {len(labels) - 1} more)" if len(labels) > 1 else "")
            for message in service.said[key]:
                text = f"{where}, line {message.get('lastLine', '?')}: {message.get('message', '')}"
                extract = (message.get("extract") or "").strip()
                if extract:
                    text += f"  [{extract[:160]}]"
                if message.get("type") in ("error", "non-document-error"):
                    errors.append(text)
                elif message.get("subType") == "warning":
                    warnings.append(text)
        return Report(errors, warnings, len(self._pages), len(new), time.monotonic() - started)


def assert_valid(pages: PageSet) -> None:
    """Fails listing every vnu error (page, line, message); prints the counts and warnings."""
    report = pages.check()
    print(f"vnu: {report.pages} distinct pages ({report.checked} checked now), "
          f"{len(report.errors)} errors, {len(report.warnings)} warnings, in {report.seconds:.1f} s")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    assert not report.errors, f"{len(report.errors)} HTML errors (vnu):\n" + "\n".join(report.errors)
