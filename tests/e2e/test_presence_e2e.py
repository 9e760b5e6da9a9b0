"""Agents sign in, pause and sign out from Telegram, done on the PBX: the gateway and bot
(as `main.py run` composes them) against the sandbox AMI and Bot API over loopback.

The sandbox AMI answers QueueAdd/QueueRemove/QueuePause/QueueStatus as Asterisk 22 does
and keeps the queue's members; the frames it received are what is asserted. Restarting it
drops the dynamic members (Asterisk without `persistentmembers`) or keeps them (with):
after the gateway logs in again, QueueStatus decides the agents' presence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.control import callbacks
from gateway.staff import people
from gateway.staff.presence import PAUSED, SIGNED_IN, SIGNED_OUT, UNREACHABLE, WHY
from locales import tr
from models.database import migrate
from models.staff import Agent, Presence, PresenceSpan
from sandbox.ami_server import AmiServer, header
from sandbox.telegram_api import BotApiServer, Call
from tests.stack import run_main, sandbox_config, sandbox_settings

TOKEN = "123456:TEST-presence"
QUEUE = "frontdesk-agents"
MARIA_CHAT, SOFIA_CHAT = 6001, 6002
MARIA_IF = "Local/agent7@agents"
WAIT = 10.0


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    maria: Agent

    async def say(self, chat: int, text: str, answer: str) -> Call:
        """Type `text` in the chat; the bot's reply starting with `answer` (a new one)."""
        before = {id(c) for c in self.bot.requests}
        self.bot.inject_message(chat, text)
        match = _to(chat, answer)
        return await self.bot.wait_for(lambda c: id(c) not in before and match(c), timeout=WAIT)

    def queue_actions(self) -> list[dict[str, str]]:
        return [
            {k: v for k, v in a.items() if k != "ActionID"}
            for a in self.ami.actions
            if header(a, "Action").startswith("Queue") and header(a, "Action") != "QueueStatus"
        ]

    async def presence(self) -> tuple[Presence, str]:
        row = await Agent.get(id=self.maria.id)
        return row.presence, row.pause_reason

    async def restart_pbx(self) -> None:
        gateway = self.runtime.gateway
        syncs = gateway.pbx_syncs
        await self.ami.restart()
        await gateway.wait_synced(after=syncs, timeout=WAIT)

    async def until(self, presence: Presence) -> None:
        """Until the PBX's own events have brought Maria to `presence`."""
        changed = asyncio.Event()
        observers = self.runtime.gateway.presence.observers
        observers.append(lambda agent_id, now: changed.set() if now is presence else None)
        async with asyncio.timeout(WAIT):
            while (await self.presence())[0] is not presence:
                await changed.wait()
                changed.clear()


def _to(chat: int, text: str) -> Callable[[Call], bool]:
    return lambda c: (
        c.method == "sendMessage"
        and c.params.get("chat_id") == chat
        and c.params.get("text", "").startswith(text)
    )


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        settings = sandbox_settings(tmp_path / "presence.sqlite3", ami, bot, TOKEN)
        await migrate(settings.database.url)
        runtime = Runtime(settings)
        await runtime.start()
        try:
            await runtime.gateway.wait_synced(after=0, timeout=WAIT)
            sofia = await people.add_staff(name="Sofia", role="supervisor", interface="PJSIP/200")
            await people.add_team("Front", sofia.agent.id)
            maria = await people.add_staff(
                name="Maria", role="agent", team="Front", interface=MARIA_IF
            )
            for chat, made in ((MARIA_CHAT, maria), (SOFIA_CHAT, sofia)):
                bot.inject_message(chat, f"/start {made.link_code}")
                await bot.wait_for(_to(chat, "Linked to the desk as"), timeout=WAIT)
            yield Desk(ami, bot, runtime, maria.agent)
        finally:
            await runtime.stop()


