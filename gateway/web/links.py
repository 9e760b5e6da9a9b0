"""Magic links: a random token in the URL, its SHA-256 in the database, used once.

Redeeming is one conditional UPDATE (unused and unexpired), so two browsers racing with one
link get one session between them. Link requests are counted per key and clock hour in
`WebLinkBucket`, also by conditional UPDATE, so racing requests cannot pass the limit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from models.db import User
from models.settings import WebSettings
from models.web import WebLink, WebLinkBucket

DEFAULT_MINUTES = WebSettings.link_minutes  # web.link_minutes unless told otherwise
TOKEN_BYTES = 32


def digest(secret: str) -> str:
    """What we keep of a token or session id."""
    return hashlib.sha256(secret.encode()).hexdigest()


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/desk/auth/{token}"


async def issue_link(
    subscriber_id: int,
    base_url: str,
    minutes: int = DEFAULT_MINUTES,
    now: datetime | None = None,
) -> str:
    """A fresh single-use link for the subscriber's desk: the full URL."""
    moment = now or datetime.now(UTC)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await WebLink.create(
        token_hash=digest(token),
        subscriber_id=subscriber_id,
        expires_at=moment + timedelta(minutes=minutes),
    )
    return link_url(base_url, token)


async def redeem(token: str, now: datetime) -> int | None:
    """The subscriber a valid link opens (and the link is used up), else None."""
    if not token or len(token) > 200:
        return None
    hashed = digest(token)
    used = await WebLink.filter(token_hash=hashed, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now
    )
    if used != 1:
        return None
    link = await WebLink.get(token_hash=hashed)
    return int(link.subscriber_id)  # type: ignore[attr-defined]


async def allow_request(keys: list[str], limit: int, now: datetime) -> bool:
    """Count one link request against every key (address, client IP) for this clock hour;
    False (and nothing counted for the keys after the first full one) once any is full."""
    window = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for key in keys:
        hashed = digest(key)
        try:
            await WebLinkBucket.create(key=hashed, window=window, count=1)
            continue
        except IntegrityError:  # the hour's bucket exists: count up while below the limit
            pass
        counted = await WebLinkBucket.filter(key=hashed, window=window, count__lt=limit).update(
            count=F("count") + 1
        )
        if counted != 1:
            return False
    # Old hours are of no use any more.
    await WebLinkBucket.filter(window__lt=window - timedelta(hours=1)).delete()
    return True


class DeskLinks:
    """What the bot's /desk needs: a link for a linked chat's subscriber."""

    def __init__(self, base_url: Callable[[], str], minutes: int) -> None:
        self.base_url = base_url  # known once the gateway listens (its port may be 0)
        self.minutes = minutes

    async def for_chat(self, chat_id: int) -> tuple[str, str] | None:
        """(url, language) for the chat's subscriber, or None for an unlinked chat."""
        user = await User.get_or_none(telegram_chat_id=chat_id).select_related("subscriber")
        if user is None or user.subscriber is None:
            return None
        subscriber = user.subscriber
        url = await issue_link(subscriber.id, self.base_url(), self.minutes)
        return url, user.language or subscriber.language
