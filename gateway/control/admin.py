"""Admin operations on subscribers, DDIs and link codes (used by the CLI and, later, menus)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.control.pins import hash_pin
from gateway.delivery.message_render import MessagePayload
from gateway.delivery.notices import NewNotification, Notices, hop_channels
from gateway.delivery.quiet_hours import BadQuietHours, parse_hhmm
from models.db import Ddi, LinkCode, Role, RoutingPreference, Subscriber, Urgency, User
from models.phone import to_e164
from models.settings import Settings
from models.vocab import CHANNELS, KINDS, LANGUAGES, Channel, Kind, Scenario

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
    own = await _free_mobile(mobile, region) if mobile else None
    for number in ddis:
        if not number.lstrip("+").isdigit():
            raise AdminError(f"DDI {number!r} must be digits")
        if await Ddi.exists(number=number):
            raise AdminError(f"DDI {number} already belongs to a subscriber")
    async with _one_mobile_each(own), in_transaction():
        subscriber = await Subscriber.create(
            name=name,
            language=language,
            timezone=timezone,
            scenario=Scenario.AGENT,
            mobile=own,  # forward_number stays None: the forward scenario rings the mobile
            instructions=instructions,
        )
        for number in ddis:
            await Ddi.create(number=number, subscriber=subscriber)
        code = await new_link_code(subscriber)
    return NewSubscriber(subscriber, code)


async def _free_mobile(mobile: str, region: str, subscriber_id: int | None = None) -> str:
    """The number in E.164, if no other subscriber has it as its mobile: an SMS from it
    must identify one subscriber."""
    number = to_e164(mobile, region)
    owner = await Subscriber.filter(mobile=number).exclude(id=subscriber_id or 0).first()
    if owner is not None:
        raise AdminError(
            f"mobile {number} is already subscriber {owner.id}'s; a number can be the mobile "
            "of one subscriber only (forwarding to it is fine: subscriber set --forward)"
        )
    return number


@asynccontextmanager
async def _one_mobile_each(number: str | None) -> AsyncIterator[None]:
    """The unique index settles a race between two admins; say so plainly."""
    try:
        yield
    except IntegrityError as exc:
        if number and await Subscriber.exists(mobile=number):
            raise AdminError(f"mobile {number} is already another subscriber's") from exc
        raise


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
        if link is None or link.expires_at < now or link.subscriber is None:
            raise AdminError("invalid or expired code")  # (a staff code links elsewhere)
        subscriber = link.subscriber
        link.used_at = now
        await link.save(update_fields=["used_at"])
        user = await User.get_or_none(telegram_chat_id=chat_id)
        if user is None:
            user = User(telegram_chat_id=chat_id)
        user.name, user.role, user.subscriber = display_name, Role.SUBSCRIBER, subscriber
        user.language = language if language in LANGUAGES else None
        await user.save()
    return subscriber


def configured_channels(settings: Settings) -> set[str]:
    """The channels a gateway with these settings can send on (a route skips the others)."""
    wanted = {
        Channel.TELEGRAM: bool(settings.telegram.token),
        Channel.EMAIL: bool(settings.smtp.host),
        Channel.SMS: bool(settings.smpp.host),
        Channel.MMS: bool(settings.mms.url),
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
    forward: str | None = None,
) -> Subscriber:
    """Email, mobile (SMS identity, SMS, MMS, call back; forwarding unless `forward` is
    set), forward target and quiet hours ("22:00-07:00"); "" removes a value."""
    subscriber = await _subscriber(subscriber_id)
    changes: dict[str, Any] = {}
    if email is not None:
        changes["email"] = _email(email)
    if mobile is not None:
        changes["mobile"] = await _free_mobile(mobile, region, subscriber.id) if mobile else None
    if forward is not None:
        changes["forward_number"] = to_e164(forward, region) if forward else None
    if quiet_hours is not None:
        changes["quiet_start"], changes["quiet_end"] = _quiet_hours(quiet_hours)
    if pin is not None:
        changes |= _new_pin(pin)
    if changes:
        # Only these columns: saving the whole row would undo PIN failures counted meanwhile.
        async with _one_mobile_each(changes.get("mobile")):
            await Subscriber.filter(id=subscriber.id).update(**changes)
    return await _subscriber(subscriber_id)


def _email(email: str) -> str | None:
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise AdminError(f"{email!r} is not an email address")
    return email or None


def _quiet_hours(quiet_hours: str) -> tuple[str | None, str | None]:
    if not quiet_hours:
        return None, None
    start, _, end = quiet_hours.partition("-")
    try:
        parse_hhmm(start)
        parse_hhmm(end)
    except BadQuietHours as exc:
        raise AdminError(f"quiet hours must look like 22:00-07:00: {exc}") from exc
    return start, end


def _new_pin(pin: str) -> dict[str, Any]:
    if not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise AdminError("the SMS PIN must be 4 to 8 digits")
    return {"sms_pin_hash": hash_pin(pin), "sms_pin_failures": 0, "sms_locked_until": None}


async def set_route(
    subscriber_id: int, kind: str, urgency: Urgency, channels: Sequence[str]
) -> None:
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
        {"channels": [str(hop) for hop in channels]},
        subscriber=subscriber,
        kind=kind,
        urgency=urgency,
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
    key = f"{Kind.MESSAGE}:{secrets.token_hex(8)}"
    payload = MessagePayload(
        subscriber=subscriber.name,
        caller_number=number,
        caller_name=caller_name,
        contact_name=None,
        at=datetime.now(UTC),
        timezone=subscriber.timezone,
        text=text.strip(),
    )
    urgency = Urgency.URGENT if urgent else Urgency.NORMAL
    notice = NewNotification(key, subscriber, Kind.MESSAGE, urgency, payload.to_json())
    async with in_transaction():
        await notices.create([notice])
    return key


async def _subscriber(subscriber_id: int) -> Subscriber:
    subscriber = await Subscriber.get_or_none(id=subscriber_id)
    if subscriber is None:
        raise AdminError(f"no subscriber {subscriber_id}")
    return subscriber
