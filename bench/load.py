"""A booking load in Python threads, recording every answer (for scale-out and fault checks).

wrk measures throughput; these checks need to know what each request was answered (the
reference of each 201, the status and content type of each failure), and to retry a 503
with the same Idempotency-Key, as a well-behaved API client does.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.stack import http


@dataclass
class Attempt:
    at: float  # monotonic
    status: int  # 0: no HTTP answer (connection refused or reset)
    content_type: str = ""
    error: str = ""


@dataclass
class Outcome:
    key: str
    server: str
    body: dict
    attempts: list[Attempt] = field(default_factory=list)
    reference: str | None = None

    @property
    def status(self) -> int:
        return self.attempts[-1].status if self.attempts else 0


def post_booking(server: str, token: str, body: dict, key: str) -> Attempt:
    started = time.monotonic()
    try:
        status, headers, raw = http("POST", server + "/api/v1/bookings", body,
                                    {"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                                    timeout=30)
    except OSError as error:  # refused, reset: the server itself is not answering
        return Attempt(started, 0, error=f"{type(error).__name__}: {error}")
    attempt = Attempt(started, status, headers.get("Content-Type", ""))
    attempt.raw = raw  # type: ignore[attr-defined]
    return attempt


def book_all(servers: list[str], token: str, bodies: list[dict], *, threads: int = 8,
             retry_seconds: float = 0.0, pause: float = 0.3,
             on_answer=None) -> list[Outcome]:
    """POST every body once (round-robin over the servers), from `threads` threads.

    With retry_seconds > 0, a 503 or a connection error is retried with the same key until
    it gets another answer or the time is up (as a client should: the key makes it safe).
    """
    salt = uuid.uuid4().hex[:8]
    outcomes = [Outcome(key=f"{salt}-{i}", server=servers[i % len(servers)], body=body)
                for i, body in enumerate(bodies)]
    lock = threading.Lock()

    def one(outcome: Outcome) -> None:
        give_up = time.monotonic() + retry_seconds
        while True:
            attempt = post_booking(outcome.server, token, outcome.body, outcome.key)
            with lock:
                outcome.attempts.append(attempt)
            if on_answer is not None:
                on_answer(attempt)
            if attempt.status == 201:
                outcome.reference = _reference(attempt.raw)  # type: ignore[attr-defined]
            if attempt.status not in (0, 503) or time.monotonic() >= give_up:
                break
            time.sleep(pause)
        for a in outcome.attempts:  # keep memory small: bodies are read already
            a.__dict__.pop("raw", None)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, outcomes))
    return outcomes


def _reference(raw: bytes) -> str | None:
    data = json.loads(raw)
    if data.get("reference"):
        return data["reference"]
    for key in ("bookings", "results"):  # several periods in one request
        if isinstance(data.get(key), list) and data[key]:
            return data[key][0].get("reference")
    return None


def summary(outcomes: list[Outcome]) -> dict:
    """Final answers and every attempt's answer, by status."""
    finals = Counter(str(o.status) for o in outcomes)
    attempts = Counter(str(a.status) for o in outcomes for a in o.attempts)
    problem_503 = sum(1 for o in outcomes for a in o.attempts
                      if a.status == 503 and a.content_type.startswith("application/problem+json"))
    return {"requests": len(outcomes), "final": dict(sorted(finals.items())),
            "attempts": dict(sorted(attempts.items())), "attempts_503_problem_json": problem_503,
            "created": sum(1 for o in outcomes if o.status == 201)}
