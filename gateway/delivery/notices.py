"""Notifications: which channels, in what order and when; fallback and escalation.

A Notification is one thing to tell a subscriber. Its route is the subscriber's ordered
channel list for that kind and urgency (or routing.default_channels). Each hop makes
Delivery rows (the outbox) for one channel:
  normal  first channel that reaches the subscriber; held until quiet hours end; the next
          channel when no attempt is left alive (permanent failure, dead, undelivered);
  urgent  never held. In quiet hours every channel at once; otherwise the first channel,
          then the next each `routing.escalate_after` seconds until acknowledged.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.delivery import message_render  # noqa: F401  registers "message": any process sends it
from gateway.delivery.quiet_hours import quiet_until
from gateway.delivery.render import RENDERERS, Renderers
from locales import tr
from models.db import (
    Delivery,
    DeliveryStatus,
    Notification,
    Role,
    RoutingPreference,
    Subscriber,
    Urgency,
    User,
)
from models.settings import RoutingSettings
from models.vocab import Channel, Language

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ALIVE = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT)
ALIVE_OR_DONE = (*ALIVE, DeliveryStatus.DELIVERED)


def utcnow() -> datetime:
    return datetime.now(UTC)


def hop_channels(entry: str) -> list[str]:
    """One hop of a route: "sms", or channels told at the same time, "telegram+email"."""
    return [c.strip() for c in entry.split("+") if c.strip()]


@dataclass(frozen=True)
class NewNotification:
    dedupe_key: str  # one notification per key, however often the cause is reported
    subscriber: Subscriber
    kind: str
    urgency: Urgency
    payload: dict[str, Any]
    call_id: int | None = None


@dataclass
class _Reach:
    """Where one subscriber can be reached: (address, language) per channel."""

    subscriber: Subscriber
    chats: list[tuple[str, str]]

    def addresses(self, channel: str) -> list[tuple[str, str]]:
        lang = self.subscriber.language
        if channel == Channel.TELEGRAM:
            return self.chats
        if channel == Channel.EMAIL:
            return [(self.subscriber.email, lang)] if self.subscriber.email else []
        if channel in (Channel.SMS, Channel.MMS):
            number = self.subscriber.mobile  # their own phone, never the forward target
            return [(number, lang)] if number else []
        return []


class Notices:
    def __init__(
        self,
        channels: Collection[str],
        settings: RoutingSettings,
        on_new: Callable[[], None] = lambda: None,
        clock: Clock = utcnow,
        renderers: Renderers = RENDERERS,
    ) -> None:
        # The channels this gateway has notifiers for: a live view, channels join at start-up.
        self.channels = channels
        self.default_route = [e.strip() for e in settings.default_channels.split(",") if e.strip()]
        self.escalate_after = timedelta(seconds=settings.escalate_after)
        self._on_new = on_new
        self._clock = clock
        # Each kind's words: filled by the features (gateway/renderers.py loads them all).
        self._renderers = renderers

    # -- creating ----------------------------------------------------------------------

    async def create(self, items: list[NewNotification], route: Sequence[str] | None = None) -> int:
        """Notifications and their first deliveries, in the caller's transaction, with a
        fixed number of queries for the batch. Returns how many deliveries are due."""
        items = await self._insert_new(items, route)
        if not items:
            return 0
        reach = await self._reach([i.subscriber for i in items])
        created = await Notification.filter(dedupe_key__in=[i.dedupe_key for i in items])
        now = self._clock()
        rows: list[Delivery] = []
        for n in created:
            rows.extend(self._first_hop(n, reach[n.subscriber_id], now))  # type: ignore[attr-defined]
        await Notification.bulk_update(created, fields=["next_hop", "escalate_at"])
        await Delivery.bulk_create(rows)
        due = sum(1 for r in rows if r.status is DeliveryStatus.PENDING)
        if due:
            self._on_new()
        return due

    async def _insert_new(
        self, items: list[NewNotification], route: Sequence[str] | None
    ) -> list[NewNotification]:
        """Insert the items whose keys are new; returns them. A concurrent transaction may
        write one of those keys after our look (PostgreSQL runs them side by side; SQLite
        one at a time): its commit fails our insert on the unique key, so the insert is a
        savepoint of its own, and a second look drops what the other wrote instead of
        failing the caller's whole transaction."""
        for last in (False, True):
            keys = [i.dedupe_key for i in items]
            seen = set(
                await Notification.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)
            )
            items = [i for i in items if i.dedupe_key not in seen]
            if not items:
                return []
            routes = await self._routes({i.subscriber.id for i in items})
            rows = [
                Notification(
                    dedupe_key=i.dedupe_key,
                    subscriber_id=i.subscriber.id,
                    call_id=i.call_id,
                    kind=i.kind,
                    urgency=i.urgency,
                    payload=i.payload,
                    route=route
                    or routes.get((i.subscriber.id, i.kind, i.urgency), self.default_route),
                )
                for i in items
            ]
            try:
                async with in_transaction():  # nested in the caller's: a savepoint
                    await Notification.bulk_create(rows)
                return items
            except IntegrityError:
                if last:
                    raise
        return []  # not reached: the last attempt returns or raises

    @staticmethod
    async def _routes(owners: set[int]) -> dict[tuple[int, str, str], list[str]]:
        prefs = await RoutingPreference.filter(subscriber_id__in=owners)
        return {
            (p.subscriber_id, p.kind, p.urgency): list(p.channels)  # type: ignore[attr-defined]
            for p in prefs
            if p.channels
        }

    @staticmethod
    async def _reach(subscribers: Iterable[Subscriber]) -> dict[int, _Reach]:
        by_id = {s.id: s for s in subscribers}
        chats: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for user in await User.filter(
            subscriber_id__in=list(by_id), role=Role.SUBSCRIBER, telegram_chat_id__isnull=False
        ).order_by("id"):
            owner = by_id[user.subscriber_id]  # type: ignore[attr-defined]
            chats[owner.id].append((str(user.telegram_chat_id), user.language or owner.language))
        return {i: _Reach(s, chats[i]) for i, s in by_id.items()}

    def _first_hop(self, n: Notification, reach: _Reach, now: datetime) -> list[Delivery]:
        s = reach.subscriber
        quiet = quiet_until(s.quiet_start, s.quiet_end, s.timezone, now)
        if n.urgency is Urgency.URGENT and quiet is not None:
            # Quiet hours are exactly when an urgent message must not wait for escalation.
            rows = [
                d
                for entry in n.route
                for c in hop_channels(entry)
                for d in self._deliveries(n, reach, c, now, "urgent in quiet hours: every channel")
            ]
            n.next_hop = len(n.route)
        else:
            rows, n.next_hop = self._hop(n, reach, 0, quiet or now)
        if not rows:
            log.warning("%s for %s: no channel of %s reaches them", n.kind, s.name, n.route)
            return [self._undeliverable(n, s, now)]
        self._schedule_escalation(n, now)
        return rows

    def _hop(
        self, n: Notification, reach: _Reach, start: int, at: datetime
    ) -> tuple[list[Delivery], int]:
        """Deliveries for the first hop from `start` on that reaches the subscriber (a hop
        is one channel, or several at once: "telegram+email")."""
        for index in range(start, len(n.route)):
            rows = [
                d
                for c in hop_channels(n.route[index])
                for d in self._deliveries(n, reach, c, at, "")
            ]
            if rows:
                return rows, index + 1
        return [], len(n.route)

    def _deliveries(
        self, n: Notification, reach: _Reach, channel: str, at: datetime, why: str
    ) -> list[Delivery]:
        if channel not in self.channels:
            return []
        urgent = n.urgency is Urgency.URGENT
        rows = []
        for address, lang in reach.addresses(channel):
            message = self._renderers.render(
                n.kind, channel, lang, n.payload, urgent=urgent, ref=n.id
            )
            rows.append(
                Delivery(
                    dedupe_key=f"{n.dedupe_key}:{channel}:{address}",
                    kind=n.kind,
                    channel=channel,
                    address=address,
                    subscriber_id=reach.subscriber.id,
                    call_id=n.call_id,  # type: ignore[attr-defined]
                    notification_id=n.id,
                    text=message.text,
                    subject=message.subject,
                    html=message.html,
                    attachments=n.payload.get("attachments", []),
                    buttons=[
                        [{"text": b.text, "data": b.data} for b in r] for r in message.buttons
                    ],
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=at,
                    reason=why,
                )
            )
        return rows

    def _schedule_escalation(self, n: Notification, now: datetime) -> None:
        more = n.next_hop < len(n.route)
        urgent_open = n.urgency is Urgency.URGENT and n.acknowledged_at is None
        n.escalate_at = now + self.escalate_after if urgent_open and more else None

    def _undeliverable(self, n: Notification, s: Subscriber, now: datetime) -> Delivery:
        # Nothing is lost silently: the admin sees a dead delivery saying why.
        missing = "no linked Telegram chat, email address or mobile number"
        return Delivery(
            dedupe_key=f"{n.dedupe_key}:none",
            kind=n.kind,
            channel=n.route[0] if n.route else Channel.TELEGRAM,
            address="",
            subscriber_id=s.id,
            call_id=n.call_id,  # type: ignore[attr-defined]
            notification_id=n.id,
            text="",
            status=DeliveryStatus.DEAD,
            last_error=f"nothing reaches this subscriber on {','.join(n.route)}: {missing}",
            next_attempt_at=now,
        )

    # -- moving on -----------------------------------------------------------------------

    async def fall_back(self, notification_id: int | None, reason: str) -> int:
        """An attempt failed for good: try the next channel unless another attempt of the
        same notification is still alive or got through. Returns deliveries created."""
        if notification_id is None:
            return 0
        alive = await Delivery.filter(
            notification_id=notification_id, status__in=ALIVE_OR_DONE
        ).exists()
        if alive:
            return 0
        return await self._advance(notification_id, f"fallback: {reason}")

    async def escalate_due(self) -> int:
        """Urgent notifications nobody acknowledged in time move on to their next channel."""
        due = await Notification.filter(
            escalate_at__lte=self._clock(), acknowledged_at__isnull=True
        ).only("id")
        created = 0
        for n in due:
            created += await self._advance(n.id, "escalated: not acknowledged")
        return created

    async def _advance(self, notification_id: int, why: str) -> int:
        n = await Notification.get(id=notification_id).select_related("subscriber")
        reach = (await self._reach([n.subscriber]))[n.subscriber.id]
        now = self._clock()
        s = n.subscriber
        quiet = quiet_until(s.quiet_start, s.quiet_end, s.timezone, now)
        at = quiet if quiet is not None and n.urgency is Urgency.NORMAL else now
        rows, n.next_hop = self._hop(n, reach, n.next_hop, at)
        for row in rows:
            row.reason = why[:255]
        self._schedule_escalation(n, now)
        await n.save(update_fields=["next_hop", "escalate_at"])
        fresh = [
            r
            for r in rows
            if not await Delivery.exists(dedupe_key=r.dedupe_key)  # a channel met twice
        ]
        if fresh:
            await Delivery.bulk_create(fresh)
            log.info("notification %s: %s -> %s", n.id, why, fresh[0].channel)
            self._on_new()
        return len(fresh)

    # -- answering -----------------------------------------------------------------------

    async def reply(
        self,
        channel: str,
        address: str,
        text: str,
        subscriber: Subscriber | None,
        subject: str = "",
    ) -> None:
        """An answer to a command, on the channel it came from, through the outbox."""
        await Delivery.create(
            dedupe_key=f"reply:{channel}:{address}:{secrets.token_hex(8)}",
            kind="reply",
            channel=channel,
            address=address,
            subscriber=subscriber,
            text=text,
            subject=subject,
            status=DeliveryStatus.PENDING,
            next_attempt_at=self._clock(),
        )
        self._on_new()

    # -- telling the operator ----------------------------------------------------------

    async def alert_admins(
        self,
        key: str,
        text: str,
        render: Callable[[str], str] | None = None,
        email: str = "",
    ) -> int:
        """Something an admin must see (a fax that could not be read): a Telegram message to
        every admin chat, once per key. With no admin chat it is a dead row saying so.
        `render(lang)`, when given, is the whole message in an admin's language (health
        alerts and their resolution); `email` also sends it to that address, when the
        email channel is configured."""

        def words(lang: str) -> str:
            if render is not None:
                return render(lang)
            return tr(lang, "Frontdesk alert: {text}", text=text)

        admins = await User.filter(role=Role.ADMIN, telegram_chat_id__isnull=False)
        now = self._clock()
        rows = [
            Delivery(
                dedupe_key=f"{key}:admin:{a.telegram_chat_id}",
                kind="admin_alert",
                channel=Channel.TELEGRAM,
                address=str(a.telegram_chat_id),
                text=words(a.language or Language.EN),
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
            )
            for a in admins
        ] or [
            Delivery(
                dedupe_key=f"{key}:admin:none",
                kind="admin_alert",
                channel=Channel.TELEGRAM,
                address="",
                text=text,
                status=DeliveryStatus.DEAD,
                last_error="no admin has a linked Telegram chat",
                next_attempt_at=now,
            )
        ]
        if email and Channel.EMAIL in self.channels:
            body = words(Language.EN)
            rows.append(
                Delivery(
                    dedupe_key=f"{key}:admin:email:{email}",
                    kind="admin_alert",
                    channel=Channel.EMAIL,
                    address=email,
                    subject=body.splitlines()[0][:255],
                    text=body,
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=now,
                )
            )
        fresh = [r for r in rows if not await Delivery.exists(dedupe_key=r.dedupe_key)]
        if fresh:
            await Delivery.bulk_create(fresh)
            self._on_new()
        log.error("admin alert: %s", text)
        return len(fresh)

    # -- acknowledging -------------------------------------------------------------------

    async def acknowledge(
        self,
        *,
        notification_id: int | None = None,
        subscriber_id: int | None = None,
        call_id: int | None = None,
    ) -> int:
        """The subscriber has seen it (a button, a reply): stop escalating. Narrowed by
        notification, subscriber (all theirs) or call (the notifications about it)."""
        scope = {
            key: value
            for key, value in (
                ("id", notification_id),
                ("subscriber_id", subscriber_id),
                ("call_id", call_id),
            )
            if value is not None
        }
        if not scope:
            return 0
        query = Notification.filter(acknowledged_at__isnull=True, **scope)
        return await query.update(acknowledged_at=self._clock(), escalate_at=None)
