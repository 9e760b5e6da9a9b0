"""Putting a live call through from its card, and supervisors listening in, end to end:
sandbox AMI (TCP) -> gateway and bot -> sandbox Bot API, with the AMI frames the gateway
sends asserted at the sandbox AMI and what each chat sees asserted at the Bot API.

Two teams: North (Anna, Boris; led by Sofia) and South (Xenia; led by Theo). Anna answers
a call of the subscriber's; the PBX's side is the call script's frames up to the moment
the caller would hang up, so the call stays up while the desk acts on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from gateway.control import admin, callbacks
from models.database import migrate
from models.db import AuditEntry, Notification, Role, Urgency, User
from models.events import CallSnapshot
from models.settings import load_settings, with_section
from models.staff import Agent, Card, Conversation, Presence, Team
from sandbox.ami_server import AmiServer, header
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer, Call
from tests.pg_cluster import database_url_for

TOKEN = "123456:TRANSFER-token"
SECRET = "transfer-secret"
SUBSCRIBER_CHAT = 4300
DDI = "2100077"
MOBILE = "+306944000077"
CALLER = "+302101234567"
WAIT = 10.0
CHATS = {"anna": 501, "boris": 502, "xenia": 503, "sofia": 510, "theo": 520}


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    agents: dict[str, Agent]
    calls: CallFactory

    async def answered_call(self, agent: str = "101") -> tuple[str, str]:
        """A call Anna (agent101) answers; returns (linkedid, caller channel)."""
        frames = self.calls.agent_answered(DDI, CALLER, "Μαρία Νίκου", agents=(agent,))
        up = frames[: next(i for i, f in enumerate(frames) if f["Event"] == "HangupRequest")]
        linkedid = frames[0]["Linkedid"]
        answered = asyncio.Event()

        def observe(snap: CallSnapshot) -> None:
            if snap.linkedid == linkedid and snap.answered_at is not None:
                answered.set()

        self.runtime.gateway.observers.append(observe)
        try:
            await self.ami.play(up)
            await asyncio.wait_for(answered.wait(), WAIT)
        finally:
            self.runtime.gateway.observers.remove(observe)
        call = self.runtime.gateway.tracker.calls[linkedid]
        return linkedid, call.caller_channel

    async def card(self, who: str, linkedid: str) -> Card:
        """The agent's card of the call (the cards desk pops it; made here if it did not)."""
        await self.runtime.gateway.cards.drain()
        agent = self.agents[who]
        card = await Card.get_or_none(agent_id=agent.id, linkedid=linkedid)
        if card is None:
            subscriber_id = (await admin_subscriber()).id
            card = await Card.create(
                agent=agent,
                linkedid=linkedid,
                subscriber_id=subscriber_id,
                caller_number=CALLER,
                chat_id=CHATS[who],
                text="card",
            )
        return card

    def press(self, who: str, data: str) -> None:
        self.bot.inject_callback(CHATS[who], 1, data)

    def say(self, who: str, text: str) -> None:
        self.bot.inject_message(CHATS[who], text)

    async def answer_to(self, who: str, data: str) -> str:
        """Press a button and wait for the query's answer: its toast."""
        before = len(self.bot.requests)
        self.press(who, data)
        call = await self.bot.wait_for(
            lambda c: c.method == "answerCallbackQuery" and self.bot.requests.index(c) >= before,
            timeout=WAIT,
        )
        return str(call.params.get("text", ""))

    async def message_to(self, who: str, contains: str, after: int = 0) -> Call:
        chat = CHATS[who] if who in CHATS else SUBSCRIBER_CHAT
        return await self.bot.wait_for(
            lambda c: (
                c.method in ("sendMessage", "editMessageText")
                and str(c.params.get("chat_id")) == str(chat)
                and contains in str(c.params.get("text", ""))
                and self.bot.requests.index(c) >= after
            ),
            timeout=WAIT,
        )

    def actions(self, name: str, since: int = 0) -> list[dict[str, str]]:
        return [a for a in self.ami.actions[since:] if header(a, "Action").lower() == name.lower()]


async def admin_subscriber() -> Any:
    from models.db import Ddi

    line = await Ddi.get(number=DDI).select_related("subscriber")
    return line.subscriber


