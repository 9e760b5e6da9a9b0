"""Call lists: CSV contacts with per-line errors, the button data, claiming (two agents at
once never get the same entry), outcomes, previous, counters, and the desk's checks
(rights, the date window, the outbound policy, the Originate agent first)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from gateway.campaigns import buttons, importing, lists, work
from gateway.campaigns.desk import CampaignDesk
from gateway.pbx.actions import Pbx
from gateway.staff.tasks import CALL_CONTEXT
from models.campaigns import Campaign, CampaignEntry, EntryStatus
from models.db import AuditEntry
from tests.desk_people import DDI, ELENI, MARIA, NIKOS, People, make_people
from tests.unit.test_tasks import Link  # an AMI link that accepts every action and keeps it

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MOBILE = "+306944000{:03d}"
PREMIUM = "+309011234567"  # a premium-rate number: refused by the default policy


@pytest.fixture
async def people(db: str) -> People:
    return await make_people()


async def a_list(people: People, numbers: list[str], **who: int) -> Campaign:
    campaign = await lists.create(
        subscriber_id=people.subscriber.id,
        name="Flu shots",
        script="Hello, this is Dr Papadopoulos' office.",
        starts_on=date(2026, 11, 20),
        ends_on=date(2026, 11, 30),
        **(who or {"team_id": people.team_a.id}),
    )
    contacts = [importing.Contact(i, f"Customer {i}", n) for i, n in enumerate(numbers, 1)]
    assert await lists.add_contacts(campaign, contacts) == []
    return campaign


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_contacts_are_normalised_and_bad_lines_reported_by_number() -> None:
    text = (
        "Name;Phone\n"
        "Anna;6944 000 001\n"
        "Nikos;not a number\n"
        "\n"
        "Eleni;\n"
        "Maria;00306944000001\n"
        "Petros;+30 210 111 2233\n"
    )
    contacts, errors = importing.parse(text, "GR")
    assert [(c.line, c.name, c.number) for c in contacts] == [
        (2, "Anna", "+306944000001"),
        (7, "Petros", "+302101112233"),
    ]
    assert [e.text("en") for e in errors] == [
        "line 3: not a phone number: not a number",
        "line 5: no number",
        "line 6: +306944000001 is already on line 2",
    ]
    assert errors[0].text("el").startswith("γραμμή 3")


def test_csv_without_a_header_reads_name_number_or_number_name() -> None:
    contacts, errors = importing.parse("Anna,6944000001\n6944000002,Babis\n6944000003\n", "GR")
    assert errors == []
    assert [(c.name, c.number) for c in contacts] == [
        ("Anna", "+306944000001"),
        ("Babis", "+306944000002"),
        ("", "+306944000003"),
    ]


def test_a_file_that_is_not_utf8_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        importing.decode("Άννα".encode("cp1253"))


async def test_numbers_already_on_the_list_are_reported_not_added(people: People) -> None:
    campaign = await a_list(people, [MOBILE.format(1)])
    errors = await lists.add_contacts(
        campaign,
        [
            importing.Contact(1, "Again", MOBILE.format(1)),
            importing.Contact(2, "New", MOBILE.format(2)),
        ],
    )
    assert [e.text("en") for e in errors] == ["line 1: +306944000001 is already on this list"]
    positions = await CampaignEntry.filter(campaign_id=campaign.id).order_by("position")
    assert [(e.position, e.name) for e in positions] == [(1, "Customer 1"), (2, "New")]


async def test_a_list_needs_one_agent_or_one_team(people: People) -> None:
    with pytest.raises(lists.CampaignError):
        await a_list(people, [], agent_id=people.maria.id, team_id=people.team_a.id)


# -- button data -------------------------------------------------------------------------------


def test_button_data_round_trips_and_forgeries_read_as_none() -> None:
    assert buttons.unpack(buttons.campaign(7, buttons.NEXT)) == (buttons.CAMPAIGN, 7, "n")
    assert buttons.unpack(buttons.entry(9, "no_answer")) == (buttons.ENTRY, 9, "no_answer")
    for forged in ("cl:7:x", "ce:0:reached", "ce:9", "cl:99999999999:n", "xx:1:n", None, ""):
        assert buttons.unpack(forged) is None
    assert all(len(buttons.entry(2**31 - 1, a).encode()) <= 64 for a in buttons.ENTRY_ACTIONS)


# -- claiming ----------------------------------------------------------------------------------


async def test_two_agents_racing_for_the_same_entry_never_both_get_it(people: People) -> None:
    campaign = await a_list(people, [MOBILE.format(1)])
    entry = await CampaignEntry.get(campaign_id=campaign.id)
    won = await asyncio.gather(
        work.take(entry.id, people.maria.id, NOW), work.take(entry.id, people.nikos.id, NOW)
    )
    assert sorted(won) == [False, True]
    row = await CampaignEntry.get(id=entry.id)
    assert row.status == EntryStatus.IN_PROGRESS
    assert row.agent_id in (people.maria.id, people.nikos.id)  # type: ignore[attr-defined]


async def test_agents_pressing_next_at_once_share_the_list_without_overlap(
    people: People,
) -> None:
    campaign = await a_list(people, [MOBILE.format(i) for i in range(1, 13)])
    agents = [people.maria.id, people.nikos.id, people.eleni.id]
    claims = await asyncio.gather(
        *(work.claim_next(campaign.id, a, NOW) for a in agents * 5)  # 15 presses, 12 entries
    )
    got = [c.id for c in claims if c is not None]
    assert len(got) == 12 and len(set(got)) == 12
    assert (await work.counters(campaign.id)).in_progress == 12


async def test_outcomes_previous_and_counters(people: People) -> None:
    campaign = await a_list(people, [MOBILE.format(i) for i in range(1, 5)])
    maria = people.maria.id
    first = await work.claim_next(campaign.id, maria, NOW)
    assert first is not None and first.position == 1
    assert await work.record(first.id, maria, "reached", NOW)
    assert not await work.record(first.id, people.nikos.id, "busy", NOW)  # not Nikos's
    second = await work.claim_next(campaign.id, maria, NOW)
    assert second is not None and await work.record(second.id, maria, "no_answer", NOW)
    third = await work.claim_next(campaign.id, maria, NOW)
    assert third is not None and await work.record(third.id, maria, "later", NOW)
    assert await work.counters(campaign.id) == work.Counters(pending=2, unanswered=1, done=1)
    back = await work.previous(campaign.id, maria, before=3)
    assert back is not None and back.id == second.id  # "later" put the third back
    again = await work.claim_next(campaign.id, maria, NOW)
    assert again is not None and again.id == third.id  # back on the list, first in order


# -- the desk ----------------------------------------------------------------------------------


async def test_next_calls_agent_first_and_skips_a_refused_number(people: People) -> None:
    campaign = await a_list(people, [PREMIUM, MOBILE.format(1)])
    link = Link()
    desk = CampaignDesk(Pbx(link), clock=lambda: NOW)
    reply = await desk.press(MARIA, buttons.campaign(campaign.id, buttons.NEXT), "en")
    assert "Skipped (outbound policy): Customer 1 +309011234567" in reply.text
    assert "Contact 2 of 2: Customer 2" in reply.text
    assert reply.toast == "Calling: your phone rings first."
    (originate,) = link.sent
    assert originate["Channel"] == "PJSIP/agent1"
    assert (originate["Context"], originate["Exten"]) == (CALL_CONTEXT, MOBILE.format(1))
    assert originate["CallerID"] == f'"Dr Papadopoulos" <{DDI}>'
    refused = await CampaignEntry.get(campaign_id=campaign.id, number=PREMIUM)
    assert (refused.status, refused.outcome) == (EntryStatus.REFUSED, "premium")
    assert await AuditEntry.exists(result="refused", detail="premium")
    # Next again before an outcome: the same contact, no second call.
    again = await desk.press(MARIA, buttons.campaign(campaign.id, buttons.NEXT), "en")
    assert again.toast == "Record the outcome of this call first." and len(link.sent) == 1


async def test_call_again_redials_the_agents_contact_only_once_its_outcome_is_in(
    people: People,
) -> None:
    campaign = await a_list(people, [MOBILE.format(1), MOBILE.format(2)])
    link = Link()
    desk = CampaignDesk(Pbx(link), clock=lambda: NOW)
    await desk.press(MARIA, buttons.campaign(campaign.id, buttons.NEXT), "en")
    first = await CampaignEntry.get(campaign_id=campaign.id, position=1)
    early = await desk.press(MARIA, buttons.entry(first.id, buttons.CALL_AGAIN), "en")
    assert early.toast == "Calling: your phone rings first." and len(link.sent) == 2
    await desk.press(MARIA, buttons.entry(first.id, "no_answer"), "en")
    await desk.press(MARIA, buttons.campaign(campaign.id, buttons.NEXT), "en")  # the second
    held = await desk.press(MARIA, buttons.entry(first.id, buttons.CALL_AGAIN), "en")
    assert held.toast == "Record the outcome of this call first." and len(link.sent) == 3
    assert "Contact 2 of 2" in held.text
    second = await CampaignEntry.get(campaign_id=campaign.id, position=2)
    await desk.press(MARIA, buttons.entry(second.id, "busy"), "en")
    again = await desk.press(MARIA, buttons.entry(first.id, buttons.CALL_AGAIN), "en")
    assert again.toast == "Calling: your phone rings first." and "Calls: 3" in again.text
    assert link.sent[-1]["Exten"] == MOBILE.format(1)
    assert (await CampaignEntry.get(id=first.id)).status == EntryStatus.IN_PROGRESS
    nikos = await desk.press(NIKOS, buttons.entry(first.id, buttons.CALL_AGAIN), "en")
    assert nikos.toast == "This contact is not yours to record." and len(link.sent) == 4


async def test_another_team_or_a_closed_window_changes_nothing(people: People) -> None:
    campaign = await a_list(people, [MOBILE.format(1)])
    link = Link()
    desk = CampaignDesk(Pbx(link), clock=lambda: NOW)
    refused = await desk.press(ELENI, buttons.campaign(campaign.id, buttons.NEXT), "en")
    assert refused.refused and not link.sent
    [entry] = await CampaignEntry.filter(campaign_id=campaign.id)
    forged = await desk.press(ELENI, buttons.entry(entry.id, "reached"), "en")  # not hers
    assert forged.refused and (await CampaignEntry.get(id=entry.id)).status == entry.status
    assert await AuditEntry.filter(result="refused").count() == 2
    assert await desk.listing(ELENI, "en") == [type(refused)("No call lists open for you today.")]
    late = CampaignDesk(Pbx(link), clock=lambda: datetime(2026, 12, 1, 9, tzinfo=UTC))
    closed = await late.press(NIKOS, buttons.campaign(campaign.id, buttons.NEXT), "en")
    assert closed.toast == "This call list is not open today." and not link.sent
    assert (await work.counters(campaign.id)).pending == 1
