"""The admins' menus (gateway/admin/menus.py) driven as the bot drives them: presses of
`ad:` data and typed answers from a chat. Subscribers made and edited through the forms
land in the database and on the PBX (Control.push_lines over a scripted AMI link); every
change is audited; staff without the rank and strangers are refused, audited, and nothing
changes; a form's state is in the database, so a new desk (a restart) goes on with it."""

from __future__ import annotations

import pytest

from gateway.admin import forms
from gateway.admin.menus import AdminDesk
from gateway.control import admin, callbacks
from gateway.control.lines import Control
from gateway.control.pins import pin_matches
from gateway.pbx.actions import Action
from gateway.pbx.errors import PbxUnavailable
from gateway.pbx.wire import Frame
from gateway.staff import people
from gateway.staff.replies import Reply
from locales import tr
from models.db import AuditEntry, Ddi, Role, RoutingPreference, Subscriber, User
from models.staff import Agent, Conversation, Team
from models.vocab import Scenario
from tests.unit.test_control import FakePbx

ADMIN, DIRECTOR, STRANGER = 9001, 9002, 9003


def data(reply: Reply, label: str) -> str:
    """The data of the button whose label starts with `label`."""
    for row in reply.buttons:
        for text, value in row:
            if text.startswith(label):
                return value
    raise AssertionError(f"no button {label!r} in {reply.buttons}")


class Link(FakePbx):
    """The scripted AMI link of tests/unit/test_control.py, as the AmiLink a Control takes."""

    async def send_list_action(self, action: Action, timeout: float = 10.0) -> list[Frame]:
        return []


class Admins:
    def __init__(self) -> None:
        self.pbx = Link()
        self.control = Control(self.pbx)
        self.desk = AdminDesk(self.control.push_lines, "GR", "Europe/Athens")

    def restart(self) -> None:
        self.desk = AdminDesk(self.control.push_lines, "GR", "Europe/Athens")

    async def press(self, chat: int, value: str) -> Reply:
        return await self.desk.press(chat, value, "en")

    async def say(self, chat: int, text: str) -> Reply:
        reply = await self.desk.text(chat, text, "en")
        assert reply is not None
        return reply

    def puts(self) -> dict[str, str]:
        return {a["Key"]: a["Val"] for a in self.pbx.sent("DBPut")}


async def _linked(name: str, role: str, chat: int, language: str = "en") -> Agent:
    if role == "admin":
        made = await people.add_admin(name, language)
    else:
        made = await people.add_staff(name=name, role=role, language=language)
    await User.filter(id=made.agent.user.id).update(telegram_chat_id=chat)
    return made.agent


@pytest.fixture
async def admins(db: str) -> Admins:
    await _linked("Alex", "admin", ADMIN)
    await _linked("Dora", "director", DIRECTOR)
    return Admins()


async def _new_subscriber(a: Admins, name: str = "Dr Nikolaou", ddi: str = "2100500") -> Reply:
    menu = await a.desk.menu(ADMIN, "en")
    reply = await a.press(ADMIN, data(menu, "New subscriber"))
    assert reply.text.endswith("Name?")
    await a.say(ADMIN, name)
    reply = await a.say(ADMIN, ddi)
    assert reply.text.endswith("Language?")
    reply = await a.press(ADMIN, data(reply, "Ελληνικά"))
    assert "Time zone" in reply.text
    return await a.say(ADMIN, "Europe/Athens")


async def test_a_subscriber_made_through_the_form_is_stored_and_on_the_pbx(admins: Admins) -> None:
    card = await _new_subscriber(admins)
    s = await Subscriber.get(name="Dr Nikolaou")
    assert (s.language, s.timezone, s.scenario) == ("el", "Europe/Athens", Scenario.AGENT)
    assert await Ddi.filter(subscriber=s).values_list("number", flat=True) == ["2100500"]
    assert "Subscriber Dr Nikolaou created." in card.text and "/start " in card.text
    assert admins.puts() == {"scenario/2100500": "agent", "forward/2100500": ""}
    [entry] = await AuditEntry.filter(result="done")
    assert (entry.channel, entry.actor, entry.subscriber_id) == ("telegram", str(ADMIN), s.id)  # type: ignore[attr-defined]
    assert not await Conversation.filter(done=False).exists()