async def _staff(
    name: str, role: Role, team: Team | None, interface: str | None, chat: int
) -> Agent:
    user = await User.create(name=name, role=role, telegram_chat_id=chat, language="en")
    return await Agent.create(user=user, team=team, interface=interface, presence=Presence.READY)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        s = load_settings(None, environ={})
        s = with_section(s, "database", url=database_url_for(tmp_path / "xfer.sqlite3"))
        s = with_section(s, "ami", port=ami.port, secret=SECRET, reconnect_min=0.05)
        s = with_section(
            s, "telegram", token=TOKEN, base_url=bot.base_url, base_file_url=bot.base_file_url
        )
        s = with_section(s, "telegram", poll_timeout=1.0)
        s = with_section(s, "http", port=0)
        s = with_section(s, "outbox", idle_poll=0.1)
        await migrate(s.database.url)
        runtime = Runtime(s)
        await runtime.start()
        try:
            await ami.wait_logged_in(timeout=WAIT)
            created = await admin.add_subscriber(
                name="Dr Papadopoulos",
                ddis=[DDI],
                language="en",
                timezone="Europe/Athens",
                mobile=MOBILE,
            )
            bot.inject_message(SUBSCRIBER_CHAT, f"/start {created.link_code}")
            await bot.wait_for(
                lambda c: str(c.params.get("chat_id")) == str(SUBSCRIBER_CHAT), timeout=WAIT
            )
            sofia_user = await User.create(
                name="Sofia", role=Role.SUPERVISOR, telegram_chat_id=CHATS["sofia"]
            )
            theo_user = await User.create(
                name="Theo", role=Role.SUPERVISOR, telegram_chat_id=CHATS["theo"]
            )
            north = await Team.create(name="North", supervisor=sofia_user)
            south = await Team.create(name="South", supervisor=theo_user)
            agents = {
                "anna": await _staff("Anna", Role.AGENT, north, "PJSIP/agent101", CHATS["anna"]),
                "boris": await _staff("Boris", Role.AGENT, north, "PJSIP/agent102", CHATS["boris"]),
                "xenia": await _staff("Xenia", Role.AGENT, south, "PJSIP/agent301", CHATS["xenia"]),
                "sofia": await Agent.create(
                    user=sofia_user, team=north, interface="PJSIP/sofia", presence=Presence.READY
                ),
                "theo": await Agent.create(
                    user=theo_user, team=south, interface="PJSIP/theo", presence=Presence.READY
                ),
            }
            yield Desk(ami, bot, runtime, agents, CallFactory())
        finally:
            await runtime.stop()


async def test_transfer_to_a_colleague_sends_the_actions_and_shows_the_note(desk: Desk) -> None:
    linkedid, caller_channel = await desk.answered_call()
    card = await desk.card("anna", linkedid)

    # The card's Transfer button: the targets Anna may hand the call to.
    asked = len(desk.bot.requests)
    desk.press("anna", callbacks.card(card.id, callbacks.CARD_TRANSFER))
    menu = await desk.message_to("anna", CALLER, after=asked)
    buttons = [b for row in menu.params["reply_markup"]["inline_keyboard"] for b in row]
    datas = {b["callback_data"] for b in buttons}
    boris, xenia = desk.agents["boris"], desk.agents["xenia"]
    assert callbacks.transfer_to(card.id, "a", boris.id) in datas
    assert callbacks.transfer_to(card.id, "a", xenia.id) not in datas  # another team
    assert callbacks.transfer_to(card.id, "m") in datas
    assert callbacks.transfer_to(card.id, "e") in datas
    assert any("Boris" == b["text"] for b in buttons)

    # Boris, then the note: the call is put through.
    before = len(desk.ami.actions)
    await desk.answer_to("anna", callbacks.transfer_to(card.id, "a", boris.id))
    await desk.message_to("anna", "note for Boris")
    typed = len(desk.bot.requests)
    desk.say("anna", "VIP patient, wants the blood test results")
    await desk.message_to("anna", "Put through to Boris", after=typed)

    names = [header(a, "Action") for a in desk.ami.actions[before:]]
    names = [n for n in names if n != "Ping"]
    assert names == ["CoreShowChannels", "Getvar", "Setvar", "Redirect"]
    [getvar] = desk.actions("Getvar", before)
    assert (getvar["Channel"], getvar["Variable"]) == (caller_channel, "CHANNEL(linkedid)")
    [setvar] = desk.actions("Setvar", before)
    assert setvar["Channel"] == caller_channel
    assert (setvar["Variable"], setvar["Value"]) == ("FD_XFER_TO", "PJSIP/agent102")
    [redirect] = desk.actions("Redirect", before)
    assert redirect["Channel"] == caller_channel
    assert (redirect["Context"], redirect["Exten"], redirect["Priority"]) == (
        "frontdesk-transfer",
        "agent",
        "1",
    )

    # Boris sees the note: told at once, and on his card of this call.
    told = await desk.message_to("boris", "VIP patient, wants the blood test results")
    assert "Anna" in told.params["text"] and CALLER in told.params["text"]
    received = await Card.get(agent_id=boris.id, linkedid=linkedid)
    assert received.transfer_note == "VIP patient, wants the blood test results"
    assert not await Conversation.filter(kind="transfer", done=False).exists()
    done = await AuditEntry.filter(command__startswith=f"transfer card {card.id}").first()
    assert done is not None and done.result == "done"


async def test_transfer_to_the_mobile_writes_the_note_to_the_subscriber(desk: Desk) -> None:
    linkedid, caller_channel = await desk.answered_call()
    card = await desk.card("anna", linkedid)
    before = len(desk.ami.actions)
    await desk.answer_to("anna", callbacks.transfer_to(card.id, "m"))
    desk.say("anna", "Chest pain, asked for the doctor")
    await desk.message_to("anna", "in writing")

    [setvar] = desk.actions("Setvar", before)
    assert (setvar["Channel"], setvar["Value"]) == (caller_channel, MOBILE)
    [redirect] = desk.actions("Redirect", before)
    assert (redirect["Context"], redirect["Exten"]) == ("frontdesk-transfer", "mobile")
    # The note, urgent, by the subscriber's route (their Telegram chat here).
    notice = await Notification.get(subscriber_id=(await admin_subscriber()).id)
    assert notice.urgency is Urgency.URGENT
    await desk.message_to("subscriber", "Chest pain, asked for the doctor")


