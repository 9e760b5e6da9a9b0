"""The spine over real sockets: sandbox AMI (TCP) -> gateway -> sandbox Bot API (HTTP).

The gateway and the bot run in this process on the test's loop, exactly as `main.py run`
wires them; only the far ends are the sandbox stand-ins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.runtime import Runtime
from gateway.control import admin
from models.database import migrate
from models.db import Appointment, AuditEntry, Delivery, DeliveryStatus, Subscriber
from models.db import Call as CallRow
from models.events import CallOutcome, CallSnapshot, CallStatus
from models.settings import load_settings, with_section
from models.vocab import Scenario
from sandbox.ami_server import AmiServer, encode_frame
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer, Call
from tests.pg_cluster import database_url_for

TOKEN = "123456:TEST-token"
SECRET = "test-secret"
CHAT = 4242
DDI = "2100001"
WAIT = 10.0


@dataclass
class Stack:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    calls: CallFactory
    stored: asyncio.Queue[tuple[int, DeliveryStatus]]

    async def play_and_route(self, frames: list[dict[str, str]], chunk: list[int]) -> None:
        """Play one call and wait until the gateway has routed its end."""
        linkedid = frames[0]["Linkedid"]
        done = asyncio.Event()

        def observe(snap: CallSnapshot) -> None:
            if snap.ended and snap.linkedid == linkedid:
                done.set()

        self.runtime.gateway.observers.append(observe)
        try:
            await self.ami.play(frames, chunk_sizes=chunk)
            await asyncio.wait_for(done.wait(), WAIT)
        finally:
            self.runtime.gateway.observers.remove(observe)

    def watch(self, linkedid: str) -> asyncio.Queue[CallSnapshot]:
        """Every routed snapshot of that call from now on."""
        seen: asyncio.Queue[CallSnapshot] = asyncio.Queue()

        def observe(snap: CallSnapshot) -> None:
            if snap.linkedid == linkedid:
                seen.put_nowait(snap)

        self.runtime.gateway.observers.append(observe)
        return seen

    async def next_where(
        self, seen: asyncio.Queue[CallSnapshot], ok: Callable[[CallSnapshot], bool]
    ) -> CallSnapshot:
        while not ok(snap := await asyncio.wait_for(seen.get(), WAIT)):
            pass
        return snap

    async def health(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.runtime.gateway.http_port}/healthz"
        async with ClientSession() as http, http.get(url) as response:
            return dict(await response.json())


def _missed_message(call: Call) -> bool:
    return (
        call.method == "sendMessage"
        and str(call.params.get("chat_id")) == str(CHAT)
        and "reply_markup" in call.params
    )


def _missed_sent(bot: BotApiServer) -> list[Call]:
    return [c for c in bot.sent if _missed_message(c)]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    # A PBX up for an hour already, so that a restart shows in FullyBooted's Uptime.
    async with AmiServer(secret=SECRET, uptime=3600) as ami, BotApiServer(TOKEN) as bot:
        s = load_settings(None, environ={})
        s = with_section(s, "database", url=database_url_for(tmp_path / "e2e.sqlite3"))
        s = with_section(s, "ami", port=ami.port, secret=SECRET, reconnect_min=0.05)
        s = with_section(s, "ami", ping_interval=0.3, ping_timeout=2.0)
        s = with_section(
            s, "telegram", token=TOKEN, base_url=bot.base_url, base_file_url=bot.base_file_url
        )
        s = with_section(s, "telegram", poll_timeout=1.0)
        s = with_section(s, "http", port=0)
        s = with_section(s, "outbox", idle_poll=0.2)
        await migrate(s.database.url)
        runtime = Runtime(s)
        await runtime.start()
        try:
            await ami.wait_logged_in(timeout=WAIT)
            # The login's sync done, so a test counting syncs counts only later logins'.
            await runtime.gateway.wait_synced(0, WAIT)
            created = await admin.add_subscriber(
                name="Ιατρείο Παπαδόπουλου",
                ddis=[DDI],
                language="el",
                timezone="Europe/Athens",
                mobile="+306944000001",
            )
            bot.inject_message(CHAT, f"/start {created.link_code}", language_code="el")
            await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
            stored: asyncio.Queue[tuple[int, DeliveryStatus]] = asyncio.Queue()
            runtime.gateway.outbox.observers.append(lambda i, st: stored.put_nowait((i, st)))
            yield Stack(ami, bot, runtime, CallFactory(), stored)
        finally:
            await runtime.stop()


async def test_missed_call_over_tcp_reaches_the_bot_api_once(stack: Stack) -> None:
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Μαρία Νίκου")
    await stack.play_and_route(frames, chunk=[1, 5, 13])  # every multibyte name split

    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    text = sent.params["text"]
    assert "Μαρία Νίκου" in text and "+302101234567" in text
    assert "Αναπάντητη" in text  # Greek, the subscriber's language
    buttons = sent.params["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"].split(":")[0] for b in buttons] == ["callback", "fwdme"]

    delivery_id, status = await asyncio.wait_for(stack.stored.get(), WAIT)
    assert status == DeliveryStatus.SENT
    delivery = await Delivery.get(id=delivery_id)
    assert (delivery.kind, delivery.channel, delivery.attempts) == ("missed_call", "telegram", 1)
    assert delivery.receipt == str(sent.result["message_id"])
    assert len(_missed_sent(stack.bot)) == 1


async def test_answered_call_sends_nothing(stack: Stack) -> None:
    frames = stack.calls.agent_answered(ddi=DDI, caller_num="+302107654321", caller_name="Νίκος")
    await stack.play_and_route(frames, chunk=[64])
    await stack.runtime.gateway.drain()
    assert await Delivery.filter(kind="missed_call").count() == 0
    assert _missed_sent(stack.bot) == []


async def test_malformed_ami_input_is_skipped_and_the_gateway_goes_on(stack: Stack) -> None:
    bad = (
        b"\x00\xff garbage that is no frame at all\r\n\r\n"
        + b"Privilege: call,all\r\nChannel: PJSIP/x\r\n\r\n"  # no Event
        + b"Event: Newchannel\r\nX-Huge: "
        + b"A" * (1024 * 1024)
        + b"\r\n\r\n"
        + encode_frame({"Event": "Newchannel", "CallerIDName": "x"}).replace(b"x", b"\xc3\x28")
    )
    await stack.ami.push_raw(bad, chunk_sizes=[4096])
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Γιώργος")
    await stack.play_and_route(frames, chunk=[7])

    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    assert "Γιώργος" in sent.params["text"]
    stats = stack.runtime.gateway.ami.parsers[-1].stats
    # garbage and the Event-less frame; the 1 MB one; \xff in the garbage and \xc3\x28
    assert (stats.malformed, stats.oversized, stats.bad_utf8) == (2, 1, 2)
    assert stack.runtime.gateway.ami.connected.is_set()


def _reasserting(action: dict[str, str]) -> bool:
    """The AstDB re-assert reading what the PBX holds (it writes only what differs)."""
    return action.get("Action") == "DBGetTree" and action.get("Family") == "frontdesk"


async def test_reconnects_after_asterisk_restart_and_reasserts_astdb(stack: Stack) -> None:
    logins, syncs = stack.ami.logins, stack.runtime.gateway.pbx_syncs
    stack.ami.astdb[f"frontdesk/scenario/{DDI}"] = "closed"  # changed by hand meanwhile
    await stack.ami.restart()  # every session dropped, as by `core restart now`
    await stack.ami.wait_logged_in(1, timeout=WAIT)
    assert stack.ami.logins == logins + 1
    # On (re)connect the gateway writes back what differs from its database.
    await stack.runtime.gateway.wait_synced(after=syncs, timeout=WAIT)
    assert stack.ami.astdb[f"frontdesk/scenario/{DDI}"] == "agent"

    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Ελένη")
    await stack.play_and_route(frames, chunk=[32])
    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    assert "Ελένη" in sent.params["text"]


async def test_a_hung_asterisk_is_detected_by_the_keepalive_and_reconnected(stack: Stack) -> None:
    ami, logins = stack.ami, stack.ami.logins
    ami.unanswered.add("ping")  # the TCP link stays up, but Asterisk answers nothing
    await ami.wait_until(lambda: ami.logins > logins, WAIT)  # dropped the link, logged in anew
    ami.unanswered.clear()

    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Σοφία")
    await stack.play_and_route(frames, chunk=[32])
    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    assert "Σοφία" in sent.params["text"]


async def _tap(stack: Stack, data: str, message_id: int = 1) -> str:
    """Tap an inline button; returns the text of the bot's answerCallbackQuery."""
    query = stack.bot.inject_callback(CHAT, message_id, data, language_code="el")
    answer = await stack.bot.wait_for(
        lambda c: (
            c.method == "answerCallbackQuery"
            and c.params.get("callback_query_id") == query["callback_query"]["id"]
        ),
        timeout=WAIT,
    )
    return str(answer.params.get("text", ""))


