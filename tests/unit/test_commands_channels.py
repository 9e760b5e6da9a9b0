"""Every command of the grammar on every channel: Telegram text, SMS and email replies.

A table sweep through the command desk itself (the AMI is a stand-in that accepts every
action): none raises, each gets an answer, and a command the grammar understood is not
answered "Not understood". `lang` is the one that once assumed a Telegram chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from gateway.control import admin, pins
from gateway.control import grammar as cmd
from gateway.control.desk import CommandDesk
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from locales import LANGUAGES, tr
from models.db import AuditEntry, Delivery, InboundMessage, Subscriber
from models.settings import RoutingSettings

CHAT = 5150
MOBILE = "+306912345678"
EMAIL = "office@example.org"
PIN = "4821"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a Monday morning
CHANNELS = ("telegram", "sms", "email")
# Beyond each language's examples: the shapes the examples do not show.
EXTRA = [
    "forward",
    "callback +30 210 123 4567",
    "lang zh",
    "book tomorrow 11:00 Smith - check",
    "/status",
    "/scenario",
    "/start",
    "xyzzy",
    "",
]
# "Not understood. Did you mean: ..." in each language, up to the suggestion.
NOT_UNDERSTOOD = tuple(
    tr(lang, "Not understood. Did you mean: {command}?").split("{")[0] for lang in LANGUAGES
)
TEXTS = sorted({text for lang in LANGUAGES for text in cmd.examples(lang)} | set(EXTRA))


class AcceptingAmi:
    """The PBX side: every action succeeds (no call is ringing, no channel exists)."""

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []

    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        self.actions.append(action)
        return {"Response": "Success", "Value": ""}


@dataclass
class Desk:
    desk: CommandDesk
    subscriber_id: int

    async def send(self, channel: str, text: str) -> str:
        """The answer the sender gets on that channel."""
        if channel == "telegram":
            return await self.desk.from_telegram(CHAT, text, NOW)
        sender = MOBILE if channel == "sms" else EMAIL
        message = await InboundMessage.create(
            channel=channel,
            sender=sender,
            recipient="frontdesk",
            text=f"{PIN} {text}",
            subscriber_id=self.subscriber_id,
            received_at=NOW,
        )
        await self.desk.from_text(message, NOW)
        reply = await Delivery.filter(kind="reply", channel=channel).order_by("-id").first()
        assert reply is not None and reply.address == sender
        return reply.text


@pytest.fixture
async def desk(db: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Desk]:
    monkeypatch.setattr(pins, "ITERATIONS", 1_000)  # PIN hashing at full strength is slow
    created = await admin.add_subscriber(
        name="Γραφείο", ddis=["2100001"], language="el", timezone="Europe/Athens", mobile=MOBILE
    )
    sid = created.subscriber.id
    await admin.set_contact_points(sid, email=EMAIL, pin=PIN)
    await admin.link_chat(created.link_code, CHAT, "Office", "el")
    notices = Notices({"telegram", "sms", "email"}, RoutingSettings())
    yield Desk(CommandDesk(Control(AcceptingAmi()), notices), sid)


async def _problem(desk: Desk, channel: str, text: str) -> str | None:
    """What went wrong with one command on one channel (None: it was answered)."""
    try:
        answer = await desk.send(channel, text)
    except Exception as exc:
        return f"raised {exc!r}"
    if not answer.strip():
        return "no answer"
    [entry] = await AuditEntry.filter(channel=channel).order_by("-id").limit(1)
    if entry.result == "failed":
        return f"failed: {entry.detail}"
    timezone = (await Subscriber.get(id=desk.subscriber_id)).timezone
    understood = not isinstance(cmd.parse(text, "el", timezone, NOW), cmd.Unknown)
    if understood and answer.startswith(NOT_UNDERSTOOD):
        return f"answered {answer!r}"
    return None


@pytest.mark.parametrize("channel", CHANNELS)
async def test_every_command_answers_on_every_channel(desk: Desk, channel: str) -> None:
    # One subscriber per channel takes the whole table in turn (state carries over, as it
    # would for a real subscriber): every row must be answered.
    problems = {text: await _problem(desk, channel, text) for text in TEXTS}
    assert {text: p for text, p in problems.items() if p} == {}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_lang_works_on_every_channel(desk: Desk, channel: str) -> None:
    assert await desk.send(channel, "lang ru") == tr("ru", "Language: English.")
    assert (await Subscriber.get(id=desk.subscriber_id)).language == "ru"
    # The next answer, on any channel, is in the new language.
    assert await desk.send("sms", "help") == "\n".join(
        [tr("ru", "You can write:"), *cmd.examples("ru")]
    )
