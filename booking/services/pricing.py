"""Money as Japanese law asks it to be shown (総額表示): every price tax-included.

Prices are stored as the amounts a customer pays, consumption tax included, as Japanese
facilities list them. The tax inside an amount is worked out once per amount and rounded
down, as the invoice rules (インボイス制度) allow for one rounding per rate.

What a booking costs is worked out here, once: `quote` (a booking about to be made; the
booking path stores its `company_pays` and `subsidy`), `of_booking` (a stored booking, from
what was stored), `estimate` (what a booking form asks for, before it is sent). Each gives
a `Breakdown`: the unit's own price for the length and seats, the campaign discount, the
municipality's share, what the company pays and the consumption tax inside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from booking.clock import TOKYO
from booking.models import Booking, CampaignSlot, PricePer, Unit, User
from booking.services.availability import tokyo_days
from booking.services.campaign_rules import split_price
from booking.services.errors import DomainError

if TYPE_CHECKING:
    from booking.services.booking_requests import BookingRequest

# The standard consumption tax rate (%). Facility use has no reduced rate.
CONSUMPTION_TAX_PERCENT = 10


def tax_included_in(amount: int, percent: int = CONSUMPTION_TAX_PERCENT) -> int:
    """The consumption tax inside a tax-included amount, rounded down (¥1,100 → ¥100)."""
    return amount * percent // (100 + percent)


def length_of(unit: Unit, start: datetime, end: datetime) -> int:
    """The booking's length in the unit's price units (days, hours or nights)."""
    if unit.price_per == PricePer.HOUR:
        return max(1, math.ceil((end - start).total_seconds() / 3600))
    if unit.price_per == PricePer.NIGHT:
        return max(1, (end.astimezone(TOKYO).date() - start.astimezone(TOKYO).date()).days)
    return len(tokyo_days(start, end))


@dataclass(frozen=True)
class Breakdown:
    """Who pays what for a booking (or several made together), all tax-included yen.

    base − discount = the price at the campaign slot's rate (the base without a slot);
    that price = subsidy + company_pays. `unit_price` × `length` × `seats` = base when
    `itemised` (a stored booking whose unit has changed its price since says only the
    total)."""

    price_per: PricePer
    unit_price: int  # the unit's own price per day, hour or night
    length: int  # days, hours or nights, summed over the bookings
    seats: int
    base: int
    discount: int  # the campaign slot's discount on the base
    subsidy: int  # the municipality's share (a subsidised campaign slot)
    company_pays: int
    tax_percent: int = CONSUMPTION_TAX_PERCENT

    @property
    def tax(self) -> int:
        """The consumption tax inside what the company pays."""
        return tax_included_in(self.company_pays, self.tax_percent)

    @property
    def itemised(self) -> bool:
        return self.unit_price * self.length * self.seats == self.base

    def __add__(self, other: Breakdown) -> Breakdown:
        """Two bookings made together (a range of days): their sums. The tax of the sum is
        the tax of each added up to within a yen (the receipt of each booking has its own)."""
        return Breakdown(
            price_per=self.price_per, unit_price=self.unit_price,
            length=self.length + other.length, seats=self.seats, base=self.base + other.base,
            discount=self.discount + other.discount, subsidy=self.subsidy + other.subsidy,
            company_pays=self.company_pays + other.company_pays, tax_percent=self.tax_percent)


def quote(unit: Unit, slot: CampaignSlot | None, start: datetime, end: datetime,
          seats: int) -> Breakdown:
    """What a booking of `seats` of `unit` for [start, end) costs, through `slot` or not:
    the slot's price (or the unit's) × length × seats, split between the company and the
    municipality (campaign_rules.split_price)."""
    length = length_of(unit, start, end)
    base = unit.price_amount * length * seats
    at_slot = (slot.price_for(unit) if slot is not None else unit.price_amount) * length * seats
    company_pays, subsidy = split_price(slot, at_slot)
    return Breakdown(price_per=unit.price_per, unit_price=unit.price_amount, length=length,
                     seats=seats, base=max(base, at_slot), discount=max(0, base - at_slot),
                     subsidy=subsidy, company_pays=company_pays)


def quote_all(unit: Unit, slot: CampaignSlot | None, periods: Sequence[tuple[datetime, datetime]],
              seats: int) -> Breakdown:
    """The sum of `quote` over bookings made together (one per period, at least one)."""
    quotes = [quote(unit, slot, start, end, seats) for start, end in periods]
    total = quotes[0]
    for more in quotes[1:]:
        total += more
    return total


def of_booking(booking: Booking) -> Breakdown:
    """A stored booking's breakdown, from what was stored when it was booked (its price
    and subsidy); the discount is the unit's own price for it less the slot's price,
    none for a booking made at the unit's price."""
    unit = booking.unit
    length = length_of(unit, booking.starts_at, booking.ends_at)
    at_slot = booking.price_amount + booking.subsidy_amount
    base = at_slot
    if booking.campaign_slot_id is not None:
        base = max(at_slot, unit.price_amount * length * booking.seats)
    return Breakdown(price_per=unit.price_per, unit_price=unit.price_amount, length=length,
                     seats=booking.seats, base=base, discount=base - at_slot,
                     subsidy=booking.subsidy_amount, company_pays=booking.price_amount)


@dataclass(frozen=True)
class Estimate:
    """What a booking form asks for would cost, before it is sent: the bookings it makes
    (one per period), their breakdown summed, and the first start (its cancellation
    deadline is the one the form warns about)."""

    breakdown: Breakdown
    bookings: int
    starts_at: datetime
    slot: CampaignSlot | None  # the campaign slot it would go through
    chosen: bool  # a cheaper slot picked for the user (it may turn out full: unit price)


def estimate(session: Session, user: User, unit: Unit, request: BookingRequest) -> Estimate | None:
    """The estimate of `request` as booking_requests.place would book it (the same slot,
    the same periods, the same arithmetic); None while the request names no bookable
    time (no date yet, a closed day: the booking would be refused and says why)."""
    # Imported here: booking_requests books through reservations, which prices with this
    # module (a module-level import would be circular).
    from booking.services import booking_requests

    try:
        slot, chosen = booking_requests.resolve_slot(session, unit, user, request)
        periods = booking_requests.periods_for(unit, slot, request)
    except DomainError:
        return None
    if not periods:
        return None
    return Estimate(quote_all(unit, slot, periods, request.seats), len(periods),
                    min(start for start, _ in periods), slot, chosen)