async def test_buttons_call_back_and_forward_act_on_the_pbx(stack: Stack) -> None:
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Μαρία")
    await stack.play_and_route(frames, chunk=[64])
    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    call_back, forward = sent.params["reply_markup"]["inline_keyboard"][0]
    message_id = sent.result["message_id"]

    answer = await _tap(stack, call_back["callback_data"], message_id)
    assert answer.startswith("Καλούμε τώρα το κινητό σας")
    originate = await stack.ami.wait_action("Originate", timeout=WAIT)
    assert originate["Channel"] == "Local/+306944000001@frontdesk-callback"
    assert originate["Exten"] == "+302101234567"

    answer = await _tap(stack, forward["callback_data"], message_id)
    assert answer == "Οι κλήσεις προωθούνται πλέον στο +306944000001."
    assert stack.ami.astdb[f"frontdesk/scenario/{DDI}"] == "forward"
    assert stack.ami.astdb[f"frontdesk/forward/{DDI}"] == "+306944000001"


async def test_forged_button_data_is_refused_and_does_nothing(stack: Stack) -> None:
    other = await admin.add_subscriber(
        name="Other", ddis=["2100077"], language="en", timezone="UTC", mobile="+306944000077"
    )
    frames = stack.calls.missed(ddi="2100077", caller_num="+302101234567", caller_name="X")
    await stack.play_and_route(frames, chunk=[64])
    foreign = await CallRow.get(subscriber_id=other.subscriber.id)
    forged = (
        f"callback:{foreign.id}",
        f"fwdme:{foreign.id}",
        f"book:{foreign.id}",
        f"bk:{foreign.id}:1795400000",
        "scn:closed; DROP",
        "callback:999999",
        "rm -rf:1",
    )
    await stack.runtime.gateway.wait_synced(0, WAIT)  # the login's AstDB re-assert is done
    before = len(stack.ami.actions)
    for data in forged:
        assert await _tap(stack, data) == "Αυτό το κουμπί δεν είναι για εσάς."
    acted = [a for a in stack.ami.actions[before:] if a.get("Action") in ("Originate", "DBPut")]
    assert acted == []
    assert await Appointment.all().count() == 0


