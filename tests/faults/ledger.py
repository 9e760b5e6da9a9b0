"""The fault suite's ledger: what the database says was to be told, against what each
sandbox peer received.

Each copy a peer holds is tied to the Delivery it came from by the channel's own id where
it has one (the MM7 TransactionID and the email's X-Frontdesk-Reference carry our
Delivery id; an SMS's part ids are the SMSC's message ids, stored in `delivery_part`),
else by recipient and text (Telegram, and an SMS whose send a kill left unrecorded).
Then, counted over the notifications (the rows the product created, not what the test
meant to create):

- sent: distinct deliveries of which at least one copy reached their peer;
- lost: notifications none of whose deliveries reached a peer and stayed good (an SMS
  the network reported undeliverable does not count: its fallback must have arrived);
- duplicated: copies beyond the first, per delivery;
- unrecorded: copies whose channel id the database does not hold (a send that succeeded
  while its outcome was never stored: what a SIGKILL leaves, and what comes back twice).

The database is read through the ORM (`open_db` first), so the same ledger serves SQLite
and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from models.db import Delivery, DeliveryPart, DeliveryStatus
from models.settings import SmppSettings
from notifiers.sms import text as sms_text
from sandbox.mmsc import MmscServer
from sandbox.smsc import SmscServer
from sandbox.smtp_sink import SmtpSink
from sandbox.telegram_api import BotApiServer

# Statuses after which a copy at the peer does not tell the person (refused, undeliverable).
BAD = frozenset({DeliveryStatus.FAILED, DeliveryStatus.DEAD})


@dataclass(frozen=True)
class Copy:
    """One message as a peer received it."""

    channel: str
    peer_id: str  # the channel's id of this copy: part ids, Message-ID, MessageID, message_id
    delivery: int | None = None  # our Delivery id, when the copy carries it
    address: str = ""  # else: recipient and text
    text: str = ""


@dataclass(frozen=True)
class Row:
    id: int
    notification: int
    channel: str
    address: str
    text: str
    status: DeliveryStatus
    receipt: str


@dataclass
class ChannelCount:
    deliveries: int = 0
    sent: int = 0
    duplicated: int = 0
    unrecorded: int = 0
    stray: int = 0  # copies tied to no delivery of a notification (replies, menus...)


@dataclass
class Tally:
    name: str
    notifications: int
    lost: list[int] = field(default_factory=list)  # notification ids
    channels: dict[str, ChannelCount] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.channels.values())

    @property
    def duplicated(self) -> int:
        return sum(c.duplicated for c in self.channels.values())

    def duplicated_on(self, channels: Iterable[str]) -> int:
        return sum(self.channels[c].duplicated for c in channels if c in self.channels)

    def line(self) -> str:
        return (
            f"FAULT {self.name}: sent={self.sent} lost={len(self.lost)} "
            f"duplicated={self.duplicated}"
        )

    def detail(self) -> list[str]:
        rows = [
            f"  {name:<8} deliveries={c.deliveries} sent={c.sent} duplicated={c.duplicated}"
            f" unrecorded={c.unrecorded} stray={c.stray}"
            for name, c in sorted(self.channels.items())
        ]
        lost = f"  notifications={self.notifications} lost ids={self.lost[:10]}"
        return [self.line(), *rows, lost]


# -- what each peer received ---------------------------------------------------------------


def telegram_copies(bot: BotApiServer) -> list[Copy]:
    sends = [c for c in bot.sent if c.method.startswith("send")]
    return [
        Copy(
            "telegram",
            str((c.result or {}).get("message_id", "")),
            address=str(c.params.get("chat_id")),
            text=str(c.params.get("text", c.params.get("caption", ""))),
        )
        for c in sends
    ]


def sms_copies(smsc: SmscServer) -> list[Copy]:
    """One copy per whole message (its parts reassembled); peer id: its part ids."""
    return [
        Copy("sms", " ".join(m.part_ids), address=m.destination, text=m.text) for m in smsc.messages
    ]


def mms_copies(mmsc: MmscServer) -> list[Copy]:
    return [Copy("mms", s.message_id, delivery=_int(s.transaction_id)) for s in mmsc.submissions]


def email_copies(sink: SmtpSink) -> list[Copy]:
    return [
        Copy(
            "email",
            str(m.message["Message-ID"] or ""),
            delivery=_int(str(m.message["X-Frontdesk-Reference"] or "")),
        )
        for m in sink.messages
    ]


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


# -- the comparison ------------------------------------------------------------------------


async def rows() -> tuple[list[Row], dict[str, dict[str, int]]]:
    """Deliveries of notifications, and {channel: {part id: delivery id}}."""
    found = await Delivery.filter(notification_id__isnull=False).values_list(
        "id", "notification_id", "channel", "address", "text", "status", "receipt"
    )
    parts: dict[str, dict[str, int]] = defaultdict(dict)
    for channel, message_id, delivery in await DeliveryPart.filter(
        delivery_id__isnull=False
    ).values_list("channel", "message_id", "delivery_id"):
        parts[channel][message_id] = delivery
    return [Row(*r) for r in found], parts


async def tally(
    name: str,
    *,
    bot: BotApiServer | None = None,
    smsc: SmscServer | None = None,
    mmsc: MmscServer | None = None,
    smtp: SmtpSink | None = None,
) -> Tally:
    """The ledger of the open database against the peers given."""
    deliveries, parts = await rows()
    copies = [
        *(telegram_copies(bot) if bot else []),
        *(sms_copies(smsc) if smsc else []),
        *(mms_copies(mmsc) if mmsc else []),
        *(email_copies(smtp) if smtp else []),
    ]
    return compare(name, deliveries, parts, copies)


def compare(
    name: str, deliveries: list[Row], parts: dict[str, dict[str, int]], copies: list[Copy]
) -> Tally:
    by_id = {r.id: r for r in deliveries}
    by_text: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in deliveries:
        by_text[(r.channel, r.address.lstrip("+"), _as_received(r))].append(r)
    result = Tally(name, len({r.notification for r in deliveries}))
    for r in deliveries:
        result.channels.setdefault(r.channel, ChannelCount()).deliveries += 1
    received: dict[int, list[Copy]] = defaultdict(list)
    for copy in copies:
        count = result.channels.setdefault(copy.channel, ChannelCount())
        row = _owner(copy, by_id, by_text, parts, received)
        if row is None:
            count.stray += 1
            continue
        received[row.id].append(copy)
        if not _recorded(copy, row, parts):
            count.unrecorded += 1
    for delivery_id, got in received.items():
        count = result.channels[by_id[delivery_id].channel]
        count.sent += 1
        count.duplicated += len(got) - 1
    told = {r.notification for r in deliveries if r.id in received and r.status not in BAD}
    result.lost = sorted({r.notification for r in deliveries} - told)
    return result


def _as_received(row: Row) -> str:
    """The text as the peer gets it: an SMS is cut to its parts and spelt the GSM way
    (a narrow no-break space becomes a space) by the SMS channel."""
    if row.channel != "sms":
        return row.text
    return sms_text.as_sent(sms_text.cut(row.text, SmppSettings().max_parts))


def _owner(
    copy: Copy,
    by_id: dict[int, Row],
    by_text: dict[tuple[str, str, str], list[Row]],
    parts: dict[str, dict[str, int]],
    received: dict[int, list[Copy]],
) -> Row | None:
    if copy.delivery is not None:
        return by_id.get(copy.delivery)
    for part in copy.peer_id.split():
        if (delivery := parts.get(copy.channel, {}).get(part)) in by_id:
            return by_id[delivery]
    same = by_text.get((copy.channel, copy.address.lstrip("+"), copy.text), [])
    if not same:
        return None
    # Identical rows (same recipient and text): each takes a copy before any takes two.
    return min(same, key=lambda r: (len(received[r.id]), r.id))


def _recorded(copy: Copy, row: Row, parts: dict[str, dict[str, int]]) -> bool:
    """Whether the database holds this copy's channel id for its delivery."""
    if copy.channel == "sms":
        return all(parts.get("sms", {}).get(p) == row.id for p in copy.peer_id.split())
    return copy.peer_id == row.receipt
