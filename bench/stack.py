"""The real stack for benchmarks, scale-out and fault checks: PostgreSQL, Redis, gunicorn, wrk.

Everything here is started by the caller and stopped by it (context managers), and leaves
the machine as it found it:

- `shared_database()` creates a database of its own on the machine's PostgreSQL
  (BENCH_POSTGRES_URL, else TEST_POSTGRES_URL, else postgres@127.0.0.1:5432) and drops it.
- `OwnPostgres` is a PostgreSQL instance of its own (initdb into a temporary folder, its own
  port and socket), for the fault checks that stop and restart the server: the machine's
  shared server is never stopped.
- `RedisNamespace` uses the machine's Redis (BENCH_REDIS_URL, default
  redis://127.0.0.1:6379/0) under a key prefix of its own and deletes those keys afterwards.
- `AppServer` runs `gunicorn -c python:booking.gunicorn_conf booking.wsgi:app` (the production settings) on a
  loopback port with the given environment, in a process group of its own.
- `run_wrk()` drives a server with wrk (Debian's package) and a Lua script that reports
  status counts and latency percentiles as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "lua"
BIN = Path(sys.executable).parent
ADMIN_URL = (os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
             or "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def shared_database(prefix: str = "bench") -> Iterator[str]:
    """A new database on the machine's PostgreSQL (postgresql:// URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("initdb not found under /usr/lib/postgresql/*/bin")
    return found[-1].parent


class OwnPostgres:
    """A PostgreSQL server of our own in a temporary folder, on its own port.

    initdb refuses to run as root, so as root the server runs as the `postgres` user
    (runuser). stop()/start()/restart() are what the fault checks do to it.
    """

    def __init__(self, *, fsync: bool = True) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.fsync = fsync
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> OwnPostgres:
        if self.user:
            shutil.chown(self.dir, self.user, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "-N")
        options = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                   f"unix_socket_directories = '{self.dir}'", "max_connections = 200",
                   f"fsync = {'on' if self.fsync else 'off'}", "shared_buffers = 64MB"]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n" + "\n".join(options) + "\n")
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str = "booking") -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def __enter__(self) -> OwnPostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- Redis


class RedisNamespace:
    """The machine's Redis under a key prefix of our own; our keys are deleted on exit."""

    def __init__(self, url: str = REDIS_URL) -> None:
        import redis

        self.url = url
        self.prefix = f"bench-{uuid.uuid4().hex[:10]}"
        self.client = redis.Redis.from_url(url)

    def keys(self) -> list[bytes]:
        return list(self.client.scan_iter(match=f"*{self.prefix}*", count=1000))

    def __enter__(self) -> RedisNamespace:
        self.client.ping()
        return self

    def __exit__(self, *exc) -> None:
        keys = self.keys()
        if keys:
            self.client.delete(*keys)
        self.client.close()


# --------------------------------------------------------------------------- the app


# A benchmark is one company booking thousands of times an hour: the company limits
# (services/limits.py) would refuse it, so its app processes run without them.
NO_COMPANY_LIMITS = {"COMPANY_BOOKINGS_PER_HOUR": 0, "COMPANY_BOOKINGS_PER_DAY": 0,
                     "COMPANY_INVITATIONS_PER_DAY": 0}


def app_environment(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of an app process: the machine's, minus anything that would point
    the app elsewhere, plus the given settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "MAIL_", "GUNICORN_", "WEB_CONCURRENCY",
                                "RATELIMIT_", "PYTEST_", "FLASK_"))}
    env.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-secret-" + uuid.uuid4().hex,
        "PUBLIC_URL": "http://127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        "FLASK_APP": "wsgi",
        **{name: str(value) for name, value in NO_COMPANY_LIMITS.items()},
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def create_schema(database_url: str) -> None:
    """The tables the models describe (as the tests do; migrations are the lead's)."""
    run_python("from booking import create_app\n"
               "from booking.extensions import db\n"
               "app = create_app()\n"
               "with app.app_context():\n"
               "    db.create_all()\n", app_environment(database_url))