async def test_a_429_waits_retry_after_then_succeeds(stack: Stack) -> None:
    stack.bot.fail_next("sendMessage", status=429, retry_after=1, chat_id=CHAT)
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Ηλίας")
    await stack.play_and_route(frames, chunk=[64])
    sent = await stack.bot.wait_for(lambda c: _missed_message(c) and c.ok, timeout=WAIT)
    refused = [c for c in stack.bot.requests if _missed_message(c) and c.status == 429]
    assert len(refused) == 1 and "Ηλίας" in sent.params["text"]
    assert sent.at - refused[0].at >= 1.0  # the Bot API's retry_after was honoured
    outcomes = [await asyncio.wait_for(stack.stored.get(), WAIT) for _ in range(2)]
    assert [status for _, status in outcomes] == [DeliveryStatus.PENDING, DeliveryStatus.SENT]
    delivery = await Delivery.get(id=outcomes[1][0])
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)


async def test_scenario_menu_switches_the_lines_and_edits_its_message(stack: Stack) -> None:
    stack.bot.inject_message(CHAT, "/scenario", language_code="el")
    menu = await stack.bot.wait_for(
        lambda c: c.method == "sendMessage" and "reply_markup" in c.params and c.ok, timeout=WAIT
    )
    rows = menu.params["reply_markup"]["inline_keyboard"]
    voicemail = next(r[0] for r in rows if r[0]["callback_data"] == "scn:voicemail")
    assert voicemail["text"] == "Τηλεφωνητής"
    stack.bot.inject_callback(
        CHAT, menu.result["message_id"], voicemail["callback_data"], language_code="el"
    )
    put = await stack.ami.wait_action("DBPut", lambda a: a.get("Val") == "voicemail", WAIT)
    assert put["Key"] == f"scenario/{DDI}" and put["Family"] == "frontdesk"
    edited = await stack.bot.wait_for(lambda c: c.method == "editMessageText", timeout=WAIT)
    assert edited.params["text"] == "Κλήσεις: Τηλεφωνητής."
    [entry] = await AuditEntry.all()
    assert (entry.channel, entry.actor, entry.result) == ("telegram", str(CHAT), "done")


