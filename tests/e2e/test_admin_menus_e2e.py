"""An admin runs subscribers from Telegram: the gateway and bot (as `main.py run` composes
them) against the sandbox Bot API and AMI over loopback. The first admin is made by the
real command line (`main.py admin add`) and links their chat with the code it printed;
then /admin, presses and typed answers create and edit a subscriber, the gateway is
restarted halfway through a form and the form goes on, and what the forms did is in the
database and in the DBPut frames the sandbox AMI received. A director pressing forged
admin buttons is refused every time, audited, and nothing changes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.admin import forms
from gateway.control import callbacks
from gateway.staff import people
from locales import tr
from models.database import migrate
from models.db import AuditEntry, Ddi, Role, Subscriber, User
from models.settings import Settings
from models.vocab import Scenario
from sandbox.ami_server import AmiServer, header
from sandbox.telegram_api import BotApiServer, Call
from tests.desk_people import button, message_id, said_to
from tests.stack import environment, run_main, sandbox_config, sandbox_settings

TOKEN = "123456:ADMIN-menus"
ADMIN, DIRECTOR = 9101, 9102
DDI, SECOND_DDI = "2100800", "2100801"
WAIT = 15.0


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    settings: Settings
    runtime: Runtime

    async def said(self, chat: int, words: str) -> Call:
        """The bot's next message or edit in `chat` with `words` (one not seen before)."""
        before = {id(c) for c in self.bot.requests}
        match = said_to(chat, words)
        return await self.bot.wait_for(lambda c: id(c) not in before and match(c), timeout=WAIT)

    async def type(self, chat: int, text: str, answer: str) -> Call:
        before = {id(c) for c in self.bot.requests}
        self.bot.inject_message(chat, text)
        match = said_to(chat, answer)
        return await self.bot.wait_for(lambda c: id(c) not in before and match(c), timeout=WAIT)

    async def press(self, chat: int, on: Call, label: str, answer: str) -> Call:
        before = {id(c) for c in self.bot.requests}
        self.bot.inject_callback(chat, message_id(on), button(on, label))
        match = said_to(chat, answer)
        return await self.bot.wait_for(lambda c: id(c) not in before and match(c), timeout=WAIT)

    async def forged(self, chat: int, data: str) -> Call:
        """Press `data` on any message; the answer to the query."""
        pressed = self.bot.inject_callback(chat, 1, data)
        query = pressed["callback_query"]["id"]
        return await self.bot.wait_for(
            lambda c: (
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query
            ),
            timeout=WAIT,
        )

    def db_puts(self) -> dict[str, str]:
        """family/key -> value of every DBPut the PBX got, in order (the last wins)."""
        return {
            f"{header(a, 'Family')}/{header(a, 'Key')}": header(a, "Val")
            for a in self.ami.actions
            if header(a, "Action") == "DBPut"
        }

    async def restart(self) -> None:
        await self.runtime.stop()
        self.runtime = Runtime(self.settings)
        await self.runtime.start()
        await self.runtime.gateway.wait_synced(after=0, timeout=WAIT)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        database = tmp_path / "admin.sqlite3"
        settings = sandbox_settings(database, ami, bot, TOKEN)
        await migrate(settings.database.url)
        # The first admin, by the real command line, as an operator makes them.
        config = sandbox_config(tmp_path, ami, bot, database)
        out = await run_main(
            "admin", "add", "--name", "Alex", "--language", "en", "-c", str(config),
            env=environment(FRONTDESK__TELEGRAM__TOKEN=TOKEN),
        )  # fmt: skip
        assert re.match(r"admin \d+ 'Alex' created\n", out), out
        code = re.search(r"link code: (\w+)", out)
        assert code is not None
        runtime = Runtime(settings)
        await runtime.start()
        d = Desk(ami, bot, settings, runtime)
        try:
            await runtime.gateway.wait_synced(after=0, timeout=WAIT)
            bot.inject_message(ADMIN, f"/start {code[1]}")
            await d.said(ADMIN, "Linked to the desk as Alex")
            director = await people.add_staff(name="Dora", role="director")
            bot.inject_message(DIRECTOR, f"/start {director.link_code}")
            await d.said(DIRECTOR, "Linked to the desk as Dora")
            yield d
        finally:
            await d.runtime.stop()


