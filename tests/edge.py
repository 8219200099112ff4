"""The booking services as a request's edge calls them: decide, then commit.

Services flush and never commit (booking.unit_of_work commits at the end of a request).
A test that calls them directly is that edge: `from tests.edge import reservations as r`
gives the module with each decision followed by a commit of the session it was given.
A refused decision has rolled back already; nothing is committed then.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from booking.services import reservations as _reservations

DECISIONS = ("book", "change", "cancel", "check_in", "mark_no_show")


def _committing(decide):
    @functools.wraps(decide)
    def decide_and_commit(session, *args, **kwargs):
        result = decide(session, *args, **kwargs)
        session.commit()
        return result

    return decide_and_commit


reservations = SimpleNamespace(**{
    name: (_committing(value) if name in DECISIONS else value)
    for name, value in vars(_reservations).items() if not name.startswith("__")
})
