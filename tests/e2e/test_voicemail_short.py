"""A message too short to be one (the caller hung up at the beep) is a missed call, once.

Asterisk's app_voicemail with its default `minsecs=0` keeps a 0-second message and sets
VMSTATUS=SUCCESS, so the tracker ends the call as `voicemail` and the router tells nobody.
The voicemail desk then tells the missed call itself, under the router's dedupe key, and
the two must never both tell it: whichever of the call's end and the spool scan comes
first, across rescans and restarts. The router and the desk run here against one
migrated database and a spool laid out as Asterisk lays it out.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.calls.router import Router
from gateway.control import admin
from gateway.delivery.notices import Notices
from gateway.voicemail.spool import VoicemailDesk
from gateway.voicemail.transcription import Transcriber
from models.db import Call, Delivery, Notification, Role, User, Voicemail
from models.events import CallOutcome, CallSnapshot, CallStatus
from models.settings import RoutingSettings, TranscriptionSettings, VoicemailSettings, load_settings
from tests.e2e.test_voicemail import leave_message, tone_wav

DDI = "2100001"
CHAT = 77
ORIGTIME = 1_795_350_000  # when app_voicemail began recording
LINKEDID = "1795349980.42"
CALLER = '"Μαρία" <2107654321>'
CALLER_E164 = "+302107654321"

# (WAV seconds, the .txt's whole seconds): Asterisk wrote both of these for a caller who
# hung up at once after the beep, or said half a word. The second shows that the WAV is
# measured: the .txt alone would let it through.
SILENT = {"0 s": (0.0, 0), "0.4 s": (0.4, 2)}


class Pbx:
    """The router and the voicemail desk of one gateway, telling one Telegram chat."""

    def __init__(self, tmp: Path, min_seconds: float = 1.0) -> None:
        self.spool = tmp / "spool"
        self.notices = Notices({"telegram"}, RoutingSettings(default_channels="telegram"))
        self.router = Router(self.notices)
        self.settings = VoicemailSettings(
            spool=str(self.spool), archive=str(tmp / "archive"), min_seconds=min_seconds
        )
        self.desk = self.restarted_desk()

    def restarted_desk(self) -> VoicemailDesk:
        transcriber = Transcriber(TranscriptionSettings(engine="none"))
        return VoicemailDesk(self.settings, self.notices, transcriber)

    def leave(self, seconds: float, txt_seconds: int, msg_id: str = "1795350000-00000001") -> None:
        leave_message(
            self.spool,
            DDI,
            0,
            tone_wav(seconds),
            CALLER,
            msg_id,
            duration=txt_seconds,
            origtime=ORIGTIME,
        )


def call(outcome: CallOutcome | None = None, linkedid: str = LINKEDID) -> CallSnapshot:
    """The tracker's snapshot: ringing (no outcome) or ended with `outcome`."""
    live = CallSnapshot(
        linkedid=linkedid,
        started_at=ORIGTIME - 20.0,
        ddi=DDI,
        scenario="voicemail",
        caller_number="2107654321",
        caller_name="Μαρία",
        status=CallStatus.WAITING,
    )
    if outcome is None:
        return live
    status = {
        CallOutcome.VOICEMAIL: CallStatus.NOT_ANSWERED,
        CallOutcome.ABANDONED: CallStatus.LOST,
    }
    return replace(live, outcome=outcome, status=status[outcome], ended_at=ORIGTIME + 3.0)


async def subscriber_with_chat() -> None:
    created = await admin.add_subscriber(
        name="Ιατρείο", ddis=[DDI], language="el", timezone="Europe/Athens"
    )
    await User.create(
        name="Dr", role=Role.SUBSCRIBER, telegram_chat_id=CHAT, subscriber=created.subscriber
    )


async def told() -> list[tuple[str, str]]:
    """(kind, dedupe key) of every notification, and each must have one delivery."""
    notes = await Notification.all().order_by("id")
    assert await Delivery.all().count() == len(notes)
    return [(n.kind, n.dedupe_key) for n in notes]


