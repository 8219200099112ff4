"""search._has_stretch, the one-day shortcut of free_stretches that decides whether an
hourly unit searched by date alone is listed, answers as free_stretches does."""

from __future__ import annotations

import random

from booking.services.search import _has_stretch, _has_stretches, free_stretches


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


def test_has_stretches_answers_as_free_stretches_over_days():
    """search._has_stretches, the same over one window a day for several days (a range
    searched by date alone)."""
    rng = random.Random(23)
    found = 0
    for _ in range(20_000):
        opens = rng.choice([0, 480, 540, 600])
        hours = rng.choice([60, 180, 480, 600, 900])
        windows = [(day * 1440 + opens, day * 1440 + opens + hours)
                   for day in range(rng.randint(1, 4))]
        capacity = rng.choice([1, 1, 2, 5, 10])
        need = rng.randint(1, capacity)
        pieces = []  # the days' loads: disjoint, in no order
        for day in range(len(windows)):
            start = rng.randint(0, 300)
            while start < 1440 and rng.random() < 0.7:
                end = min(1440, start + rng.choice([15, 30, 60, 120, 240]))
                pieces.append((day * 1440 + start, day * 1440 + end, rng.randint(1, capacity)))
                start = end + rng.choice([0, 0, 15, 60, 120])
        rng.shuffle(pieces)
        length = rng.choice([1, 2, 3, 4]) * 60
        expected = free_stretches(windows, [(s, e, capacity - n) for s, e, n in pieces],
                                  capacity, need, length) is not None
        assert _has_stretches(pieces, windows, capacity - need, length) == expected
        found += expected
    assert 4_000 < found < 18_000  # both answers well represented
