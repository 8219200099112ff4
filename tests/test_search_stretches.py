"""search._has_stretch, the one-day shortcut of free_stretches that decides whether an
hourly unit searched by date alone is listed, answers as free_stretches does."""

from __future__ import annotations

import random

from booking.services.search import _has_stretch, free_stretches


def test_has_stretch_answers_as_free_stretches():
    rng = random.Random(22)
    found = 0
    for _ in range(20_000):
        opens = rng.choice([0, 480, 540, 600])
        window = (opens, opens + rng.choice([60, 180, 480, 600, 900]))
        capacity = rng.choice([1, 1, 2, 5, 10])
        need = rng.randint(1, capacity)
        pieces = []  # a day's loads: disjoint, in no order
        start = rng.randint(0, 300)
        while start < 1440 and rng.random() < 0.8:
            end = min(1440, start + rng.choice([15, 30, 60, 120, 240]))
            pieces.append((start, end, rng.randint(1, capacity)))
            start = end + rng.choice([0, 0, 15, 60, 120])
        rng.shuffle(pieces)
        length = rng.choice([1, 2, 3, 4]) * 60
        expected = free_stretches([window], [(s, e, capacity - n) for s, e, n in pieces],
                                  capacity, need, length) is not None
        assert _has_stretch(pieces, window, capacity - need, length) == expected
        found += expected
    assert 5_000 < found < 18_000  # both answers well represented
