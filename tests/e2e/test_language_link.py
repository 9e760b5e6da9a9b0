"""A chat's language comes from Telegram only when Telegram tells it (language_code is
optional): a chat linked without one speaks its subscriber's language, not English.

Through the running service: Runtime against the sandbox Bot API (test_channels_e2e's
stack), /start <code> injected with and without language_code.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.control import admin
from locales import tr
from models.db import Urgency, User
from sandbox.telegram_api import Call
from tests.e2e.test_channels_e2e import WAIT, Peers
from tests.e2e.test_channels_e2e import peers as peers  # the fixture

CHAT = 7070


def _sent_to(chat: int, containing: str = "") -> Callable[[Call], bool]:
    return lambda c: (
        c.method == "sendMessage"
        and c.params.get("chat_id") == chat
        and containing in c.params["text"]
    )


@pytest.mark.parametrize(
    ("language_code", "stored", "spoken"),
    [
        (None, None, "ru"),  # Telegram did not say: the subscriber's language
        ("de", None, "ru"),  # not one of ours: the same
        ("el-GR", "el", "el"),  # told: the chat's own language
    ],
)
async def test_a_chat_speaks_telegrams_language_only_when_told(
    peers: Peers, language_code: str | None, stored: str | None, spoken: str
) -> None:
    created = await admin.add_subscriber(
        name="Иванов", ddis=["2100077"], language="ru", timezone="Europe/Moscow"
    )
    peers.bot.inject_message(CHAT, f"/start {created.link_code}", language_code=language_code)
    linked = await peers.bot.wait_for(_sent_to(CHAT), timeout=WAIT)
    expected = tr(spoken, "Linked to {subscriber}. Missed calls will be reported here.")
    assert linked.params["text"] == expected.format(subscriber="Иванов")
    user = await User.get(telegram_chat_id=CHAT)
    assert user.language == stored

    sid = created.subscriber.id
    await admin.set_route(sid, "message", Urgency.NORMAL, ["telegram"])
    await admin.take_message(peers.runtime.gateway.notices, sid, "Перезвоните, пожалуйста.")
    told = await peers.bot.wait_for(_sent_to(CHAT, "Перезвоните"), timeout=WAIT)
    heading = tr(spoken, "Message for {subscriber}", subscriber="Иванов")
    assert told.params["text"].startswith(heading)