async def test_every_field_is_edited_and_each_change_reaches_the_pbx(admins: Admins) -> None:
    card = await _new_subscriber(admins)
    s = await Subscriber.get(name="Dr Nikolaou")
    admins.pbx.actions.clear()

    async def edit(label: str, answer: str, *, press: bool = False) -> Reply:
        nonlocal card
        form = await admins.press(ADMIN, data(card, label))
        card = await (
            admins.press(ADMIN, data(form, answer)) if press else admins.say(ADMIN, answer)
        )
        assert card.text.startswith("✓ Saved."), card.text
        return card

    await edit("Mobile", "6944000123")
    await edit("Forward to", "+302101234567")
    await edit("Scenario", "Forward to my mobile", press=True)
    await edit("Email", "office@example.org")
    await edit("Quiet hours", "22:00-07:00")
    await edit("Instructions", "Say the doctor is in surgery.")
    await edit("Greeting", "Good morning, Dr Nikolaou's office")
    await edit("Time zone", "Europe/Berlin")
    await edit("Name", "Dr N. Nikolaou")
    await edit("Language", "English", press=True)
    s = await Subscriber.get(id=s.id)
    assert (s.mobile, s.forward_number, s.scenario) == (
        "+306944000123",
        "+302101234567",
        Scenario.FORWARD,
    )
    assert (s.email, s.quiet_start, s.quiet_end) == ("office@example.org", "22:00", "07:00")
    assert (s.instructions, s.greeting) == (
        "Say the doctor is in surgery.",
        "Good morning, Dr Nikolaou's office",
    )
    assert (s.timezone, s.name, s.language) == ("Europe/Berlin", "Dr N. Nikolaou", "en")
    assert admins.puts() == {"scenario/2100500": "forward", "forward/2100500": "+302101234567"}
    assert len(admins.pbx.sent("DBPut")) == 2 * 10  # every change pushed at once

    # A second DDI with its mailbox, then the first one's mailbox; a route.
    form = await admins.press(ADMIN, data(card, "Add DDI"))
    await admins.say(ADMIN, "2100501")
    card = await admins.say(ADMIN, "501@default")
    menu = await admins.press(ADMIN, callbacks.admin("s", s.id))
    form = await admins.press(ADMIN, data(menu, "Mailbox 2100500"))
    card = await admins.say(ADMIN, "500@default")
    assert {k: v for k, v in admins.puts().items() if k.startswith("mailbox/")} == {
        "mailbox/2100500": "500@default",
        "mailbox/2100501": "501@default",
    }
    assert "2100501 (501@default)" in card.text
    form = await admins.press(ADMIN, data(card, "Routes"))
    form = await admins.press(ADMIN, data(form, "Voicemails"))
    form = await admins.press(ADMIN, data(form, "Urgent"))
    card = await admins.say(ADMIN, "sms, telegram+email")
    [route] = await RoutingPreference.filter(subscriber_id=s.id)
    assert (route.kind, route.urgency, route.channels) == (
        "voicemail",
        "urgent",
        ["sms", "telegram+email"],
    )
    assert "sms → telegram+email" in card.text
    done = await AuditEntry.filter(result="done", subscriber_id=s.id).count()
    assert done == 1 + 10 + 3  # made, ten edits, a DDI, a mailbox, a route


async def test_bad_answers_are_told_in_the_admins_language_and_asked_again(admins: Admins) -> None:
    await User.filter(telegram_chat_id=ADMIN).update(language="el")
    await admin.add_subscriber(
        name="Taken", ddis=["2100999"], language="en", timezone="UTC", mobile="6944000999"
    )
    menu = await admins.desk.menu(ADMIN, "en")
    form = await admins.press(ADMIN, data(menu, tr("el", "New subscriber")))
    await admins.say(ADMIN, "Dr Z")
    again = await admins.say(ADMIN, "2100999")
    assert tr("el", forms.DDI_USED, number="2100999") in again.text
    again = await admins.say(ADMIN, "21OO5")
    assert tr("el", forms.BAD_DDI, value="21OO5") in again.text
    lang = await admins.say(ADMIN, "2100600")
    forged = callbacks.admin("f", data(lang, "English").split(":")[2], "language", "xx")
    again = await admins.press(ADMIN, forged)
    assert tr("el", forms.BAD_CHOICE) in again.text
    tz = await admins.press(ADMIN, data(lang, "English"))
    again = await admins.say(ADMIN, "Mars/Olympus")
    assert tr("el", forms.BAD_TIMEZONE, value="Mars/Olympus") in again.text
    assert again.text != tz.text
    card = await admins.say(ADMIN, "Europe/Athens")
    s = await Subscriber.get(name="Dr Z")
    for label, answer, problem in (
        ("Mobile", "12", tr("el", forms.BAD_NUMBER, number="12")),
        ("Mobile", "6944000999", tr("el", forms.MOBILE_USED, number="+306944000999")),
        ("Email", "nobody", tr("el", forms.BAD_EMAIL, value="nobody")),
        ("Quiet hours", "late", tr("el", forms.BAD_QUIET)),
    ):
        form = await admins.press(
            ADMIN,
            callbacks.admin(
                "e", s.id, {"Mobile": "mobile", "Email": "email", "Quiet hours": "quiet"}[label]
            ),
        )
        again = await admins.say(ADMIN, answer)
        assert problem in again.text, again.text
        await admins.press(ADMIN, data(form, tr("el", "Cancel")))
    form = await admins.press(ADMIN, callbacks.admin("rt", s.id))
    form = await admins.press(ADMIN, data(form, tr("el", "Messages")))
    form = await admins.press(ADMIN, data(form, tr("el", "Normal")))
    again = await admins.say(ADMIN, "pigeon")
    assert tr("el", forms.BAD_CHANNELS, channels="telegram, email, sms, mms") in again.text
    s = await Subscriber.get(id=s.id)
    assert (s.mobile, s.email, s.quiet_start) == (None, None, None)
    assert not await RoutingPreference.exists()
    assert card.text.startswith("✓")


