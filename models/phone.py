"""Phone numbers in one form (E.164) so that lookups by number never miss."""

from __future__ import annotations

import phonenumbers


class InvalidNumber(ValueError):
    """The text is not a phone number we can route to."""


def to_e164(text: str, default_region: str = "GR") -> str:
    """Normalise a dialled or displayed number to E.164; raise InvalidNumber otherwise.

    The default region applies only to numbers written without a country code.
    """
    cleaned = text.strip()
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    try:
        parsed = phonenumbers.parse(cleaned, None if cleaned.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {text!r}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber(f"not a possible phone number: {text!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def caller_e164(text: str, default_region: str = "GR") -> str | None:
    """Caller ids are often withheld or internal; None when the number is not usable."""
    if not text or text in {"<unknown>", "anonymous", "Anonymous"}:
        return None
    try:
        return to_e164(text, default_region)
    except InvalidNumber:
        return None