async def test_a_timed_scenario_reverts_by_itself_on_a_controlled_clock(stack: Stack) -> None:
    control = stack.runtime.gateway.control
    subscriber = await Subscriber.get(name="Ιατρείο Παπαδόπουλου")
    until = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    await control.set_scenario(subscriber, Scenario.CLOSED, until=until)
    assert stack.ami.astdb[f"frontdesk/scenario/{DDI}"] == "closed"
    assert await control.revert_due(until - timedelta(seconds=1)) == 0
    assert stack.ami.astdb[f"frontdesk/scenario/{DDI}"] == "closed"
    assert await control.revert_due(until) == 1
    assert stack.ami.astdb[f"frontdesk/scenario/{DDI}"] == "agent"
    back = await Subscriber.get(id=subscriber.id)
    assert (back.scenario, back.scenario_until) == (Scenario.AGENT, None)


async def test_command_menus_are_published_in_every_language(stack: Stack) -> None:
    menus = {
        c.params.get("language_code", ""): c.params["commands"]
        for c in stack.bot.requests
        if c.method == "setMyCommands" and c.ok
    }
    assert set(menus) == {"", "en", "el", "ru", "zh"}
    greek = {c["command"]: c["description"] for c in menus["el"]}
    assert greek["scenario"] == "Επιλέξτε πώς απαντώνται οι κλήσεις"
    assert [c["command"] for c in menus["zh"]] == ["scenario", "status", "diary", "calls", "help"]


async def test_forward_from_telegram_moves_the_call_ringing_now(stack: Stack) -> None:
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Άρης")
    ringing = next(i for i, f in enumerate(frames) if f.get("Event") == "HangupRequest")
    seen = asyncio.Event()

    def observe(snap: CallSnapshot) -> None:
        # Our dialplan has named the DDI and the queue is ringing the agents.
        if snap.linkedid == frames[0]["Linkedid"] and snap.ddi == DDI and snap.caller_channel:
            seen.set()

    stack.runtime.gateway.observers.append(observe)
    await stack.ami.play(frames[:ringing], chunk_sizes=[64])  # agents ringing, nobody answered
    await asyncio.wait_for(seen.wait(), WAIT)
    stack.bot.inject_message(CHAT, "προώθηση", language_code="el")
    redirect = await stack.ami.wait_action("Redirect", timeout=WAIT)
    assert redirect["Channel"] == frames[0]["Channel"]
    assert (redirect["Context"], redirect["Exten"]) == ("frontdesk-moved", "+306944000001")
    # Asked first whose the channel is: a restarted PBX reuses channel names.
    getvar = await stack.ami.wait_action("Getvar", timeout=WAIT)
    assert (getvar["Channel"], getvar["Variable"]) == (frames[0]["Channel"], "CHANNEL(linkedid)")
    assert stack.ami.actions.index(getvar) < stack.ami.actions.index(redirect)
    assert stack.ami.astdb[f"frontdesk/scenario/{DDI}"] == "forward"


