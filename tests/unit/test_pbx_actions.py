"""The typed AMI actions: each builder writes the frame the gateway has always sent, `Pbx`
maps Asterisk's answers to results or PbxUnavailable, and no product module outside
gateway/pbx writes an action header or names the package's inner errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.pbx import actions
from gateway.pbx.actions import Pbx
from gateway.pbx.errors import PbxUnavailable

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["bot", "gateway", "notifiers", "models", "demo", "main.py"]
Frame = dict[str, str]


@pytest.mark.parametrize(
    ("built", "frame"),
    [
        (actions.ping(), {"Action": "Ping"}),
        (actions.logoff(), {"Action": "Logoff"}),
        (actions.core_show_channels(), {"Action": "CoreShowChannels"}),
        (
            actions.db_put("frontdesk", "scenario/2100001", "closed"),
            {"Action": "DBPut", "Family": "frontdesk", "Key": "scenario/2100001", "Val": "closed"},
        ),
        (
            actions.db_get("frontdesk", "ringtime/2100001"),
            {"Action": "DBGet", "Family": "frontdesk", "Key": "ringtime/2100001"},
        ),
        (
            actions.getvar("PJSIP/pstn-00000004", "CHANNEL(linkedid)"),
            {"Action": "Getvar", "Channel": "PJSIP/pstn-00000004", "Variable": "CHANNEL(linkedid)"},
        ),
        (
            actions.redirect("PJSIP/pstn-00000004", "frontdesk-moved", "+306944000001"),
            {
                "Action": "Redirect",
                "Channel": "PJSIP/pstn-00000004",
                "Context": "frontdesk-moved",
                "Exten": "+306944000001",
                "Priority": "1",
            },
        ),
        (
            actions.originate_callback(
                "+306944000001", "+302101234567", "frontdesk-callback", "Dr Α", "2100001"
            ),
            {
                "Action": "Originate",
                "Channel": "Local/+306944000001@frontdesk-callback",
                "Context": "frontdesk-callback",
                "Exten": "+302101234567",
                "Priority": "1",
                "CallerID": '"Dr Α" <2100001>',
                "Async": "true",
            },
        ),
    ],
    ids=lambda v: v.get("Action", "") if isinstance(v, dict) else "",
)
def test_each_action_is_the_frame_sent_before(built: Frame, frame: Frame) -> None:
    assert built == frame


class Link:
    """An AMI link that answers from a script: frame -> answer, or an exception."""

    def __init__(self, answer: Frame | Exception, items: list[Frame] | None = None) -> None:
        self.answer = answer
        self.items = items or []
        self.sent: list[Frame] = []

    async def send_action(self, action: Frame, timeout: float = 5.0) -> Frame:
        self.sent.append(action)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def send_list_action(self, action: Frame, timeout: float = 10.0) -> list[Frame]:
        await self.send_action(action)
        return self.items


async def test_a_refused_action_is_pbx_unavailable() -> None:
    pbx = Pbx(Link({"Response": "Error", "Message": "Channel does not exist: X"}))
    with pytest.raises(PbxUnavailable, match="Redirect: Channel does not exist"):
        await pbx.redirect("X", "frontdesk-moved", "+306944000001")


async def test_an_unreachable_pbx_is_pbx_unavailable_for_every_action() -> None:
    pbx = Pbx(Link(PbxUnavailable("AMI not connected")))
    for call in (
        pbx.db_put("frontdesk", "k", "v"),
        pbx.getvar("X", "CHANNEL(linkedid)"),
        pbx.redirect("X", "c", "1"),
        pbx.originate_callback("1", "2", "c", "n", "3"),
        pbx.live_calls(),
        pbx.db_get("frontdesk", "k"),
    ):
        with pytest.raises(PbxUnavailable):
            await call


async def test_getvar_of_a_gone_channel_is_none_and_of_a_live_one_its_value() -> None:
    assert (
        await Pbx(Link({"Response": "Error", "Message": "No such channel"})).getvar(
            "X", "CHANNEL(linkedid)"
        )
        is None
    )
    live = Link({"Response": "Success", "Variable": "CHANNEL(linkedid)", "Value": "1.0"})
    assert await Pbx(live).getvar("X", "CHANNEL(linkedid)") == "1.0"
    assert await Pbx(Link({"Response": "Success"})).getvar("X", "UNSET") == ""


async def test_live_calls_groups_the_listed_channels_by_call() -> None:
    rows = [
        {"Event": "CoreShowChannel", "Linkedid": "1.0", "Uniqueid": "1.0", "Channel": "A-0"},
        {"Event": "CoreShowChannel", "Linkedid": "1.0", "Uniqueid": "1.1", "Channel": "B-1"},
    ]
    link = Link({"Response": "Success"}, rows)
    live = await Pbx(link).live_calls()
    assert [c.channel for c in live["1.0"]] == ["A-0", "B-1"]
    assert link.sent == [{"Action": "CoreShowChannels"}]


def _product_files() -> list[Path]:
    files: list[Path] = []
    for name in PRODUCT:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    pbx = ROOT / "gateway" / "pbx"
    return [f for f in files if pbx not in f.parents and "migrations" not in f.parts]


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("an AMI action header", re.compile(r"[\"']Action[\"']\s*:")),
        ("an inner AMI error", re.compile(r"\bAmi(Unavailable|ActionError)\b")),
    ],
    ids=["action-headers", "inner-errors"],
)
def test_outside_gateway_pbx_no_product_module_writes(what: str, pattern: re.Pattern[str]) -> None:
    """Actions are built in gateway/pbx/actions.py; callers catch PbxUnavailable."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _product_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == [], f"{what} outside gateway/pbx"
