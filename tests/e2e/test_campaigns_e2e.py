"""A call list of 20 contacts worked by an agent through the sandbox Bot API: /campaigns
shows it, each Next places an Originate (the agent's phone first) seen by the sandbox
AMI, a premium-rate number the subscriber's outbound policy refuses is skipped and marked,
the outcomes pressed are recorded, and the counters the agent sees at the end are right
(12 done, 5 unanswered, 2 still pending, 1 skipped)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.runtime import Runtime
from gateway.campaigns import importing, lists, work
from gateway.staff.tasks import CALL_CONTEXT
from models.campaigns import Campaign, CampaignEntry, EntryStatus
from models.database import migrate
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer, Call
from tests.desk_people import MARIA, People, button, make_people, message_id, said_to
from tests.stack import sandbox_settings

TOKEN = "123456:CAMPAIGNS-token"
WAIT = 10.0
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
REFUSED_AT = 7  # the premium-rate contact's position
PREMIUM = "+309011234567"


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    people: People


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        s = sandbox_settings(tmp_path / "campaigns.sqlite3", ami, bot, TOKEN)
        await migrate(s.database.url)
        runtime = Runtime(s)
        runtime.gateway.campaigns.clock = lambda: NOW
        await runtime.start()
        try:
            await ami.wait_logged_in(timeout=WAIT)
            yield Desk(ami, bot, runtime, await make_people())
        finally:
            await runtime.stop()


def csv_of_20() -> str:
    rows = ["name,number"]
    for i in range(1, 21):
        number = PREMIUM if i == REFUSED_AT else f"69440001{i:02d}"
        rows.append(f"Customer {i},{number}")
    return "\n".join(rows) + "\n"


async def make_list(people: People) -> Campaign:
    campaign = await lists.create(
        subscriber_id=people.subscriber.id,
        name="Flu shots",
        script="Good morning, Dr Papadopoulos' office: the flu shots are in.",
        starts_on=date(2026, 11, 20),
        ends_on=date(2026, 11, 30),
        agent_id=people.maria.id,
    )
    contacts, errors = importing.parse(csv_of_20(), "GR")
    assert errors == [] and len(contacts) == 20
    assert await lists.add_contacts(campaign, contacts) == []
    return campaign


def originates(ami: AmiServer) -> list[dict[str, str]]:
    return [a for a in ami.actions if a.get("Action") == "Originate"]


async def press(desk: Desk, card: Call, label: str, then: str) -> Call:
    """Press a button of the agent's card; the card edited in place to show `then`."""
    desk.bot.inject_callback(MARIA, message_id(card), button(card, label))
    return await desk.bot.wait_for(said_to(MARIA, then), timeout=WAIT)


async def test_an_agent_works_a_list_of_20_from_telegram(desk: Desk) -> None:
    campaign = await make_list(desk.people)
    desk.bot.inject_message(MARIA, "/campaigns")
    card = await desk.bot.wait_for(said_to(MARIA, "Call list: Flu shots"), timeout=WAIT)
    assert "the flu shots are in" in card.params["text"]
    assert "Pending: 20" in card.params["text"]

    # 12 reached, 5 no answer (the 7th, premium-rate, skipped on the way), 2 left.
    plan = ["Reached"] * 12 + ["No answer"] * 5
    callable_positions = [p for p in range(1, 21) if p != REFUSED_AT]
    for n, (position, outcome) in enumerate(zip(callable_positions, plan, strict=False), 1):
        heading = f"Contact {position} of 20: Customer {position}\n"
        card = await press(desk, card, "Next", heading)
        assert "Status: in progress" in card.params["text"]
        if position == REFUSED_AT + 1:
            assert f"Skipped (outbound policy): Customer {REFUSED_AT} {PREMIUM}" in str(
                card.params["text"]
            )
        await desk.ami.wait_until(lambda n=n: len(originates(desk.ami)) == n, timeout=WAIT)
        placed = originates(desk.ami)[-1]
        assert placed["Channel"] == "PJSIP/agent1"  # the agent's phone rings first
        assert (placed["Context"], placed["Exten"]) == (CALL_CONTEXT, f"+3069440001{position:02d}")
        desk.bot.inject_callback(MARIA, message_id(card), button(card, outcome))
        card = await desk.bot.wait_for(
            lambda c, h=heading, o=outcome: (
                said_to(MARIA, h)(c) and f"Outcome: {o}" in c.params["text"]
            ),
            timeout=WAIT,
        )

    expected = "In progress: 0 · Unanswered: 5 · Pending: 2 · Done: 12 · Skipped: 1"
    assert expected in card.params["text"]
    assert len(originates(desk.ami)) == 17
    assert all(a["Exten"] != PREMIUM for a in originates(desk.ami))
    refused = await CampaignEntry.get(campaign_id=campaign.id, position=REFUSED_AT)
    assert (refused.status, refused.outcome) == (EntryStatus.REFUSED, "premium")
    assert await work.counters(campaign.id) == work.Counters(
        pending=2, unanswered=5, done=12, refused=1
    )

    # Previous goes back to the agent's last contact; /campaigns shows the same counters.
    card = await press(desk, card, "◀ Previous", "Contact 18 of 20: Customer 18\n")
    desk.bot.inject_message(MARIA, "/campaigns")
    listed = await desk.bot.wait_for(
        lambda c: said_to(MARIA, "Call list: Flu shots")(c) and expected in c.params["text"],
        timeout=WAIT,
    )
    assert button(listed, "Next")
