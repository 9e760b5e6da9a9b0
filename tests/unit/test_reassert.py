"""The AstDB re-assert at login: the diff (pure), Control.reassert_all against a scripted
PBX (only what differs is sent; stale keys of DDIs we no longer have deleted; a command's
fresher write never overwritten) and the pipeline's window and answers."""

from __future__ import annotations

import asyncio

import pytest

from gateway.control import admin
from gateway.control.astdb import Diff, LineRow, diff, wanted
from gateway.control.lines import Control
from gateway.pbx import pipeline
from gateway.pbx.actions import Pbx
from gateway.pbx.errors import AmiActionError, AmiUnavailable, PbxUnavailable
from models.db import Ddi, Subscriber
from models.vocab import Scenario
from tests.unit.test_control import FakePbx, refused

A, B = "2100001", "2100002"
MOBILE = "+306944000001"

# -- the diff, pure ---------------------------------------------------------------------------


def test_the_wanted_keys_of_a_ddi_are_scenario_forward_and_its_mailbox_if_any() -> None:
    rows = [LineRow(A, "agent", MOBILE, "7001@default"), LineRow(B, "closed", "", "")]
    assert wanted(rows) == {
        f"scenario/{A}": "agent",
        f"forward/{A}": MOBILE,
        f"mailbox/{A}": "7001@default",
        f"scenario/{B}": "closed",
        f"forward/{B}": "",
    }


def test_nothing_is_sent_when_the_pbx_agrees() -> None:
    want = {f"scenario/{A}": "agent", f"forward/{A}": ""}
    change = diff(want, dict(want))
    assert change == Diff({}, [])
    assert list(change.changes()) == []


def test_only_the_changed_key_is_written_and_an_empty_value_is_a_value() -> None:
    want = {f"scenario/{A}": "agent", f"forward/{A}": "", f"scenario/{B}": "voicemail"}
    held = {f"scenario/{A}": "closed", f"scenario/{B}": "voicemail"}  # forward/A missing
    assert diff(want, held).puts == {f"scenario/{A}": "agent", f"forward/{A}": ""}


def test_stale_owned_keys_are_deleted_and_the_operators_left_alone() -> None:
    want = {f"scenario/{A}": "agent"}
    held = {
        f"scenario/{A}": "agent",
        "scenario/2109999": "closed",  # a DDI we no longer have
        f"mailbox/{A}": "7001",  # its mailbox was cleared
        f"ringtime/{A}": "30",  # the operator's
        f"fallback/{A}": "voicemail",  # the operator's
    }
    assert diff(want, held) == Diff({}, ["scenario/2109999", f"mailbox/{A}"])


def test_unknown_holdings_write_everything_and_delete_nothing() -> None:
    want = {f"scenario/{A}": "agent"}
    assert diff(want, None) == Diff(want, [])


def test_changes_skip_keys_written_meanwhile_as_they_are_taken() -> None:
    change = Diff({"scenario/1": "agent", "scenario/2": "agent"}, ["scenario/3"])
    fresh: set[str] = set()
    taken = change.changes(skip=fresh)
    assert next(taken) == ("scenario/1", "agent")
    fresh.update({"scenario/2", "scenario/3"})  # a command wrote them after the snapshot
    assert list(taken) == []


# -- Control.reassert_all against a scripted PBX ----------------------------------------------


@pytest.fixture
async def lines(db: str) -> tuple[Subscriber, Subscriber]:
    a = await admin.add_subscriber(
        name="Dr A", ddis=[A], language="en", timezone="UTC", mobile=MOBILE
    )
    b = await admin.add_subscriber(name="Dr B", ddis=[B], language="en", timezone="UTC")
    await Ddi.filter(number=A).update(mailbox="7001@default")
    return a.subscriber, b.subscriber


def writes(pbx: FakePbx, since: int = 0) -> list[tuple[str, str, str]]:
    return [
        (a["Action"], a["Key"], a.get("Val", ""))
        for a in pbx.actions[since:]
        if a["Action"] in ("DBPut", "DBDel")
    ]


async def test_a_second_login_with_nothing_changed_writes_nothing(
    lines: tuple[Subscriber, Subscriber],
) -> None:
    pbx = FakePbx()
    control = Control(pbx)
    first = await control.reassert_all()
    assert (first.ddis, first.written, first.deleted) == (2, 5, 0)
    assert pbx.astdb == {
        f"scenario/{A}": "agent",
        f"forward/{A}": MOBILE,
        f"mailbox/{A}": "7001@default",
        f"scenario/{B}": "agent",
        f"forward/{B}": "",
    }
    mark = len(pbx.actions)

    again = await control.reassert_all()

    assert (again.written, again.deleted) == (0, 0)
    assert writes(pbx, mark) == []
    assert [(a["Action"], a["Key"]) for a in pbx.actions[mark:]] == [
        ("DBGetTree", "scenario"),
        ("DBGetTree", "forward"),
        ("DBGetTree", "mailbox"),
    ]