async def nothing_more_is_told(pbx: Pbx, before: list[tuple[str, str]]) -> None:
    """Rescan, restart, and the call's end reported again: nobody is told twice."""
    assert await pbx.desk.scan() == 0
    assert await pbx.restarted_desk().scan() == 0
    await pbx.router.on_call(call(CallOutcome.VOICEMAIL))
    assert await told() == before
    if await Call.exists(linkedid=LINKEDID):
        row = await Call.get(linkedid=LINKEDID)
        assert (row.outcome, row.status) == (CallOutcome.ABANDONED, CallStatus.LOST)


@pytest.mark.parametrize("order", ["end, then scan", "scan, then end"])
@pytest.mark.parametrize("silent", SILENT)
async def test_a_silent_message_is_one_missed_call_whichever_comes_first(
    db: str, tmp_path: Path, order: str, silent: str
) -> None:
    await subscriber_with_chat()
    pbx = Pbx(tmp_path)
    await pbx.router.on_call(call())  # the call rings: its row exists from the start
    pbx.leave(*SILENT[silent])
    if order == "end, then scan":
        await pbx.router.on_call(call(CallOutcome.VOICEMAIL))  # VMSTATUS=SUCCESS
        assert await told() == []  # a voicemail, as far as the router knows
        assert await pbx.desk.scan() == 1
    else:
        assert await pbx.desk.scan() == 1
        await pbx.router.on_call(call(CallOutcome.VOICEMAIL))

    assert await told() == [("missed_call", f"missed_call:{LINKEDID}")]
    row = await Call.get(linkedid=LINKEDID)
    assert (row.outcome, row.status) == (CallOutcome.ABANDONED, CallStatus.LOST)
    [delivery] = await Delivery.all()
    assert delivery.kind == "missed_call" and delivery.address == str(CHAT)
    assert "Αναπάντητη κλήση" in delivery.text and CALLER_E164 in delivery.text
    assert delivery.buttons[0][0]["data"] == f"callback:{row.id}"  # the router's buttons
    # Recorded (never taken again) and archived, tied to its call.
    [voicemail] = await Voicemail.all()
    assert voicemail.call_id == row.id  # type: ignore[attr-defined]
    assert voicemail.duration < 1.0
    assert await asyncio.to_thread(Path(voicemail.audio_path).exists)
    await nothing_more_is_told(pbx, await told())


@pytest.mark.parametrize("order", ["end, then scan", "scan, then end"])
async def test_a_call_the_tracker_ended_abandoned_is_told_once_with_its_silent_message(
    db: str, tmp_path: Path, order: str
) -> None:
    # VMSTATUS was not SUCCESS (the caller hung up in the greeting, or minsecs dropped the
    # recording): the router tells the missed call; a message in the spool all the same
    # must not tell it again.
    await subscriber_with_chat()
    pbx = Pbx(tmp_path)
    await pbx.router.on_call(call())
    pbx.leave(0.0, 0)
    if order == "end, then scan":
        await pbx.router.on_call(call(CallOutcome.ABANDONED))
        assert await pbx.desk.scan() == 1
    else:
        assert await pbx.desk.scan() == 1
        await pbx.router.on_call(call(CallOutcome.ABANDONED))
    assert await told() == [("missed_call", f"missed_call:{LINKEDID}")]
    row = await Call.get(linkedid=LINKEDID)
    assert (row.outcome, row.status) == (CallOutcome.ABANDONED, CallStatus.LOST)


async def test_minsecs_dropped_the_message_so_the_router_alone_tells_it(
    db: str, tmp_path: Path
) -> None:
    # With minsecs, app_voicemail deletes the short recording and sets VMSTATUS=FAILED:
    # the tracker ends the call abandoned and nothing reaches the spool.
    await subscriber_with_chat()
    pbx = Pbx(tmp_path)
    await pbx.router.on_call(call())
    await pbx.router.on_call(call(CallOutcome.ABANDONED))
    assert await pbx.desk.scan() == 0
    assert await told() == [("missed_call", f"missed_call:{LINKEDID}")]