async def test_a_pin_reset_is_shown_once_and_stored_hashed(admins: Admins) -> None:
    card = await _new_subscriber(admins)
    reply = await admins.press(ADMIN, data(card, "Reset PIN"))
    pin = reply.text.split(": ", 1)[1][:6]
    assert pin.isdigit()
    s = await Subscriber.get(name="Dr Nikolaou")
    assert s.sms_pin_hash and pin_matches(pin, s.sms_pin_hash) and pin not in s.sms_pin_hash
    assert not await AuditEntry.filter(command__contains=pin).exists()
    assert not await AuditEntry.filter(detail__contains=pin).exists()
    code = await admins.press(ADMIN, data(card, "New link code"))
    assert code.text.startswith("Link code for Dr Nikolaou: ")


@pytest.mark.parametrize("chat", [DIRECTOR, STRANGER])
async def test_every_admin_button_is_refused_to_others_and_audited(
    admins: Admins, chat: int
) -> None:
    card = await _new_subscriber(admins)
    s = await Subscriber.get(name="Dr Nikolaou")
    ddi = await Ddi.get(subscriber=s)
    agent = await Agent.get(user__telegram_chat_id=ADMIN)
    open_form = await admins.press(ADMIN, data(card, "Name"))
    cid = data(open_form, "Cancel").split(":")[2]
    forged = [
        callbacks.admin("m"),
        callbacks.admin("sl", 0),
        callbacks.admin("s", s.id),
        *(callbacks.admin("e", s.id, field) for field in forms.FIELDS),
        callbacks.admin("rt", s.id),
        callbacks.admin("ddi", s.id),
        callbacks.admin("mb", ddi.id),
        callbacks.admin("pin", s.id),
        callbacks.admin("code", s.id),
        callbacks.admin("ns"),
        callbacks.admin("st", 0),
        callbacks.admin("sa"),
        callbacks.admin("tm"),
        callbacks.admin("sc", agent.id),
        callbacks.admin("na"),
        callbacks.admin("f", cid, "name", "cancel"),
        "ad:zz:1",
        "ad:",
    ]
    before = await AuditEntry.filter(result="refused").count()
    pushes = len(admins.pbx.actions)
    for value in forged:
        reply = await admins.press(chat, value)
        assert reply.refused and not reply.buttons, value
    assert (await admins.desk.menu(chat, "en")).refused
    assert await AuditEntry.filter(result="refused").count() == before + len(forged) + 1
    assert await admins.desk.text(chat, "Evil Corp", "en") is None  # no form of theirs
    s2 = await Subscriber.get(id=s.id)
    assert (s2.name, s2.sms_pin_hash) == ("Dr Nikolaou", None)
    assert len(admins.pbx.actions) == pushes
    assert await Conversation.filter(done=False).count() == 1  # the admin's own, untouched
    assert await Agent.all().count() == 2 and await Team.all().count() == 0


async def test_a_director_with_a_form_open_is_refused_when_typing(admins: Admins) -> None:
    """A form opened as admin, then demoted: the typed answer is refused."""
    form = await admins.press(ADMIN, callbacks.admin("ns"))
    assert form.text.endswith("Name?")
    await User.filter(telegram_chat_id=ADMIN).update(role=Role.DIRECTOR)
    reply = await admins.desk.text(ADMIN, "Dr X", "en")
    assert reply is not None and reply.refused
    assert not await Subscriber.exists()
    assert await admins.desk.text(STRANGER, "hello", "en") is None  # not the desk's text