async def test_only_what_differs_is_written_and_stale_keys_are_deleted(
    lines: tuple[Subscriber, Subscriber],
) -> None:
    pbx = FakePbx()
    control = Control(pbx)
    await control.reassert_all()
    pbx.astdb[f"scenario/{B}"] = "closed"  # changed by hand on the PBX
    pbx.astdb["forward/2109999"] = "+306900000000"  # a DDI since removed
    pbx.astdb[f"ringtime/{B}"] = "45"  # the operator's
    await Subscriber.filter(id=lines[0].id).update(scenario=Scenario.VOICEMAIL)
    await Ddi.filter(number=A).update(mailbox="")
    mark = len(pbx.actions)

    await control.reassert_all()

    assert sorted(writes(pbx, mark)) == [
        ("DBDel", "forward/2109999", ""),
        ("DBDel", f"mailbox/{A}", ""),
        ("DBPut", f"scenario/{A}", "voicemail"),
        ("DBPut", f"scenario/{B}", "agent"),
    ]
    assert pbx.astdb[f"ringtime/{B}"] == "45"


async def test_a_pbx_without_dbgettree_gets_every_key_written(
    lines: tuple[Subscriber, Subscriber],
) -> None:
    pbx = FakePbx()
    pbx.failures[("DBGetTree", "scenario")] = refused("Invalid/unknown command: DBGetTree.")
    pbx.astdb["scenario/2109999"] = "closed"
    done = await Control(pbx).reassert_all()
    assert (done.written, done.deleted) == (5, 0)
    assert len(writes(pbx)) == 5
    assert pbx.astdb["scenario/2109999"] == "closed"  # unknown holdings: nothing deleted


async def test_a_refused_write_does_not_stop_the_others_and_is_raised(
    lines: tuple[Subscriber, Subscriber],
) -> None:
    pbx = FakePbx()
    pbx.failures[("DBPut", f"scenario/{A}")] = refused("Failed to update entry")
    with pytest.raises(PbxUnavailable, match="1 AstDB writes refused: Failed to update"):
        await Control(pbx).reassert_all()
    assert len(writes(pbx)) == 5 and f"scenario/{B}" in pbx.astdb