async def test_a_silent_message_twice_in_the_spool_is_one_missed_call(
    db: str, tmp_path: Path
) -> None:
    await subscriber_with_chat()
    pbx = Pbx(tmp_path)
    await pbx.router.on_call(call())
    await pbx.router.on_call(call(CallOutcome.VOICEMAIL))
    # The same message (same msg_id) as msg0000 and msg0001, and another message of the
    # same call: one scan takes them all at once.
    for n, msg_id in enumerate(["1795350000-00000001", "1795350000-00000001", "1795350000-2"]):
        leave_message(
            pbx.spool, DDI, n, tone_wav(0.2), CALLER, msg_id, duration=0, origtime=ORIGTIME
        )
    assert await pbx.desk.scan() == 2
    assert await told() == [("missed_call", f"missed_call:{LINKEDID}")]
    await nothing_more_is_told(pbx, await told())


async def test_a_silent_message_of_a_call_never_seen_is_one_missed_call(
    db: str, tmp_path: Path
) -> None:
    # The gateway was down during the call: no Call row, the message is the missed call.
    await subscriber_with_chat()
    pbx = Pbx(tmp_path)
    pbx.leave(0.0, 0)
    assert await pbx.restarted_desk().scan() == 1
    key = "missed_call:voicemail:1795350000-00000001"
    assert await told() == [("missed_call", key)]
    [delivery] = await Delivery.all()
    assert CALLER_E164 in delivery.text and DDI in delivery.text
    assert delivery.buttons == []  # no call to call back from
    assert await pbx.desk.scan() == 0 and await pbx.restarted_desk().scan() == 0
    assert await told() == [("missed_call", key)]


async def test_a_silent_message_is_not_tied_to_an_answered_call_of_the_same_caller(
    db: str, tmp_path: Path
) -> None:
    # Ten minutes earlier an agent answered the same caller; this call went unseen.
    await subscriber_with_chat()
    pbx = Pbx(tmp_path)
    answered = replace(
        call(CallOutcome.ABANDONED, "1795349400.1"),
        started_at=ORIGTIME - 600.0,
        ended_at=ORIGTIME - 500.0,
        outcome=CallOutcome.ANSWERED,
        status=CallStatus.ANSWERED,
    )
    await pbx.router.on_call(answered)
    pbx.leave(0.0, 0)
    assert await pbx.desk.scan() == 1
    assert await told() == [("missed_call", "missed_call:voicemail:1795350000-00000001")]
    row = await Call.get(linkedid="1795349400.1")
    assert row.outcome == CallOutcome.ANSWERED


@pytest.mark.parametrize(
    ("seconds", "txt_seconds", "min_seconds"),
    [(2.0, 2, 1.0), (1.2, 1, 1.0), (0.0, 0, 0.0)],
    ids=["2 s", "1.2 s", "0 s with min_seconds 0"],
)
async def test_a_message_long_enough_is_still_a_voicemail(
    db: str, tmp_path: Path, seconds: float, txt_seconds: int, min_seconds: float
) -> None:
    await subscriber_with_chat()
    pbx = Pbx(tmp_path, min_seconds=min_seconds)
    await pbx.router.on_call(call())
    await pbx.router.on_call(call(CallOutcome.VOICEMAIL))
    pbx.leave(seconds, txt_seconds)
    assert await pbx.desk.scan() == 1
    assert await told() == [("voicemail", "voicemail:1795350000-00000001")]
    row = await Call.get(linkedid=LINKEDID)
    assert (row.outcome, row.status) == (CallOutcome.VOICEMAIL, CallStatus.NOT_ANSWERED)
    [delivery] = await Delivery.all()
    assert delivery.kind == "voicemail" and delivery.attachments


def test_min_seconds_is_a_setting_like_the_others(tmp_path: Path) -> None:
    assert load_settings(environ={}).voicemail.min_seconds == 1.0
    cfg = tmp_path / "f.toml"
    cfg.write_text("[voicemail]\nmin_seconds = 2\n")
    assert load_settings(cfg, environ={}).voicemail.min_seconds == 2.0
    env = {"FRONTDESK__VOICEMAIL__MIN_SECONDS": "0.5"}
    assert load_settings(cfg, environ=env).voicemail.min_seconds == 0.5
