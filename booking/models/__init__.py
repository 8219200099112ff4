"""All models, importable from one place (Alembic and the services read them here)."""

from booking.models.base import Base
from booking.models.bookings import (
    HOLDING_STATUSES,
    NOT_MADE_STATUSES,
    Booking,
    BookingAttendee,
    BookingSeries,
    BookingStatus,
    FeedChange,
    IdempotencyRecord,
    UnitLoad,
    WaitlistEntry,
    WaitlistStatus,
)
from booking.models.campaign_extras import BookingExtra, CampaignExtra, ReportFactors
from booking.models.campaigns import Campaign, CampaignSlot, Eligibility, NationalCampaign
from booking.models.organisations import (
    Invitation,
    Membership,
    Organisation,
    OrgKind,
    Role,
    TeleworkCategory,
    User,
)
from booking.models.spaces import (
    AMENITIES,
    NO_AREA,
    CapacityOverride,
    CatalogueChange,
    Closure,
    OpeningHours,
    Photo,
    PricePer,
    Space,
    SpaceKind,
    SpaceMember,
    Unit,
    UnitKind,
    map_area,
)
from booking.models.system import (
    ApiToken,
    AuditEntry,
    DocumentKind,
    JobRun,
    OutboxMessage,
    Receipt,
    ReceiptCounter,
)

__all__ = [
    "AMENITIES", "HOLDING_STATUSES", "NOT_MADE_STATUSES", "NO_AREA", "ApiToken", "AuditEntry",
    "Base", "Booking", "BookingAttendee", "BookingExtra", "BookingSeries", "BookingStatus",
    "Campaign", "CampaignExtra", "CampaignSlot", "CapacityOverride", "CatalogueChange",
    "Closure", "DocumentKind", "Eligibility", "FeedChange", "IdempotencyRecord", "Invitation",
    "JobRun", "Membership", "NationalCampaign", "OpeningHours", "OrgKind",
    "Organisation", "OutboxMessage", "Photo", "PricePer", "Receipt", "ReceiptCounter",
    "ReportFactors", "Role", "Space",
    "SpaceKind", "SpaceMember",
    "TeleworkCategory", "Unit", "UnitKind", "UnitLoad", "User", "WaitlistEntry",
    "WaitlistStatus", "map_area",
]
