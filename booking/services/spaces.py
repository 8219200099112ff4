"""What the public may see of spaces, and what campaigns offer in them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking.db import install_listeners
from booking.models import CampaignSlot, Photo, Space, Unit
from booking.services import catalogue
from booking.services.availability import slot_is_offered

FEATURED = 12  # spaces on the home page


def public_spaces() -> sa.Select:
    """Public spaces (Space.is_public), with hours and units loaded."""
    return (
        sa.select(Space)
        .where(Space.is_public)
        .options(
            selectinload(Space.opening_hours),
            selectinload(Space.units),
            selectinload(Space.photos),
        )
    )


def featured(session: Session) -> list[Space]:
    """The spaces the home page shows: public ones, by prefecture."""
    return list(session.scalars(
        public_spaces().order_by(Space.prefecture_code, Space.id).limit(FEATURED)))


def public_space(session: Session, *, slug: str | None = None,
                 space_id: int | None = None) -> Space | None:
    """A public space by its slug or its id; None when there is none (or it is not public)."""
    query = public_spaces()
    query = query.where(Space.slug == slug) if slug is not None else query.where(Space.id == space_id)
    return session.scalar(query)


def public_unit(session: Session, unit_id: int) -> Unit | None:
    """A unit of a public space; None otherwise."""
    unit = session.get(Unit, unit_id)
    if unit is None or public_space(session, space_id=unit.space_id) is None:
        return None
    return unit


def campaign_offers(session: Session, space: Space) -> list[CampaignSlot]:
    """The slots offered (CampaignSlot.is_offered) on this space's units."""
    return list(session.scalars(
        sa.select(CampaignSlot)
        .join(Unit, CampaignSlot.unit_id == Unit.id)
        .where(Unit.space_id == space.id, slot_is_offered())
        .options(selectinload(CampaignSlot.campaign), selectinload(CampaignSlot.unit))
        .order_by(CampaignSlot.start_date.desc(), CampaignSlot.id)
    ))


# --------------------------------------------------------------------------- space pages
#
# A space page shows two kinds of things: what changes with the catalogue (the space, its
# organisation, units, opening hours, photos, campaign offers, and what touches its units
# on some days: closures, capacity overrides, offered slots), and what changes with
# bookings and the clock (free time). The first is kept in each process's memory
# (`page()`), the second is read and worked out on every request (free_time.for_space).
#
# Which copy is current is told by the search catalogue (services/catalogue.py), which
# every process follows through the change log that the transactions changing those rows
# write (one query per request, the one search makes): when a space changed, its entry in
# the catalogue is a new object. A page kept for an entry that is no longer the current
# one is read again. The log is exact across app servers and commits in any order (see
# catalogue.py), so a page is never older than the last committed change this request's
# look at the log saw; it is read after that look, so at worst newer than its key (read
# again once more, needlessly). Photos are not part of the catalogue: `install()` writes a
# change-log row for the space when a photo is added, changed or removed.

PAGES_KEPT = 2000  # space pages kept per process (a few KB each)
RANGES_KEPT = 16  # date ranges of closures, overrides and slots kept per page


@dataclass
class Page:
    """What a space page shows that changes only with the catalogue. The model objects
    are detached from any session, with everything the page reads loaded: read-only."""

    entry: object  # the catalogue entry it was read for: its identity is the version
    space: Space
    offers: list[CampaignSlot]
    # (start, end) -> unit id -> closures, overrides and offered slots in that range
    # (availability's data without bookings), filled by free_time as pages ask.
    touches: dict[tuple, dict] = field(default_factory=dict)


_pages: OrderedDict[int, Page] = OrderedDict()
_slugs: dict[str, int] = {}
_lock = threading.Lock()


def page(session: Session, slug: str) -> Page | None:
    """The public space of this slug for its page, from memory while the catalogue says
    it has not changed; None when there is no such public space. 1 query when kept (the
    change log's), 5 to 8 when read."""
    held = catalogue.current(session)
    space_id = _slugs.get(slug)
    entry = held.by_id.get(space_id) if space_id is not None else None
    if space_id is None or entry is None or entry.slug != slug:
        space_id = session.scalar(sa.select(Space.id).where(Space.slug == slug))
        if space_id is None:
            return None
        entry = held.by_id.get(space_id)
        with _lock:
            _slugs[slug] = space_id
    with _lock:
        kept = _pages.get(space_id)
        if kept is not None and entry is not None and kept.entry is entry:
            _pages.move_to_end(space_id)
            return kept
    with own_session(session) as own:
        space = public_space(own, space_id=space_id)
        if space is None:
            return None
        found = Page(entry=entry, space=space, offers=campaign_offers(own, space))
        # What the page reads later, loaded now while the session is open (an access,
        # not an assert: `python -O` drops asserts, and a detached object cannot load).
        for unit in space.units:
            _loaded = (unit.space, space.organisation)
    if entry is not None:  # a public space the catalogue does not hold is not kept
        with _lock:
            _pages[space_id] = found
            while len(_pages) > PAGES_KEPT:
                _pages.popitem(last=False)
    return found


@contextmanager
def own_session(session: Session) -> Iterator[Session]:
    """A session of its own on the request session's connection (the same transaction),
    for what is kept across requests: closed, it leaves its objects detached with what
    they loaded (read only from then on; the commit at the end of the request cannot
    expire them), and the request session's own objects are never touched."""
    own = Session(bind=session.connection(), autoflush=False, expire_on_commit=False)
    try:
        yield own
    finally:
        own.close()


def _photos_changed(session: Session, _context) -> None:
    spaces = {obj.space_id for obj in (*session.new, *session.dirty, *session.deleted)
              if isinstance(obj, Photo)}
    if spaces:
        catalogue.note_changes(session.connection(), spaces)


def install() -> None:
    """Photo changes in the change log (create_app calls it)."""
    install_listeners(((Session, "after_flush", _photos_changed),))


BODIES_BYTES = 32 * 2**20  # rendered page contents kept per process
_bodies: OrderedDict[tuple, tuple[Page, str]] = OrderedDict()
_bodies_size = [0]


def kept_body(page: Page, key: tuple, render: Callable[[], str]) -> str:
    """The page's rendered content for `key` — everything else it is a function of: the
    view puts in it what the content shows (free time as worked out now, the locale, the
    request's arguments); the page's facts are `page` itself — from memory, or rendered
    and kept (the least recently used dropped beyond BODIES_BYTES). A content kept for
    another Page object of the space (read before a change) is never served."""
    whole = (page.space.id, key)
    with _lock:
        found = _bodies.get(whole)
        if found is not None and found[0] is page:
            _bodies.move_to_end(whole)
            return found[1]
    body = render()
    if page.entry is not None:
        with _lock:
            old = _bodies.pop(whole, None)
            if old is not None:
                _bodies_size[0] -= len(old[1])
            _bodies[whole] = (page, body)
            _bodies_size[0] += len(body)
            while _bodies_size[0] > BODIES_BYTES and len(_bodies) > 1:
                _, (_, dropped) = _bodies.popitem(last=False)
                _bodies_size[0] -= len(dropped)
    return body