async def test_sign_in_pause_sign_out_are_queue_actions_on_the_pbx(desk: Desk) -> None:
    await desk.say(MARIA_CHAT, "/signin", tr("en", SIGNED_IN, agent="Maria"))
    assert desk.queue_actions() == [
        {
            "Action": "QueueAdd",
            "Queue": QUEUE,
            "Interface": MARIA_IF,
            "MemberName": "Maria",
            "Paused": "false",
        }
    ]
    assert MARIA_IF in desk.ami.queues[QUEUE]
    assert await desk.presence() == (Presence.READY, "")

    # /pause alone offers the reasons; a press pauses on the PBX with the reason's key.
    offer = await desk.say(MARIA_CHAT, "/pause", tr("en", WHY))
    rows = offer.params["reply_markup"]["inline_keyboard"]
    assert [b["text"] for row in rows for b in row] == ["Break", "Lunch", "Meeting", "Training"]
    message_id = offer.result["message_id"]  # type: ignore[index]
    pressed = desk.bot.inject_callback(
        MARIA_CHAT, message_id, callbacks.pause(desk.maria.id, "lunch")
    )
    paused_text = tr("en", PAUSED, agent="Maria", reason="Lunch")
    await desk.bot.wait_for(
        lambda c: c.method == "editMessageText" and c.params.get("text") == paused_text,
        timeout=WAIT,
    )
    answer = await desk.bot.wait_for(
        lambda c: (
            c.method == "answerCallbackQuery"
            and c.params.get("callback_query_id") == pressed["callback_query"]["id"]
        ),
        timeout=WAIT,
    )
    assert answer.params["text"] == paused_text
    assert desk.queue_actions()[-1] == {
        "Action": "QueuePause",
        "Queue": QUEUE,
        "Interface": MARIA_IF,
        "Paused": "true",
        "Reason": "lunch",
    }
    assert desk.ami.queues[QUEUE][MARIA_IF].paused
    assert await desk.presence() == (Presence.PAUSED, "lunch")

    await desk.say(MARIA_CHAT, "/resume", tr("en", SIGNED_IN, agent="Maria"))
    assert desk.queue_actions()[-1] == {
        "Action": "QueuePause",
        "Queue": QUEUE,
        "Interface": MARIA_IF,
        "Paused": "false",
    }
    # Her supervisor signs her out.
    await desk.say(SOFIA_CHAT, f"/signout {desk.maria.id}", tr("en", SIGNED_OUT, agent="Maria"))
    assert desk.queue_actions()[-1] == {
        "Action": "QueueRemove",
        "Queue": QUEUE,
        "Interface": MARIA_IF,
    }
    assert MARIA_IF not in desk.ami.queues[QUEUE]
    assert await desk.presence() == (Presence.SIGNED_OUT, "")
    spans = await PresenceSpan.filter(agent_id=desk.maria.id).order_by("id")
    assert [(s.presence, s.reason, s.ended_at is not None) for s in spans] == [
        (Presence.READY, "", True),
        (Presence.PAUSED, "lunch", True),
        (Presence.READY, "", True),
    ]

    # An agent may not sign out her supervisor: refused, nothing sent.
    sent = len(desk.queue_actions())
    sofia_id = (await Agent.get(interface="PJSIP/200")).id
    await desk.say(MARIA_CHAT, f"/signout {sofia_id}", "That is not yours to do.")
    assert len(desk.queue_actions()) == sent


