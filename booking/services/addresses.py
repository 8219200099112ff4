"""The one rule for an e-mail address, on every way in: sign-up (form, API, `flask
create-admin`), booking attendees (form, API, service) and the outbox worker.

An address is kept and sent in one form: ASCII, lower case, its domain in IDNA's ASCII
form (例え.jp → xn--r8jz45g.jp), so that SMTP can always carry it. We do not rely on
SMTPUTF8, so a local part (before the @) with other than ASCII characters is refused with
a message that says so. Checked by the `email-validator` library, without DNS: no quoted
local parts, no IP-literal domains, no display names, no special-use domains (.invalid,
.localhost, .test …), at most 254 characters in the ASCII form.

The local part is lower-cased as well: that is how addresses have always been stored here
(log-in, the attendee check), and mail systems treat it case-insensitively in practice.
"""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field

from booking.services.errors import MESSAGES, DomainError

MAX_LENGTH = 254  # RFC 5321's limit on a forward path, in the form sent


class AddressError(DomainError, ValueError):
    """A refused address: code "bad_email" (so that every view already puts it beside the
    address field), `reason` "not_ascii" or "invalid" choosing the message. A DomainError
    for services and views (422); a ValueError too, so that a pydantic validator turns it
    into a field error of the API's 422 problem.

    Its message names the address, which matters when one of many attendees is wrong."""

    def __init__(self, raw: object, reason: str = "invalid", detail: str = "") -> None:
        super().__init__("bad_email", email=_shown(raw), reason=reason)
        self.reason = reason
        self.detail = detail  # what email-validator said (English), for logs and the outbox

    @property
    def message(self) -> str:
        key = "email_not_ascii" if self.reason == "not_ascii" else self.code
        text = str(MESSAGES[key][1])
        return f"{text} ({self.extra['email']})" if self.extra["email"] else text

    def __str__(self) -> str:
        return self.message

    @property
    def explanation(self) -> str:
        """In English, for logs, the command line and the outbox (no request locale)."""
        if self.reason == "not_ascii":
            why = "non-ASCII characters before the @ (SMTPUTF8 is not used)"
        else:
            why = self.detail or "not an e-mail address"
        return f"invalid address {self.extra['email']!r}: {why}"


def _shown(raw: object) -> str:
    text = " ".join(str(raw or "").split())  # no line breaks or NULs in a message
    text = "".join(c for c in text if c.isprintable())
    return text if len(text) <= 80 else text[:79] + "…"


def normalise(raw: str) -> str:
    """The address as it is stored and sent, or AddressError (reason "not_ascii" for a
    local part that SMTP without SMTPUTF8 cannot carry, "invalid" otherwise)."""
    text = (raw if isinstance(raw, str) else "").strip()
    if not text or len(text) > 4 * MAX_LENGTH:
        raise AddressError(raw)
    local, at, _domain = text.rpartition("@")
    if at and local and not local.isascii() and not any(c in local for c in "\r\n\0"):
        raise AddressError(raw, "not_ascii")
    try:
        checked = validate_email(
            text, check_deliverability=False, allow_smtputf8=False, allow_quoted_local=False,
            allow_domain_literal=False, allow_display_name=False, allow_empty_local=False)
    except EmailNotValidError as error:
        raise AddressError(raw, "invalid", str(error)) from None
    if checked.ascii_email is None:  # only when SMTPUTF8 is allowed, which it is not here
        raise AddressError(raw, "not_ascii")
    address = checked.ascii_email.lower()
    if len(address) > MAX_LENGTH:
        raise AddressError(raw, "invalid", f"longer than {MAX_LENGTH} characters")
    return address


def lookup_key(raw: str) -> str:
    """The form to look an address up by (log-in, rate-limit keys): the rule's when the
    address passes it, else the old trimmed lower case (never stored, only compared)."""
    try:
        return normalise(raw)
    except AddressError:
        return (raw if isinstance(raw, str) else "").strip().lower()


def lookup_forms(raw: str) -> set[str]:
    """Every form an account's address may be stored in: the rule's, and the trimmed
    lower case that accounts made before the rule were stored in (例え.jp, not xn--)."""
    return {lookup_key(raw), (raw if isinstance(raw, str) else "").strip().lower()}


def why_not_sendable(raw: str) -> str | None:
    """For the outbox worker: None when the address can be sent to, or the reason, in
    English for the operator's log (rows written before the rule may hold anything)."""
    try:
        normalise(raw)
    except AddressError as error:
        return f"recipient: {error.explanation}"
    return None


# The API's address field: the same rule as a pydantic type (a refusal is a field error
# of the 422 problem; the value is the normalised address).
Address = Annotated[str, Field(max_length=MAX_LENGTH, json_schema_extra={
    "format": "email",
    "description": "ASCII before the @ (SMTPUTF8 is not used); an internationalised "
                   "domain is accepted and kept in its ASCII (xn--) form; stored in lower case.",
}), AfterValidator(normalise)]
