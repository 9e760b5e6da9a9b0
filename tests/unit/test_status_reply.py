"""The `status` reply tells where calls go, true for every scenario in every language.

The real SMS path on SQLite: an SMS from the subscriber's mobile with the PIN goes
through InboundDesk and CommandDesk; the answer is the reply SMS queued to the mobile.
The subscriber always has a mobile (SMS needs one), and it is named only when calls are
forwarded there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.menus import SCENARIO_LABELS
from gateway.control import admin, pins
from gateway.control.desk import CommandDesk
from gateway.control.inbound import InboundDesk
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from gateway.delivery.render import local_time
from locales import LANGUAGES, tr
from models.db import Delivery, Role, Subscriber, User
from models.settings import RoutingSettings
from models.vocab import Scenario
from notifiers.base import InboundMessage

MOBILE = "+306944000321"
ELSEWHERE = "+306944000999"
PIN = "4821"
CHAT = 321
# The word for "status" in each language's grammar (gateway/control/grammar.py).
STATUS_WORD = {"en": "status", "el": "κατάσταση", "ru": "статус", "zh": "状态"}


class NoPbx:
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        raise AssertionError(f"a status request reached the PBX: {action}")


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pins, "ITERATIONS", 1_000)


async def subscriber(lang: str, scenario: Scenario, **fields: object) -> Subscriber:
    created = await admin.add_subscriber(
        name="S", ddis=["2100321"], language=lang, timezone="Europe/Athens", mobile=MOBILE
    )
    sid = created.subscriber.id
    await admin.set_contact_points(sid, pin=PIN)
    await Subscriber.filter(id=sid).update(scenario=scenario, **fields)
    return await Subscriber.get(id=sid)


async def status_by_sms(lang: str) -> str:
    notices = Notices({"sms"}, RoutingSettings(default_channels="sms"))
    inbound = InboundDesk(notices)
    inbound.on_text = CommandDesk(Control(NoPbx()), notices).on_inbound
    text = f"{PIN} {STATUS_WORD[lang]}"
    await inbound.receive(InboundMessage("sms", MOBILE, "Frontdesk", text, datetime.now(UTC)))
    reply = await Delivery.filter(kind="reply", address=MOBILE).order_by("-id").first()
    assert reply is not None, "no answer"
    return reply.text


def calls(lang: str, scenario: Scenario) -> str:
    return tr(lang, "Calls: {scenario}.", scenario=tr(lang, SCENARIO_LABELS[scenario]))


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("scenario", list(Scenario))
async def test_status_tells_where_calls_go(db: str, scenario: Scenario, lang: str) -> None:
    await subscriber(lang, scenario)
    expected = [calls(lang, scenario)]
    if scenario is Scenario.FORWARD:
        expected.append(tr(lang, "Calls will be forwarded to {number}.", number=MOBILE))
    assert (await status_by_sms(lang)).split("\n") == expected


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_forwarding_names_the_number_set_not_the_mobile(db: str, lang: str) -> None:
    await subscriber(lang, Scenario.FORWARD, forward_number=ELSEWHERE)
    assert (await status_by_sms(lang)).split("\n") == [
        calls(lang, Scenario.FORWARD),
        tr(lang, "Calls will be forwarded to {number}.", number=ELSEWHERE),
    ]


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_a_forward_number_waiting_for_the_forward_scenario_is_not_named(
    db: str, lang: str
) -> None:
    until = datetime(2030, 1, 1, 16, 0, tzinfo=UTC)
    await subscriber(lang, Scenario.VOICEMAIL, forward_number=ELSEWHERE, scenario_until=until)
    label = tr(lang, SCENARIO_LABELS[Scenario.VOICEMAIL])
    when = local_time(lang, "Europe/Athens", until)
    assert await status_by_sms(lang) == tr(
        lang, "Calls: {scenario}, until {time}.", scenario=label, time=when
    )


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_forward_without_any_number_says_calls_are_not_forwarded(db: str, lang: str) -> None:
    # No mobile, so no SMS: asked on Telegram. AstDB gets an empty forward number then.
    created = await admin.add_subscriber(
        name="S", ddis=["2100322"], language=lang, timezone="Europe/Athens"
    )
    await Subscriber.filter(id=created.subscriber.id).update(scenario=Scenario.FORWARD)
    await User.create(
        name="S", role=Role.SUBSCRIBER, telegram_chat_id=CHAT, subscriber=created.subscriber
    )
    desk = CommandDesk(Control(NoPbx()), Notices({"telegram"}, RoutingSettings()))
    reply = await desk.from_telegram(CHAT, STATUS_WORD[lang], datetime.now(UTC))
    assert reply.split("\n") == [
        calls(lang, Scenario.FORWARD),
        tr(lang, "No number to forward to, so calls are not forwarded."),
    ]
