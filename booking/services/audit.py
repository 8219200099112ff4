"""The audit log: who changed prices, capacity, closures, campaigns, approvals, bookings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from booking.models import AuditEntry, User


def record(session: Session, user: User | None, action: str, target: object,
           organisation_id: int | None, **detail) -> None:
    session.add(AuditEntry(
        user_id=user.id if user is not None else None,
        organisation_id=organisation_id,
        action=action,
        target=f"{type(target).__name__}:{getattr(target, 'id', '')}",
        detail={k: (v if isinstance(v, int | float | bool | None) else str(v))
                for k, v in detail.items()},
    ))
