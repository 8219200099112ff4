"""Consent mails through the outbox (booking.services.mail): the request to the operator
whose unit a municipality proposes as a campaign slot, and the operator's answer to the
municipality. Written in the transaction that saves the slot or the answer (it rolls
back: no mail; it commits: the mail is in the outbox even if SMTP is down), rendered
then, one message per person, in each person's own language; sent by `flask outbox run`.

Who gets them: the members of the organisation concerned whose User.notify_consents is
on (the switch on the account page).
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from booking.models import CampaignSlot, OutboxMessage, User
from booking.services import mail
from booking.services.calendars import public_url

KIND_CONSENT_REQUEST = "consent_request"
KIND_CONSENT_ANSWER = "consent_answer"


def _recipients(users: list[User]) -> list[User]:
    """Each person once, those who want consent mail."""
    return list({u.id: u for u in users if u.notify_consents}.values())


def _subject(kind: str, slot: CampaignSlot, loc: str) -> str:
    names = {"campaign": slot.campaign.display_name(loc),
             "space": slot.unit.space.display_name(loc)}
    if kind == KIND_CONSENT_REQUEST:
        return _("【同意のお願い】%(campaign)s: %(space)s", **names)
    if slot.operator_consent:
        return _("【同意されました】%(campaign)s: %(space)s", **names)
    return _("【同意されませんでした】%(campaign)s: %(space)s", **names)


def _enqueue(session: Session, kind: str, slot: CampaignSlot, people: list[User]) -> list[OutboxMessage]:
    url = f"{public_url()}/campaigns/consents" if kind == KIND_CONSENT_REQUEST \
        else f"{public_url()}/municipality/"
    rows = []
    for user in _recipients(people):
        loc = user.locale if user.locale in ("ja", "en") else "ja"
        def context(user: User = user) -> dict:
            return {"slot": slot, "campaign": slot.campaign, "unit": slot.unit,
                    "space": slot.unit.space, "url": url, "recipient_name": user.name,
                    # User text: plain, cut, without anything a mail client links.
                    "reason": mail.reason_for_mail(slot.consent_reason, _("[リンク省略]"))
                    if slot.consent_reason else ""}

        def subject(loc: str = loc) -> str:
            return _subject(kind, slot, loc)

        rows.append(mail.enqueue_notice(session, kind, user.email, loc,
                                        f"campaigns/mail/{kind}", subject, context))
    return rows


def enqueue_consent_request(session: Session, slot: CampaignSlot) -> list[OutboxMessage]:
    """The request to the members of the organisation owning the slot's unit."""
    members = [m.user for m in slot.unit.space.organisation.memberships]
    return _enqueue(session, KIND_CONSENT_REQUEST, slot, members)


def enqueue_consent_answer(session: Session, slot: CampaignSlot) -> list[OutboxMessage]:
    """The operator's answer (slot.operator_consent, with consent_reason when declined)
    to the members of the municipality running the slot's campaign."""
    members = [m.user for m in slot.campaign.organisation.memberships]
    return _enqueue(session, KIND_CONSENT_ANSWER, slot, members)