async def test_presence_survives_a_pbx_restart_as_queuestatus_says(desk: Desk) -> None:
    await desk.say(MARIA_CHAT, "/signin", tr("en", SIGNED_IN, agent="Maria"))
    await desk.say(MARIA_CHAT, "/pause meeting", tr("en", PAUSED, agent="Maria", reason="Meeting"))

    # With persistentmembers, Asterisk brings her back paused: she stays paused.
    desk.ami.persistent_members = True
    await desk.restart_pbx()
    assert await desk.presence() == (Presence.PAUSED, "meeting")

    # Without it, the restart forgets her: the QueueStatus after the login signs her out.
    desk.ami.persistent_members = False
    await desk.restart_pbx()
    statuses = [a for a in desk.ami.actions if header(a, "Action") == "QueueStatus"]
    assert len(statuses) == 3  # one per login
    assert await desk.presence() == (Presence.SIGNED_OUT, "")
    assert await PresenceSpan.filter(agent_id=desk.maria.id, ended_at__isnull=True).count() == 0

    # Signing in again works on the restarted PBX.
    await desk.say(MARIA_CHAT, "/signin", tr("en", SIGNED_IN, agent="Maria"))
    assert MARIA_IF in desk.ami.queues[QUEUE]


async def test_members_changed_on_the_pbx_itself_reach_the_database(desk: Desk) -> None:
    # Someone adds, pauses and removes her from the Asterisk CLI.
    await desk.ami.add_member(QUEUE, MARIA_IF, "Maria")
    await desk.until(Presence.READY)
    await desk.ami.pause_member(QUEUE, MARIA_IF, True, "supervisor call")
    await desk.until(Presence.PAUSED)
    assert await desk.presence() == (Presence.PAUSED, "supervisor call")
    await desk.ami.remove_member(QUEUE, MARIA_IF)
    await desk.until(Presence.SIGNED_OUT)
    assert desk.queue_actions() == []  # none of it was ours


async def test_an_unreachable_pbx_is_said_and_nothing_is_recorded(desk: Desk) -> None:
    desk.ami.denied.add("queueadd")  # Asterisk refusing (an AMI user without `agent`)
    await desk.say(MARIA_CHAT, "/signin", tr("en", UNREACHABLE))
    assert await desk.presence() == (Presence.SIGNED_OUT, "")
    assert await PresenceSpan.all().count() == 0


async def test_online_lists_who_is_signed_in(desk: Desk) -> None:
    await desk.say(MARIA_CHAT, "/signin", tr("en", SIGNED_IN, agent="Maria"))
    reply = await desk.say(SOFIA_CHAT, "/online", "Online now:")
    assert "Maria (Front): ready since" in reply.params["text"]


async def test_the_agent_commands_of_the_cli(tmp_path: Path) -> None:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        config = str(sandbox_config(tmp_path, ami, bot, tmp_path / "cli.sqlite3"))
        out = await run_main(
            "agent", "add", "--name", "Sofia", "--role", "supervisor", "-c", config
        )
        assert out.startswith("staff 1 'Sofia' (supervisor) created")
        assert "link code: " in out
        out = await run_main("agent", "team", "add", "Front", "--supervisor", "1", "-c", config)
        assert out.strip() == "team 1 'Front' created"
        out = await run_main(
            "agent",
            "add",
            "--name",
            "Maria",
            "--role",
            "agent",
            "--team",
            "Front",
            "--interface",
            MARIA_IF,
            "-c",
            config,
        )
        assert out.startswith("staff 2 'Maria' (agent) created")
        listing = await run_main("agent", "list", "-c", config)
        assert listing.splitlines()[1].split("\t") == [
            "2",
            "Maria",
            "agent",
            "Front",
            MARIA_IF,
            QUEUE,
            "signed_out",
            "chat=no",
        ]


async def test_a_linked_staff_chat_gets_the_desks_commands_as_its_menu(desk: Desk) -> None:
    """Only that chat: subscribers keep their own menu."""
    scope = {"type": "chat", "chat_id": MARIA_CHAT}
    await desk.bot.wait_for(
        lambda c: c.method == "setMyCommands" and c.params.get("scope") == scope, timeout=WAIT
    )
    names = [c["command"] for c in desk.bot.commands(scope)]
    assert names[:5] == ["signin", "pause", "resume", "signout", "online"]
    assert "scenario" not in names and "signin" not in [c["command"] for c in desk.bot.commands()]