async def test_book_a_time_button_offers_free_slots_and_books_the_caller(stack: Stack) -> None:
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Ρένα")
    await stack.play_and_route(frames, chunk=[64])
    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    book = sent.params["reply_markup"]["inline_keyboard"][1][0]
    assert book["text"] == "Κλείστε ραντεβού"
    message_id = sent.result["message_id"]
    await _tap(stack, book["callback_data"], message_id)
    grown = await stack.bot.wait_for(
        lambda c: c.method == "editMessageReplyMarkup" and c.ok, timeout=WAIT
    )
    slots = grown.params["reply_markup"]["inline_keyboard"][2:]
    assert len(slots) == 3 and all(s[0]["callback_data"].startswith("bk:") for s in slots)

    answer = await _tap(stack, slots[0][0]["callback_data"], message_id)
    assert answer.startswith("Κλείστηκε: Ρένα")
    edited = await stack.bot.wait_for(lambda c: c.method == "editMessageText", timeout=WAIT)
    assert edited.params["text"].endswith(f"✓ {answer}")  # the same message, confirmed
    [appointment] = await Appointment.all()
    chosen = int(slots[0][0]["callback_data"].rsplit(":", 1)[1])
    assert int(appointment.starts_at.timestamp()) == chosen and appointment.name == "Ρένα"


def _ringing(frames: list[dict[str, str]]) -> list[dict[str, str]]:
    """A missed call's frames while the agents ring, before the caller hangs up."""
    return frames[: next(i for i, f in enumerate(frames) if f["Event"] == "HangupRequest")]


async def _wait_tracking(stack: Stack, frames: list[dict[str, str]]) -> asyncio.Queue[CallSnapshot]:
    """Play the frames and wait until the gateway tracks the call as routed and ringing."""
    seen = stack.watch(frames[0]["Linkedid"])
    await stack.ami.play(frames, chunk_sizes=[64])
    await stack.next_where(seen, lambda s: s.ddi == DDI and s.status is CallStatus.WAITING)
    return seen