async def test_a_form_goes_on_after_a_restart(admins: Admins) -> None:
    menu = await admins.desk.menu(ADMIN, "en")
    await admins.press(ADMIN, data(menu, "New subscriber"))
    await admins.say(ADMIN, "Dr Restart")
    admins.restart()  # nothing of the form is in memory any more
    lang = await admins.say(ADMIN, "2100700")
    assert lang.text.endswith("Language?")
    admins.restart()
    tz = await admins.press(ADMIN, data(lang, "English"))
    admins.restart()
    await admins.press(ADMIN, data(tz, "Europe/Athens"))  # the default time zone's button
    s = await Subscriber.get(name="Dr Restart")
    assert (s.language, s.timezone) == ("en", "Europe/Athens")
    again = await admins.press(ADMIN, data(tz, "Europe/Athens"))  # an old question
    assert again.toast == "That question has been answered already."
    assert await Subscriber.all().count() == 1


async def test_staff_teams_and_admins_from_the_menu(admins: Admins) -> None:
    menu = await admins.desk.menu(ADMIN, "en")
    staff = await admins.press(ADMIN, data(menu, "Staff & teams"))
    assert "#1 Alex · admin" in staff.text and "#2 Dora · director" in staff.text
    await admins.press(ADMIN, data(staff, "New team"))
    staff = await admins.say(ADMIN, "Front")
    assert staff.text.startswith("✓ Team Front created.")
    await admins.press(ADMIN, data(staff, "Add staff"))
    form = await admins.say(ADMIN, "Maria")
    form = await admins.press(ADMIN, data(form, "Agent"))
    form = await admins.say(ADMIN, "x")  # the team is chosen with buttons
    assert "Please answer with the buttons." in form.text
    refused = await admins.press(ADMIN, data(form, "No team"))
    assert tr("en", forms.NEEDS_TEAM) in refused.text
    form = await admins.press(ADMIN, data(form, "Front"))
    form = await admins.say(ADMIN, "PJSIP/207")
    staff = await admins.press(ADMIN, data(form, "Ελληνικά"))
    maria = await Agent.get(user__name="Maria").select_related("user", "team")
    assert maria.team is not None
    assert (maria.user.role, maria.team.name, maria.interface, maria.user.language) == (
        Role.AGENT,
        "Front",
        "PJSIP/207",
        "el",
    )
    assert "Maria added as Agent." in staff.text and "/start " in staff.text
    code = await admins.press(ADMIN, data(staff, "Link code: Maria"))
    assert code.text.startswith("Link code for Maria: ")

    menu = await admins.press(ADMIN, callbacks.admin("m"))
    await admins.press(ADMIN, data(menu, "Add admin"))
    form = await admins.say(ADMIN, "Chris")
    staff = await admins.press(ADMIN, data(form, "English"))
    chris = await Agent.get(user__name="Chris").select_related("user")
    assert chris.user.role == Role.ADMIN and "Chris added as Admin." in staff.text
    kinds = set(await AuditEntry.filter(result="done").values_list("command", flat=True))
    assert {
        "admin: new team 1",
        f"admin: new agent {maria.id}",
        f"admin: new admin {chris.id}",
    } <= kinds


async def test_lists_are_paged_by_eight(admins: Admins) -> None:
    for n in range(10):
        await admin.add_subscriber(
            name=f"S{n:02}", ddis=[f"21006{n:02}"], language="en", timezone="UTC"
        )
    first = await admins.press(ADMIN, callbacks.admin("sl", 0))
    names = [label for row in first.buttons for label, value in row if value.startswith("ad:s:")]
    assert names == [f"S{n:02} (#{n + 1})" for n in range(8)]
    assert "Page 1 of 2" in first.text
    second = await admins.press(ADMIN, data(first, "Next"))
    names = [label for row in second.buttons for label, value in row if value.startswith("ad:s:")]
    assert names == ["S08 (#9)", "S09 (#10)"]
    assert data(second, "‹ Previous") == callbacks.admin("sl", 0)
    card = await admins.press(ADMIN, data(second, "S09"))
    assert card.text.startswith("S09 (#10)")


async def test_a_pbx_that_cannot_be_reached_keeps_the_change_and_says_so(admins: Admins) -> None:
    card = await _new_subscriber(admins)
    admins.pbx.failures[("DBPut", "scenario/2100500")] = PbxUnavailable("down")
    form = await admins.press(ADMIN, data(card, "Scenario"))
    card = await admins.press(ADMIN, data(form, "Closed"))
    assert "The PBX cannot be reached now" in card.text
    assert (await Subscriber.get(name="Dr Nikolaou")).scenario is Scenario.CLOSED


def test_admin_callback_data_round_trips_and_forgeries_are_none() -> None:
    assert callbacks.unpack_admin(callbacks.admin("f", 12, "timezone", "default")) == (
        "f",
        "12",
        "timezone",
        "default",
    )
    for bad in ("ad:", "ad:S:1", "ad:a:b:c:d:e:f", "adx:m", "ad:m:¹", None):
        assert callbacks.unpack_admin(bad) is None
    longest = callbacks.admin("f", callbacks.MAX_ID, "instructions", "clear")
    assert len(longest.encode()) <= 64