async def test_a_subscriber_made_and_edited_from_the_bot_is_stored_and_on_the_pbx(
    desk: Desk,
) -> None:
    [alex] = await User.filter(role=Role.ADMIN)
    assert (alex.name, alex.telegram_chat_id) == ("Alex", ADMIN)

    menu = await desk.type(ADMIN, "/admin", "Admin menu")
    form = await desk.press(ADMIN, menu, "New subscriber", "Name?")
    await desk.type(ADMIN, "Dr Ioannou", "DDI number")
    form = await desk.type(ADMIN, DDI, "Language?")

    await desk.restart()  # halfway: nothing of the form is in memory any more

    form = await desk.press(ADMIN, form, "Ελληνικά", "Time zone")
    wrong = await desk.type(ADMIN, "Athens", "Unknown time zone")
    assert tr("en", forms.BAD_TIMEZONE, value="Athens") in wrong.params["text"]
    card = await desk.type(ADMIN, "Europe/Athens", "Subscriber Dr Ioannou created.")
    s = await Subscriber.get(name="Dr Ioannou")
    assert (s.language, s.timezone, s.scenario) == ("el", "Europe/Athens", Scenario.AGENT)
    assert await Ddi.filter(subscriber=s).values_list("number", flat=True) == [DDI]
    assert (
        desk.db_puts().items()
        >= {
            f"frontdesk/scenario/{DDI}": "agent",
            f"frontdesk/forward/{DDI}": "",
        }.items()
    )

    # Edits from the card: each is in the database and on the PBX at once.
    form = await desk.press(ADMIN, card, "Mobile", "Their own mobile number?")
    bad = await desk.type(ADMIN, "12", "That is not a phone number: 12")
    assert button(bad, "Cancel")
    card = await desk.type(ADMIN, "6944000800", "✓ Saved.")
    form = await desk.press(ADMIN, card, "Scenario", "How are calls answered?")
    card = await desk.press(ADMIN, form, "Forward to my mobile", "✓ Saved.")
    form = await desk.press(ADMIN, card, "Add DDI", "DDI number")
    used = await desk.type(ADMIN, DDI, f"DDI {DDI} already belongs to a subscriber.")
    assert used.params["text"].endswith("DDI number (the line calls arrive on)?")
    await desk.type(ADMIN, SECOND_DDI, "Voicemail box")
    card = await desk.type(ADMIN, "801@default", "✓ Saved.")
    form = await desk.press(ADMIN, card, "Greeting", "Greeting when answering?")
    card = await desk.type(ADMIN, "Ioannou surgery, good morning", "✓ Saved.")
    assert f"{SECOND_DDI} (801@default)" in card.params["text"]

    s = await Subscriber.get(id=s.id)
    assert (s.mobile, s.scenario, s.greeting) == (
        "+306944000800",
        Scenario.FORWARD,
        "Ioannou surgery, good morning",
    )
    assert sorted(await Ddi.filter(subscriber=s).values_list("number", "mailbox")) == [
        (DDI, ""),
        (SECOND_DDI, "801@default"),
    ]
    puts = desk.db_puts()
    for ddi in (DDI, SECOND_DDI):
        assert puts[f"frontdesk/scenario/{ddi}"] == "forward"
        assert puts[f"frontdesk/forward/{ddi}"] == "+306944000800"
    assert puts[f"frontdesk/mailbox/{SECOND_DDI}"] == "801@default"
    assert desk.ami.astdb[f"frontdesk/scenario/{DDI}"] == "forward"  # what the PBX holds
    done = await AuditEntry.filter(result="done", channel="telegram", actor=str(ADMIN)).count()
    assert done == 5  # created, mobile, scenario, DDI, greeting


async def test_a_director_is_refused_every_admin_button_and_nothing_changes(desk: Desk) -> None:
    menu = await desk.type(ADMIN, "/admin", "Admin menu")
    await desk.press(ADMIN, menu, "New subscriber", "Name?")
    await desk.type(ADMIN, "Dr Kosta", "DDI number")
    await desk.type(ADMIN, DDI, "Language?")
    s_id, ddi_id = 1, 1
    actions = len(desk.ami.actions)
    forged = [
        callbacks.admin("m"),
        callbacks.admin("sl", 0),
        callbacks.admin("s", s_id),
        *(callbacks.admin("e", s_id, field) for field in forms.FIELDS),
        callbacks.admin("rt", s_id),
        callbacks.admin("ddi", s_id),
        callbacks.admin("mb", ddi_id),
        callbacks.admin("pin", s_id),
        callbacks.admin("code", s_id),
        callbacks.admin("ns"),
        callbacks.admin("st", 0),
        callbacks.admin("sa"),
        callbacks.admin("tm"),
        callbacks.admin("sc", 1),
        callbacks.admin("na"),
        callbacks.admin("f", 1, "language", "en"),
    ]
    refused_before = await AuditEntry.filter(result="refused").count()
    for data in forged:
        answer = await desk.forged(DIRECTOR, data)
        assert answer.params.get("text") == "That is not yours to do.", data
    stranger = await desk.forged(4242, callbacks.admin("pin", s_id))
    assert stranger.params.get("text") == "This chat is not linked to the desk."
    refusal = await desk.type(DIRECTOR, "/admin", "That is not yours to do.")
    assert refusal.params["text"] == "That is not yours to do."
    refused = await AuditEntry.filter(result="refused").count()
    assert refused == refused_before + len(forged) + 2
    assert not await Subscriber.exists()  # the admin's form was not finished for them
    assert len(desk.ami.actions) == actions
    # The admin's own form is still theirs, at the same step.
    form = await desk.type(ADMIN, "hello", "Please answer with the buttons.")
    assert form.params["text"].endswith("Language?")