async def test_transfer_to_an_extension_asks_for_it_first(desk: Desk) -> None:
    linkedid, caller_channel = await desk.answered_call()
    assert caller_channel.startswith("PJSIP/pstn-")
    card = await desk.card("anna", linkedid)
    before = len(desk.ami.actions)
    await desk.answer_to("anna", callbacks.transfer_to(card.id, "e"))
    desk.say("anna", "12a")
    await desk.message_to("anna", "2 to 10 digits")
    desk.say("anna", "207")
    await desk.message_to("anna", "extension 207")
    desk.say("anna", "-")
    await desk.message_to("anna", "Put through to extension 207")
    [setvar] = desk.actions("Setvar", before)
    assert setvar["Value"] == "207"
    [redirect] = desk.actions("Redirect", before)
    assert redirect["Exten"] == "extension"


async def test_forged_transfer_data_for_another_teams_call_is_refused(desk: Desk) -> None:
    linkedid, _ = await desk.answered_call()
    card = await desk.card("anna", linkedid)
    xenia = desk.agents["xenia"]
    before_actions, before_audit = len(desk.ami.actions), await AuditEntry.all().count()
    forged = [
        ("xenia", callbacks.card(card.id, callbacks.CARD_TRANSFER)),
        ("xenia", callbacks.transfer_to(card.id, "a", xenia.id)),
        ("xenia", callbacks.transfer_to(card.id, "m")),
        ("theo", callbacks.transfer_to(card.id, "e")),  # the other team's supervisor
        ("anna", callbacks.transfer_to(card.id, "a", xenia.id)),  # her card, not his team
        ("anna", "xf:999999:m:0"),  # no such card
        ("anna", f"xf:{card.id}:m:7"),  # a shape we never write
    ]
    for who, data in forged:
        toast = await desk.answer_to(who, data)
        assert "not yours" in toast, (who, data, toast)
    # Nothing changed: no PBX action, no transfer opened, no note anywhere.
    assert desk.ami.actions[before_actions:] == []
    assert not await Conversation.filter(kind="transfer").exists()
    assert not await Card.filter(agent_id=xenia.id).exists()
    refused = await AuditEntry.filter(result="refused").count()
    assert refused >= before_audit + len(forged) - 1 and refused >= len(forged)
    # Text from Xenia is no transfer note (she has none open): not taken as one.
    asked = len(desk.bot.requests)
    desk.say("xenia", "put it through")
    await desk.bot.wait_for(
        lambda c: (
            c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(CHATS["xenia"])
            and desk.bot.requests.index(c) >= asked
        ),
        timeout=WAIT,
    )
    assert desk.actions("Redirect", before_actions) == []


async def test_supervisor_listens_and_whispers_only_to_own_team(desk: Desk) -> None:
    linkedid, _ = await desk.answered_call()
    anna_channel = next(
        name for name in desk.ami.live_channels.values() if name.startswith("PJSIP/agent101-")
    )
    before = len(desk.ami.actions)
    # Theo leads the South team: Anna is North's.
    desk.say("theo", "/listen Anna")
    await desk.message_to("theo", "not yours")
    desk.say("theo", "/whisper Anna")
    await desk.message_to("theo", "not yours", after=len(desk.bot.requests) - 1)
    # Anna is an agent: never.
    desk.say("anna", "/listen Boris")
    await desk.message_to("anna", "not yours")
    assert desk.actions("Originate", before) == []

    desk.say("sofia", "/listen Anna")
    await desk.message_to("sofia", "listen to Anna")
    [listen] = desk.actions("Originate", before)
    assert listen["Channel"] == "PJSIP/sofia"
    assert (listen["Application"], listen["Data"]) == ("ChanSpy", f"{anna_channel},qE")
    asked = len(desk.bot.requests)
    desk.say("sofia", "/whisper Anna")
    await desk.message_to("sofia", "whisper to Anna", after=asked)
    whisper = desk.actions("Originate", before)[-1]
    assert whisper["Data"] == f"{anna_channel},qEw"
    assert linkedid in desk.runtime.gateway.tracker.calls


async def test_transfer_when_the_pbx_is_down_says_so_and_keeps_the_note(desk: Desk) -> None:
    linkedid, _ = await desk.answered_call()
    card = await desk.card("anna", linkedid)
    await desk.answer_to("anna", callbacks.transfer_to(card.id, "m"))
    desk.ami.denied.add("redirect")
    desk.say("anna", "urgent")
    await desk.message_to("anna", "not reachable")
    assert await Conversation.filter(kind="transfer", done=False).exists()  # send it again
    desk.ami.denied.discard("redirect")
    asked = len(desk.bot.requests)
    desk.say("anna", "urgent")
    await desk.message_to("anna", "Put through", after=asked)
