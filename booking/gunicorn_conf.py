"""gunicorn settings for production: `gunicorn -c python:booking.gunicorn_conf booking.wsgi:app`
(installed with the package, so a deployment needs no checkout).

Everything comes from the environment, so the same file serves every app server; start as
many servers as you need, on one machine or several, in front of one PostgreSQL and one
Redis (DATABASE_URL, REDIS_URL: see README "Running two app servers").

| variable | default | meaning |
|---|---|---|
| `GUNICORN_BIND` | `$HOST:$PORT` = `127.0.0.1:8000` | address to listen on |
| `WEB_CONCURRENCY` | cores | worker processes |
| `GUNICORN_THREADS` | 1 | threads per worker (1 = sync workers; more = gthread) |
| `GUNICORN_WORKER_CLASS` | from the threads | `sync`, `gthread` or `gevent` (benchmarks: bench/workers.py) |
| `GUNICORN_TIMEOUT` | 30 | seconds before a stuck worker is restarted |
| `GUNICORN_MAX_REQUESTS` | 0 (off) | recycle a worker after that many requests, ± half of it |
| `FORWARDED_ALLOW_IPS` | `127.0.0.1` | proxies whose X-Forwarded-* headers are trusted |
| `LOG_LEVEL`, `LOG_FORMAT` | `info`, `json` | gunicorn's own lines in the app's JSON format |
| `GUNICORN_ACCESSLOG` | unset | gunicorn's access log (the app already logs each request with its id) |
| `GUNICORN_CONTROL_SOCKET` | unset (off) | path of gunicorn's control socket, one per server |
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

_env = os.environ.get

bind = _env("GUNICORN_BIND") or f"{_env('HOST', '127.0.0.1')}:{_env('PORT', '8000')}"
# One sync process per core: measured with bench/workers.py at 1 M bookings (README,
# "Workers"). A request's work is mostly Python, so processes beyond the cores only take
# turns on them, and threads in a process take turns on its interpreter lock: each
# request's own time grew 2-5x with 4 threads. Sync workers need a buffering proxy in
# front (a slow client would hold a whole process); the README says which.
workers = int(_env("WEB_CONCURRENCY", str(multiprocessing.cpu_count())))
threads = int(_env("GUNICORN_THREADS", "1"))
worker_class = _env("GUNICORN_WORKER_CLASS") or ("gthread" if threads > 1 else "sync")
timeout = int(_env("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(_env("GUNICORN_KEEPALIVE", "5"))
backlog = int(_env("GUNICORN_BACKLOG", "2048"))
# Worker recycling is off: a restarted worker reloads the app and the whole in-memory
# catalogue, and with recycling every 10,000 requests those reloads showed as 165-411 ms p95
# spikes in the benchmarks (issue 22). A deployment that wants it (to bound a leak) sets
# GUNICORN_MAX_REQUESTS; the jitter is then half of it, so the workers of a server restart
# far apart instead of together.
max_requests = int(_env("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 2
# Each worker opens its own database pool after the fork: no connection is shared.
preload_app = False
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The heartbeat file on a tmpfs: a worker on a slow disk is not taken for a stuck one.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None
proc_name = _env("GUNICORN_PROC_NAME", "telework-booking")
# gunicorn 24+ opens a control socket at one path per user, so two app servers on one
# machine would take it from each other: off unless a path of its own is given.
if _env("GUNICORN_CONTROL_SOCKET"):
    control_socket = _env("GUNICORN_CONTROL_SOCKET")
else:
    control_socket_disable = True

loglevel = _env("LOG_LEVEL", "info").lower()
errorlog = "-"
accesslog = _env("GUNICORN_ACCESSLOG") or None
if _env("LOG_FORMAT", "json") == "json":
    from gunicorn.glogging import Logger

    from booking.logging import JsonFormatter

    class JsonLogger(Logger):
        """gunicorn's own lines (start, worker exits, timeouts) as JSON, like the app's."""

        def setup(self, cfg) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JsonFormatter())

    logger_class = JsonLogger
