"""All models, importable from one place (Alembic and the services read them here)."""

from booking.models.base import Base
from booking.models.bookings import (
    HOLDING_STATUSES,
    Booking,
    BookingAttendee,
    BookingStatus,
    IdempotencyRecord,
    UnitLoad,
)
from booking.models.campaign_extras import BookingExtra, CampaignExtra, ReportFactors
from booking.models.campaigns import Campaign, CampaignSlot, Eligibility
from booking.models.organisations import (
    Membership,
    Organisation,
    OrgKind,
    Role,
    TeleworkCategory,
    User,
)
from booking.models.spaces import (
    AMENITIES,
    CapacityOverride,
    CatalogueVersion,
    Closure,
    OpeningHours,
    Photo,
    PricePer,
    Space,
    SpaceKind,
    Unit,
    UnitKind,
)
from booking.models.system import ApiToken, AuditEntry, OutboxMessage

__all__ = [
    "AMENITIES", "HOLDING_STATUSES", "ApiToken", "AuditEntry", "Base", "Booking",
    "BookingAttendee", "BookingExtra", "BookingStatus", "Campaign", "CampaignExtra",
    "CampaignSlot", "CapacityOverride", "CatalogueVersion",
    "Closure", "Eligibility", "IdempotencyRecord", "Membership", "OpeningHours", "OrgKind",
    "Organisation", "OutboxMessage", "Photo", "PricePer", "ReportFactors", "Role", "Space",
    "SpaceKind",
    "TeleworkCategory", "Unit", "UnitKind", "UnitLoad", "User",
]