def run_python(code: str, env: dict[str, str], timeout: float = 600) -> str:
    """Run code in a fresh interpreter with the app's environment (as an app process)."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"python failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None,
         timeout: float = 30) -> tuple[int, dict, bytes]:
    """One HTTP request; (status, headers, body) whatever the status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def gunicorn_arguments(tree: Path = ROOT) -> list[str]:
    """The settings and app of a checkout: the package's booking/gunicorn_conf.py, or the
    root gunicorn.conf.py and wsgi.py of commits before the move."""
    if (tree / "booking" / "gunicorn_conf.py").exists():
        return ["-c", "python:booking.gunicorn_conf", "booking.wsgi:app"]
    return ["-c", str(tree / "gunicorn.conf.py"), "wsgi:app"]


class AppServer:
    """gunicorn with the production settings (booking/gunicorn_conf.py), on a loopback port of its own."""

    def __init__(self, env: dict[str, str], *, port: int | None = None, workers: int | None = None,
                 threads: int | None = None, log_path: Path | None = None,
                 name: str = "app", tree: Path | None = None) -> None:
        self.port = port or free_port()
        # The checkout whose code it serves (bench/ab.py: a git worktree of another commit);
        # its folder goes first on the import path, before the venv's editable install.
        self.tree = Path(tree or ROOT)
        self.env = dict(env)
        self.env["PYTHONPATH"] = str(self.tree)
        self.env["GUNICORN_BIND"] = f"127.0.0.1:{self.port}"
        if workers is not None:
            self.env["WEB_CONCURRENCY"] = str(workers)
        if threads is not None:
            self.env["GUNICORN_THREADS"] = str(threads)
        self.env.setdefault("GUNICORN_PROC_NAME", f"bench-{name}-{self.port}")
        self.log_path = log_path or Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> AppServer:
        log = self.log_path.open("ab")  # closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), *gunicorn_arguments(self.tree)],
            cwd=self.tree, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_tail()}")
            with contextlib.suppress(OSError):
                if http("GET", self.url + "/healthz", timeout=2)[0] == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s: {self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Workers that outlived the master (they should not) go with the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        self.process = None

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- load (wrk)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def write_requests(path: Path, requests: list[tuple[str, str, str]]) -> Path:
    """The request list of requests.lua: one `METHOD<TAB>PATH<TAB>BODY` per line."""
    with path.open("w", encoding="utf-8") as out:
        for method, target, body in requests:
            assert "\t" not in target and "\n" not in body and "\t" not in body
            out.write(f"{method}\t{target}\t{body}\n")
    return path


def run_wrk(base_url: str, requests_file: Path, *, duration: float, connections: int,
            threads: int = 1, token: str = "", timeout: float = 10) -> dict:
    """Drive base_url with the request list for `duration` seconds; figures as a dict:
    requests, seconds, rps, latency_ms {p50, p95, p99, mean, max}, statuses {code: n},
    socket_errors."""
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
               "--timeout", f"{round(timeout)}s", "-s", str(LUA / "requests.lua"), base_url,
               "--", str(requests_file), token or "-", uuid.uuid4().hex[:8]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + timeout + 60)
    marker = "BENCH-JSON "
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(marker)), None)
    if done.returncode or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    figures = json.loads(line[len(marker):])
    figures["statuses"] = {str(k): v for k, v in sorted(figures["statuses"].items())}
    return figures


# --------------------------------------------------------------------------- reporting


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or not floor:
        return None
    return round(value / floor, 3)


def print_table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(label), *(len(_cell(r.get(key))) for r in rows)) for key, label in columns]
    print("  ".join(label.ljust(w) for (_k, label), w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(_cell(row.get(key)).ljust(w) for (key, _l), w in zip(columns, widths, strict=True)))
    sys.stdout.flush()


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def percentile(values: list[float], q: float, digits: int = 2) -> float | None:
    """The q-th (0..1, in hundredths) percentile of values, linear between the closest
    ranks (statistics.quantiles' inclusive method, numpy's default), rounded to `digits`;
    None when there are none. The one percentile of every benchmark."""
    if len(values) < 2:
        return round(values[0], digits) if values else None
    return round(statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1],
                 digits)


def write_results(name: str, data: dict, directory: Path = RESULTS) -> Path:
    """The benchmark's JSON as <directory>/<name>-<UTC stamp>.json."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = directory / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")
    return path


def machine() -> dict:
    return {"cores": os.cpu_count(), "python": sys.version.split()[0],
            "load_average": os.getloadavg(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
