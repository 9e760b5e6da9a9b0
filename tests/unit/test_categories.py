"""Task categories: supervisors and directors keep the one list, agents read it."""

from __future__ import annotations

import pytest

from gateway.staff import categories
from models.db import AuditEntry
from models.staff import TaskCategory
from tests.desk_people import MARIA, SUPERVISOR, make_people


@pytest.fixture
async def people(db: str) -> None:
    await make_people()


async def names() -> list[str]:
    return [
        str(n) for n in await TaskCategory.all().order_by("name").values_list("name", flat=True)
    ]


async def test_a_supervisor_adds_and_removes_and_everyone_reads(people: None) -> None:
    assert "Call back" in (await categories.keep(SUPERVISOR, "add  Call   back")).text
    assert "exists already" in (await categories.keep(SUPERVISOR, "add Call back")).text
    await categories.keep(SUPERVISOR, "add Complaint")
    assert await names() == ["Call back", "Complaint"]
    listing = await categories.keep(MARIA, "")
    assert "Call back, Complaint" in listing.text and not listing.refused
    assert "removed" in (await categories.keep(SUPERVISOR, "remove Complaint")).text
    assert "no category" in (await categories.keep(SUPERVISOR, "remove Complaint")).text
    assert await names() == ["Call back"]
    assert "1 to 64" in (await categories.keep(SUPERVISOR, "add " + "x" * 65)).text


@pytest.mark.parametrize("text", ["add Gossip", "remove Call back"])
async def test_an_agent_cannot_change_the_list(people: None, text: str) -> None:
    await categories.keep(SUPERVISOR, "add Call back")
    reply = await categories.keep(MARIA, text)
    assert reply.refused and await names() == ["Call back"]
    assert await AuditEntry.filter(actor=str(MARIA), result="refused").count() == 1


async def test_a_stranger_is_no_staff(people: None) -> None:
    reply = await categories.keep(999, "add Gossip")
    assert reply.refused and await names() == []
