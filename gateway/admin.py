"""Admin operations on subscribers, DDIs and link codes (used by the CLI and, later, menus)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.transactions import in_transaction

from locales import LANGUAGES
from models.db import Ddi, LinkCode, Role, Subscriber, User
from models.events import Scenario
from models.phone import to_e164

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