class SlowTree(FakePbx):
    """Holds DBGetTree's answer until released: a command runs meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def send_list_action(
        self, action: dict[str, str], timeout: float = 10.0
    ) -> list[dict[str, str]]:
        items = await super().send_list_action(action, timeout)  # the PBX's state when read
        self.asked.set()
        await self.release.wait()
        return items


async def test_a_command_during_the_reassert_is_not_overwritten(
    lines: tuple[Subscriber, Subscriber],
) -> None:
    pbx = SlowTree()
    control = Control(pbx)
    reassert = asyncio.create_task(control.reassert_all())
    await pbx.asked.wait()  # the database was read, the PBX is being read
    await control.set_scenario(lines[1], Scenario.CLOSED)  # B: written and saved now
    pbx.release.set()
    await reassert
    assert pbx.astdb[f"scenario/{B}"] == "closed"
    assert (await Subscriber.get(id=lines[1].id)).scenario is Scenario.CLOSED


# -- the pipeline -----------------------------------------------------------------------------


class Route:
    """A peer that answers what it was sent when told to, and records the most actions it
    ever had unanswered at once."""

    def __init__(self) -> None:
        self.own: dict[str, pipeline.Taker] = {}
        self.waiting: list[tuple[str, dict[str, str]]] = []
        self.most = 0
        self.wrote = asyncio.Event()

    def write(self, data: bytes) -> None:
        for raw in data.decode().split("\r\n\r\n")[:-1]:
            frame = dict(line.split(": ", 1) for line in raw.split("\r\n"))
            self.waiting.append((frame["ActionID"], frame))
        self.most = max(self.most, len(self.waiting))
        self.wrote.set()

    def answer_all(self, reply: dict[str, str] | None = None) -> None:
        waiting, self.waiting = self.waiting, []
        for action_id, frame in waiting:
            answer = reply or {"Response": "Success", "Message": frame["Key"]}
            if self.own[action_id]({**answer, "ActionID": action_id}):
                del self.own[action_id]


async def test_the_window_bounds_what_is_in_flight_and_answers_come_back_in_order() -> None:
    route = Route()
    actions = [{"Action": "DBPut", "Key": f"k{i}", "Val": "v"} for i in range(1000)]
    sending = asyncio.create_task(pipeline.send_all(route, actions, window=64, timeout=5))
    while not sending.done():  # answer each batch once it is written, until all are
        wrote = asyncio.create_task(route.wrote.wait())
        await asyncio.wait({sending, wrote}, return_when=asyncio.FIRST_COMPLETED)
        wrote.cancel()
        route.wrote.clear()
        route.answer_all()
    answers = await sending
    assert route.most == 64
    assert [a["Message"] for a in answers] == [f"k{i}" for i in range(1000)]
    assert route.own == {}


async def test_no_answer_in_time_is_amiunavailable_and_forgets_the_actions() -> None:
    route = Route()
    actions = [{"Action": "DBPut", "Key": "k", "Val": "v"}] * 3
    with pytest.raises(AmiUnavailable, match="did not answer 3 actions"):
        await pipeline.send_all(route, actions, window=8, timeout=0.05)
    assert route.own == {}


async def test_a_line_break_in_a_value_never_starts_a_header() -> None:
    assert pipeline.encode({"Action": "DBPut", "Val": "x\r\nAction: Originate"}, "bulk/1") == (
        b"Action: DBPut\r\nVal: x  Action: Originate\r\nActionID: bulk/1\r\n\r\n"
    )


async def test_a_list_is_its_events_up_to_complete_and_a_refusal_an_error() -> None:
    route = Route()
    reading = asyncio.create_task(pipeline.read_list(route, {"Action": "DBGetTree"}, 5))
    await route.wrote.wait()
    [(action_id, _)] = route.waiting
    take = route.own[action_id]
    for frame in (
        {"Response": "Success", "EventList": "start", "Message": "Result will follow"},
        {"Event": "DBGetTreeResponse", "Key": "/frontdesk/scenario/1", "Val": "agent"},
        {"Event": "DBGetTreeComplete", "EventList": "Complete", "ListItems": "1"},
    ):
        done = take({**frame, "ActionID": action_id})
    assert done
    assert await reading == [
        {"Event": "DBGetTreeResponse", "Key": "/frontdesk/scenario/1", "Val": "agent",
         "ActionID": action_id},
    ]  # fmt: skip

    route = Route()
    reading = asyncio.create_task(pipeline.read_list(route, {"Action": "DBGetTree"}, 5))
    await route.wrote.wait()
    [(action_id, _)] = route.waiting
    route.own[action_id]({"Response": "Error", "Message": "Permission denied"})
    with pytest.raises(AmiActionError, match="DBGetTree: Permission denied"):
        await reading


async def test_db_tree_gives_keys_within_the_family() -> None:
    pbx = FakePbx()
    pbx.astdb.update({f"scenario/{A}": "agent", f"scenario/{B}": "", f"forward/{A}": MOBILE})
    assert await Pbx(pbx).db_tree("frontdesk", "scenario") == {
        f"scenario/{A}": "agent",
        f"scenario/{B}": "",
    }


async def test_a_list_item_is_kept_only_as_its_projection_as_it_arrives() -> None:
    route = Route()
    project = lambda f: (f["Key"], f["Val"]) if f["Val"] else None  # noqa: E731
    reading = asyncio.create_task(pipeline.read_list(route, {"Action": "DBGetTree"}, 5, project))
    await route.wrote.wait()
    [(action_id, _)] = route.waiting
    take = route.own[action_id]
    take({"Response": "Success", "EventList": "start", "ActionID": action_id})
    take({"Event": "DBGetTreeResponse", "Key": "/f/a", "Val": "1", "ActionID": action_id})
    take({"Event": "DBGetTreeResponse", "Key": "/f/b", "Val": "", "ActionID": action_id})
    take({"Event": "DBGetTreeComplete", "EventList": "Complete", "ActionID": action_id})
    assert await reading == [("/f/a", "1")]


async def test_only_the_answers_asked_for_are_kept() -> None:
    route = Route()
    actions = [{"Action": "DBPut", "Key": f"k{i}", "Val": "v"} for i in range(100)]
    keep = lambda a: a["Message"] in ("k7", "k42")  # noqa: E731
    sending = asyncio.create_task(pipeline.send_all(route, actions, 16, 5, keep))
    while not sending.done():
        wrote = asyncio.create_task(route.wrote.wait())
        await asyncio.wait({sending, wrote}, return_when=asyncio.FIRST_COMPLETED)
        wrote.cancel()
        route.wrote.clear()
        route.answer_all()
    assert [a["Message"] for a in await sending] == ["k7", "k42"]
    assert route.own == {}


async def test_each_subtree_is_read_then_written_before_the_next_is_read(
    lines: tuple[Subscriber, Subscriber],
) -> None:
    pbx = FakePbx()
    await Control(pbx).reassert_all()
    assert [(a["Action"], a["Key"].partition("/")[0]) for a in pbx.actions] == [
        ("DBGetTree", "scenario"),
        ("DBPut", "scenario"),
        ("DBPut", "scenario"),
        ("DBGetTree", "forward"),
        ("DBPut", "forward"),
        ("DBPut", "forward"),
        ("DBGetTree", "mailbox"),
        ("DBPut", "mailbox"),
    ]