async def test_a_call_lost_in_a_pbx_crash_ends_unknown_and_alerts_nobody(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = stack.runtime.gateway
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Άννα")
    seen = await _wait_tracking(stack, _ringing(frames))
    assert (await stack.health())["calls_in_progress"] == 1

    with caplog.at_level(logging.INFO, "gateway.app"):
        await stack.ami.restart(shutdown_event=False)  # a crash: no Shutdown, no Hangup
        end = await stack.next_where(seen, lambda s: s.ended)

    assert (end.outcome, end.status) == (CallOutcome.UNKNOWN, CallStatus.UNKNOWN)
    assert "after an Asterisk restart" in caplog.text
    await gateway.drain()
    row = await CallRow.get(linkedid=frames[0]["Linkedid"])
    assert (row.status, row.outcome) == (CallStatus.UNKNOWN, CallOutcome.UNKNOWN)
    assert await Delivery.filter(kind="missed_call").count() == 0
    health = await stack.health()
    assert (health["calls_in_progress"], health["ami_connected"]) == (0, True)

    # The next call, with the dead call's channel name, is tracked and alerts as usual.
    again = CallFactory(start_epoch=1795400000).missed(DDI, "+302107654321", "Νίκος")
    assert again[0]["Channel"] == frames[0]["Channel"]
    await stack.play_and_route(again, chunk=[64])
    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    assert "Νίκος" in sent.params["text"] and len(_missed_sent(stack.bot)) == 1


async def test_without_the_channel_list_a_reconnect_keeps_calls_and_a_restart_ends_them(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """An AMI user not allowed CoreShowChannels: FullyBooted alone must decide."""
    stack.ami.denied.add("coreshowchannels")
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Άννα")
    seen = await _wait_tracking(stack, _ringing(frames))
    sent_before = len(stack.ami.actions)

    def reasserted() -> bool:
        return any(_reasserting(a) for a in stack.ami.actions[sent_before:])

    with caplog.at_level(logging.INFO, "gateway.app"):
        await stack.ami.drop_clients()
        await stack.ami.wait_until(reasserted, WAIT)
    assert "cannot list channels" in caplog.text and "Permission denied" in caplog.text
    assert (await stack.health())["calls_in_progress"] == 1  # maybe still ringing: kept

    await stack.ami.restart(shutdown_event=False)
    end = await stack.next_where(seen, lambda s: s.ended)  # surely gone: a restart
    assert end.outcome is CallOutcome.UNKNOWN
    await stack.runtime.gateway.drain()
    assert await Delivery.filter(kind="missed_call").count() == 0


async def test_a_reconnect_to_the_same_pbx_keeps_the_live_call(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    frames = stack.calls.missed(ddi=DDI, caller_num="+302101234567", caller_name="Ζωή")
    ringing = _ringing(frames)
    seen = await _wait_tracking(stack, ringing)
    sent_before = len(stack.ami.actions)

    def reconciled_and_reasserted() -> bool:
        sent = stack.ami.actions[sent_before:]
        names = [a.get("Action") for a in sent]
        tail = sent[names.index("CoreShowChannels") :] if "CoreShowChannels" in names else []
        return any(_reasserting(a) for a in tail)

    with caplog.at_level(logging.INFO, "gateway.app"):
        await stack.ami.drop_clients()  # the link blinks; the PBX and its channels stay
        await stack.ami.wait_until(reconciled_and_reasserted, WAIT)
        await stack.runtime.gateway.drain()
    assert "reconnected to the same Asterisk run" in caplog.text
    assert (await stack.health())["calls_in_progress"] == 1
    while not seen.empty():
        assert not seen.get_nowait().ended

    await stack.ami.play(frames[len(ringing) :], chunk_sizes=[64])
    end = await stack.next_where(seen, lambda s: s.ended)
    assert end.outcome is CallOutcome.ABANDONED
    sent = await stack.bot.wait_for(_missed_message, timeout=WAIT)
    assert "Ζωή" in sent.params["text"]


async def test_a_call_moved_to_the_mobile_and_answered_there_is_forwarded(stack: Stack) -> None:
    before, after = stack.calls.moved_answered(
        ddi=DDI, caller_num="+302101234567", caller_name="Άρης", mobile="+306944000001"
    )
    seen = await _wait_tracking(stack, before)
    stack.bot.inject_message(CHAT, "προώθηση", language_code="el")
    await stack.ami.wait_action("Redirect", timeout=WAIT)
    moved = await stack.next_where(seen, lambda s: s.status is CallStatus.FORWARDED)
    assert moved.answered_at is None  # the mobile rings

    await stack.ami.play(after, chunk_sizes=[64])
    end = await stack.next_where(seen, lambda s: s.ended)
    assert (end.outcome, end.answered_by) == (CallOutcome.FORWARDED, "+306944000001")
    await stack.runtime.gateway.drain()
    row = await CallRow.get(linkedid=before[0]["Linkedid"])
    assert (row.outcome, row.answered_by) == (CallOutcome.FORWARDED, "+306944000001")
    assert await Delivery.filter(kind="missed_call").count() == 0
