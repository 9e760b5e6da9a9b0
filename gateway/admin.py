"""Admin operations on subscribers, DDIs and link codes (used by the CLI and, later, menus)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.transactions import in_transaction

from gateway.messages import KINDS, MESSAGE
from gateway.notices import NewNotification, Notices, hop_channels
from gateway.pins import hash_pin
from gateway.quiet_hours import BadQuietHours, parse_hhmm
from locales import LANGUAGES
from models.db import Ddi, LinkCode, Role, RoutingPreference, Subscriber, Urgency, User
from models.events import Scenario
from models.phone import to_e164
from models.settings import CHANNELS, Settings

LINK_CODE_TTL = timedelta(days=7)


class AdminError(ValueError):
    """A request an admin made that cannot be carried out, with the reason."""


@dataclass(frozen=True)
class NewSubscriber:
    subscriber: Subscriber
    link_code: str


def _check(language: str, timezone: str) -> None:
    if language not in LANGUAGES:
        raise AdminError(f"language must be one of {', '.join(LANGUAGES)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AdminError(f"unknown time zone {timezone!r}") from exc


async def add_subscriber(
    *,
    name: str,
    ddis: list[str],
    language: str,
    timezone: str,
    mobile: str | None = None,
    instructions: str = "",
    region: str = "GR",
) -> NewSubscriber:
    _check(language, timezone)
    forward = to_e164(mobile, region) if mobile else None
    for number in ddis:
        if not number.lstrip("+").isdigit():
            raise AdminError(f"DDI {number!r} must be digits")
        if await Ddi.exists(number=number):
            raise AdminError(f"DDI {number} already belongs to a subscriber")
    async with in_transaction():
        subscriber = await Subscriber.create(
            name=name,
            language=language,
            timezone=timezone,
            scenario=Scenario.AGENT,
            forward_number=forward,
            instructions=instructions,
        )
        for number in ddis:
            await Ddi.create(number=number, subscriber=subscriber)
        code = await new_link_code(subscriber)
    return NewSubscriber(subscriber, code)


async def new_link_code(subscriber: Subscriber) -> str:
    code = secrets.token_hex(4)
    await LinkCode.create(
        code=code, subscriber=subscriber, expires_at=datetime.now(UTC) + LINK_CODE_TTL
    )
    return code


async def link_chat(code: str, chat_id: int, display_name: str, language: str | None) -> Subscriber:
    """Redeem a one-time code: the chat becomes a recipient for that subscriber."""
    now = datetime.now(UTC)
    async with in_transaction():
        link = await LinkCode.get_or_none(code=code, used_at__isnull=True).select_related(
            "subscriber"
        )
        if link is None or link.expires_at < now:
            raise AdminError("invalid or expired code")
        link.used_at = now
        await link.save(update_fields=["used_at"])
        user = await User.get_or_none(telegram_chat_id=chat_id)
        if user is None:
            user = User(telegram_chat_id=chat_id)
        user.name, user.role, user.subscriber = display_name, Role.SUBSCRIBER, link.subscriber
        user.language = language if language in LANGUAGES else None
        await user.save()
    return link.subscriber


def configured_channels(settings: Settings) -> set[str]:
    """The channels a gateway with these settings can send on (a route skips the others)."""
    wanted = {
        "telegram": bool(settings.telegram.token),
        "email": bool(settings.smtp.host),
        "sms": bool(settings.smpp.host),
        "mms": bool(settings.mms.url),
    }
    return {channel for channel, on in wanted.items() if on}


async def set_contact_points(
    subscriber_id: int,
    *,
    email: str | None = None,
    mobile: str | None = None,
    quiet_hours: str | None = None,
    region: str = "GR",
    pin: str | None = None,
) -> Subscriber:
    """Email, mobile (forwarding, SMS, MMS) and quiet hours ("22:00-07:00", or "" for none)."""
    subscriber = await _subscriber(subscriber_id)
    if email is not None:
        if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
            raise AdminError(f"{email!r} is not an email address")
        subscriber.email = email or None
    if mobile is not None:
        subscriber.forward_number = to_e164(mobile, region) if mobile else None
    if quiet_hours is not None:
        start, _, end = quiet_hours.partition("-")
        if quiet_hours:
            try:
                parse_hhmm(start)
                parse_hhmm(end)
            except BadQuietHours as exc:
                raise AdminError(f"quiet hours must look like 22:00-07:00: {exc}") from exc
        subscriber.quiet_start, subscriber.quiet_end = (start, end) if quiet_hours else (None, None)
    if pin is not None:
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            raise AdminError("the SMS PIN must be 4 to 8 digits")
        subscriber.sms_pin_hash = hash_pin(pin)
        subscriber.sms_pin_failures, subscriber.sms_locked_until = 0, None
    await subscriber.save()
    return subscriber


async def set_route(subscriber_id: int, kind: str, urgency: Urgency, channels: list[str]) -> None:
    """The subscriber's channels, in order, for one kind of event and urgency."""
    subscriber = await _subscriber(subscriber_id)
    if kind not in KINDS:
        raise AdminError(f"kind must be one of {', '.join(KINDS)}")
    named = [c for hop in channels for c in hop_channels(hop)]
    unknown = [c for c in named if c not in CHANNELS]
    if unknown or not named or len(set(named)) != len(named):
        raise AdminError(
            f"channels must be distinct, from {', '.join(CHANNELS)}; "
            "join channels told at once with '+' (telegram+email)"
        )
    await RoutingPreference.update_or_create(
        {"channels": channels}, subscriber=subscriber, kind=kind, urgency=urgency
    )


async def take_message(
    notices: Notices,
    subscriber_id: int,
    text: str,
    *,
    urgent: bool = False,
    caller_number: str = "",
    caller_name: str = "",
    region: str = "GR",
) -> str:
    """A message taken for the subscriber (by an agent or the operator); returns its key."""
    subscriber = await _subscriber(subscriber_id)
    if not text.strip():
        raise AdminError("the message is empty")
    number = to_e164(caller_number, region) if caller_number else ""
    key = f"{MESSAGE}:{secrets.token_hex(8)}"
    payload = {
        "subscriber": subscriber.name,
        "caller_number": number,
        "caller_name": caller_name,
        "contact_name": None,
        "at": datetime.now(UTC).isoformat(),
        "timezone": subscriber.timezone,
        "text": text.strip(),
    }
    urgency = Urgency.URGENT if urgent else Urgency.NORMAL
    async with in_transaction():
        await notices.create([NewNotification(key, subscriber, MESSAGE, urgency, payload)])
    return key


async def _subscriber(subscriber_id: int) -> Subscriber:
    subscriber = await Subscriber.get_or_none(id=subscriber_id)
    if subscriber is None:
        raise AdminError(f"no subscriber {subscriber_id}")
    return subscriber
