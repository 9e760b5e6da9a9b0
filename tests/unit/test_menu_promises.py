"""The Telegram command menu says what each command answers: `calls` gives today's calls,
voicemails and faxes; `status` gives the scenario and forwarding (its calls are `calls`'s).

Through the command desk as a linked chat would ask, in every language.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.menus import MENU, SCENARIO_LABELS
from gateway.control import admin
from gateway.control.desk import CommandDesk
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from locales import LANGUAGES, tr
from models.db import Call, Notification, Subscriber, Voicemail
from models.events import CallStatus
from models.settings import RoutingSettings
from models.vocab import Kind, Scenario

CHAT = 8181
MOBILE = "+306944000818"
CALLS_WORD = {"en": "calls", "el": "κλήσεις", "ru": "звонки", "zh": "来电"}
STATUS_WORD = {"en": "status", "el": "κατάσταση", "ru": "статус", "zh": "状态"}


class NoPbx:
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        raise AssertionError(f"a question reached the PBX: {action}")


async def linked(lang: str) -> Subscriber:
    created = await admin.add_subscriber(
        name="S", ddis=["2100818"], language=lang, timezone="UTC", mobile=MOBILE
    )
    await admin.link_chat(created.link_code, CHAT, "S", lang)
    return created.subscriber


async def ask(text: str) -> list[str]:
    desk = CommandDesk(Control(NoPbx()), Notices({"telegram"}, RoutingSettings()))
    return (await desk.from_telegram(CHAT, text, datetime.now(UTC))).split("\n")


def test_the_menu_says_what_calls_and_status_answer() -> None:
    menu = dict(MENU)
    assert menu["calls"] == "Today's calls, voicemails and faxes"
    assert menu["status"] == "Your lines: scenario and forwarding"


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_calls_counts_todays_calls_voicemails_and_faxes(db: str, lang: str) -> None:
    s = await linked(lang)
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1, hours=1)
    for linkedid, when in (("1.1", now), ("1.2", yesterday)):
        await Call.create(
            linkedid=linkedid,
            ddi="2100818",
            subscriber=s,
            caller_number="+302101234567",
            started_at=when,
            status=CallStatus.LOST,
        )
    for i, when in enumerate((now, yesterday)):
        await Voicemail.create(
            key=f"m{i}", mailbox="2100818@default", subscriber=s, left_at=when, audio_path="x"
        )
    for i, when in enumerate((now, now, yesterday)):
        fax = await Notification.create(dedupe_key=f"fax:{i}", subscriber=s, kind=Kind.FAX)
        await Notification.filter(id=fax.id).update(created_at=when)
    await Notification.create(dedupe_key="missed_call:1.1", subscriber=s, kind=Kind.MISSED_CALL)

    *calls, voicemails, faxes = await ask(CALLS_WORD[lang])
    assert len(calls) == 1 and "+302101234567" in calls[0]
    assert voicemails == tr(lang, "Voicemails today: {count}", count=1)
    assert faxes == tr(lang, "Faxes today: {count}", count=2)


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_status_answers_scenario_and_forwarding(db: str, lang: str) -> None:
    s = await linked(lang)
    await Subscriber.filter(id=s.id).update(scenario=Scenario.FORWARD)
    label = tr(lang, SCENARIO_LABELS[Scenario.FORWARD])
    assert await ask(STATUS_WORD[lang]) == [
        tr(lang, "Calls: {scenario}.", scenario=label),
        tr(lang, "Calls will be forwarded to {number}.", number=MOBILE),
    ]
