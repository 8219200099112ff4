"""One side of search_server_time's A/B mode: times searches of one checkout in process.

Run by path with the checkout first on PYTHONPATH (`python bench/search_worker.py URL`),
so that `booking` is that checkout's; it imports nothing else of this repository, so any
commit's code can run under it. Reads one JSON command a line on stdin and answers one
JSON line on stdout:

    {"warm": [params, ...]}   -> {"ok": true}
    {"run": [params, ...]}    -> {"times": [ms...], "queries": [n...], "totals": [...],
                                  "statuses": {"200": n, ...}}

`times`, `queries` and `totals` are those of the searches answered 200, in order; `totals`
holds each answer's `total` and a digest of its JSON (keys sorted), so that the sides' answers can be
compared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from urllib.parse import urlencode

import sqlalchemy as sa


def main(url: str) -> int:
    from booking import create_app
    from booking.extensions import db

    logging.getLogger("booking.access").setLevel(logging.WARNING)
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url.replace("postgresql://", "postgresql+psycopg://", 1),
        "RATELIMIT_ENABLED": False, "SECRET_KEY": "bench", "SERVER_NAME": "localhost"})
    client = app.test_client()
    with app.app_context():
        engine = db.engine
    count = [0]

    def counted(*_args) -> None:
        count[0] += 1

    for line in sys.stdin:
        command = json.loads(line)
        if "warm" in command:
            for params in command["warm"]:
                client.get("/api/v1/spaces?" + urlencode(params)).close()
            answer: dict = {"ok": True}
        else:
            answer = {"times": [], "queries": [], "totals": [], "statuses": {}}
            sa.event.listen(engine, "before_cursor_execute", counted)
            try:
                for params in command["run"]:
                    count[0] = 0
                    t0 = time.perf_counter()
                    response = client.get("/api/v1/spaces?" + urlencode(params))
                    elapsed = (time.perf_counter() - t0) * 1000
                    status = str(response.status_code)
                    answer["statuses"][status] = answer["statuses"].get(status, 0) + 1
                    if response.status_code == 200:
                        answer["times"].append(elapsed)
                        answer["queries"].append(count[0])
                        body = json.loads(response.data)
                        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
                        answer["totals"].append([body["total"], hashlib.sha1(
                            canonical.encode()).hexdigest()[:12]])
                    response.close()
            finally:
                sa.event.remove(engine, "before_cursor_execute", counted)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
