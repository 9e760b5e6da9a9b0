"""`python main.py demo --pbx`: the demo day's calls on a real, private Asterisk.

The PBX side of demo/day.py, swapped in for the sandbox's AMI stand-in: a real Asterisk
22 (sandbox/real_pbx.py) runs the shipped dialplan include unchanged and the gateway logs
in to it over AMI as it would in production. The outside world is played over Local
channels by the harness's own AMI connection (sandbox/ami_harness.py): callers dial the
DDIs through the carrier trunk, the two agents answer or ring as AstDB `test/agent/<name>`
says, outside numbers as `test/pstn/<number>` says. What the day checks is then what the
real PBX did: AstDB values, UserEvents and bridges, instead of the stand-in's action log.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from bot.runtime import Runtime
from demo import media
from gateway.control.lines import Control
from models.db import Subscriber
from models.events import CallSnapshot
from models.settings import Settings, with_section
from models.vocab import Scenario
from sandbox.ami_harness import RECEIVED, AmiHarness, Frame
from sandbox.real_pbx import (
    AMI_USER,
    HARNESS_USER,
    PbxConfig,
    PrivateAsterisk,
    greeting_seconds,
    make_prompts,
    missing_tools,
)
from sandbox.telegram_api import BotApiServer

ASTERISK_ENV = "FRONTDESK_TEST_ASTERISK"
DIALPLAN = (
    Path(__file__).resolve().parent.parent / "deploy" / "asterisk" / "extensions_frontdesk.conf"
)
AGENTS = ("agent1", "agent2")
RING = 5  # ringtime/<ddi> of every line: the dialplan's minimum keeps the day short
TALK = 4  # seconds a called number talks once it answers: the call back is seen bridged
SPEECH = "demo-voicemail"  # the voicemail caller's words, as a sound file on the PBX
WAIT = 60.0
TRANSCRIBED = 180.0  # the first transcription loads the speech model


class PbxUnavailable(Exception):
    """`demo --pbx` cannot run here; the message says why, in one line."""


def find_launcher(given: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The Asterisk launcher to run: `--asterisk PATH`, else FRONTDESK_TEST_ASTERISK."""
    value = given or environ.get(ASTERISK_ENV, "")
    if not value:
        raise PbxUnavailable(
            f"demo --pbx needs an Asterisk launcher: --asterisk PATH or {ASTERISK_ENV}"
        )
    path = Path(value)
    if not path.is_file():
        raise PbxUnavailable(f"demo --pbx: no Asterisk launcher at {path}")
    if missing := missing_tools():
        raise PbxUnavailable(
            f"demo --pbx speaks the PBX's prompts with espeak-ng and sox: "
            f"{', '.join(missing)} not installed"
        )
    return path


class Person(Protocol):
    """A demo subscriber (demo.day.DemoSubscriber), as far as the PBX side needs one."""

    @property
    def name(self) -> str: ...
    @property
    def ddi(self) -> str: ...
    @property
    def mobile(self) -> str: ...
    @property
    def chat_id(self) -> int: ...


class CallEnds:
    """The calls the gateway tracked to their end, awaited by DDI."""

    def __init__(self) -> None:
        self.ended: list[CallSnapshot] = []
        self._changed = asyncio.Event()

    def observe(self, snap: CallSnapshot) -> None:
        if snap.ended:
            self.ended.append(snap)
            self._changed.set()

    def count(self, ddi: str) -> int:
        return sum(1 for s in self.ended if s.ddi == ddi)

    async def wait(self, ddi: str, count: int, timeout: float = WAIT) -> CallSnapshot:
        """The `count`th call to `ddi` once it ended."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()  # cleared before looking: no wake-up is lost
                found = [s for s in self.ended if s.ddi == ddi]
                if len(found) >= count:
                    return found[count - 1]
                await self._changed.wait()


class PrivatePbx:
    """The demo's PBX side on a real Asterisk (see demo.day.PbxSide)."""

    def __init__(self, pbx: PrivateAsterisk, harness: AmiHarness) -> None:
        self.pbx = pbx
        self.harness = harness
        self.calls = CallEnds()
        # The sandbox's log of received actions has no counterpart here: a real Asterisk
        # keeps none. What it did is in report()'s `pbx` key instead.
        self.ami_actions: list[dict[str, str]] = []
        self.telegram_forward: dict[str, str | None] = {}
        self.call_back: dict[str, Any] = {}

    def configure(self, s: Settings) -> Settings:
        s = with_section(
            s, "ami", port=self.pbx.ami_port, username=AMI_USER, secret=self.pbx.config.ami_secret
        )
        # The gateway reads the voicemail app's own spool, as in production.
        return with_section(s, "voicemail", spool=str(self.pbx.spool))

    async def connected(self, runtime: Runtime) -> None:
        await asyncio.wait_for(runtime.gateway.ami.connected.wait(), WAIT)
        runtime.gateway.observers.append(self.calls.observe)

    async def play_calls(
        self, runtime: Runtime, people: Sequence[Person], callers: Sequence[tuple[str, str]]
    ) -> None:
        """The morning: an agent answers the first line's call, the second's is missed
        while both agents ring, the third's is forwarded to a mobile nobody answers."""
        control = runtime.gateway.control
        for person in people:
            # Added after the gateway's AMI login, so not yet written to AstDB by it.
            await control.push_lines(await Subscriber.get(name=person.name))
            await self.astdb(f"ringtime/{person.ddi}", str(RING))  # the operator's key
        el, ru, zh = people
        await self.agents(agent1="answer", agent2="ring")
        await self.call(el.ddi, _callerid(callers[0]), patience=30)
        await self.agents(agent1="ring")
        await self.call(ru.ddi, _callerid(callers[1]), patience=3)  # gives up while both ring
        await self.forwarded_call(control, zh, _callerid(callers[2]))
        await self.pbx.db_put("test", "talk", str(TALK))

    async def forwarded_call(self, control: Control, zh: Person, callerid: str) -> None:
        """Forwarded for this one call (the subscriber switches to forward from Telegram
        later in the day): the mobile rings out, voicemail answers, the caller hangs up
        during the greeting, as the sandbox's script of this call has it."""
        subscriber = await Subscriber.get(name=zh.name)
        await self.pbx.db_put("test", f"pstn/{zh.mobile}", "ring")
        await self.astdb(f"fallback/{zh.ddi}", "voicemail")
        await control.set_scenario(subscriber, Scenario.FORWARD)
        await self.call(zh.ddi, callerid, patience=30, wait=1.0)
        await control.set_scenario(subscriber, Scenario.AGENT)

    async def call_back_placed(self, mobile: str, caller: str) -> None:
        """The gateway's Originate rang the mobile, then bridged it with the caller."""

        def bridge() -> list[str] | None:
            return next(
                (b for b in bridges(self.harness.events) if _joins(b, mobile, caller)), None
            )

        await self.harness.wait_until(bridge, WAIT)
        self.call_back = {"mobile": mobile, "caller": caller, "bridge": bridge() or []}

    async def forwarded(self, ddi: str) -> None:
        """What the Telegram command left in the PBX's AstDB (the bot replied once its
        DBPut was answered); check_pbx wants `forward`."""
        self.telegram_forward = {
            "ddi": ddi,
            "scenario": await self.pbx.db_get("frontdesk", f"scenario/{ddi}"),
        }

    async def voicemail(self, runtime: Runtime, bot: BotApiServer, person: Person) -> None:
        """A real message: the agents ring out, app_voicemail plays its greeting and
        records the caller's speech into its spool; the gateway, told by MessageWaiting,
        takes it from there. Done once the voice note reached the subscriber."""
        await self.agents(agent1="ring", agent2="ring")
        speak = greeting_seconds(self.pbx.sounds, person.ddi) + 0.5
        await self.call(
            person.ddi, media.VOICEMAIL_CALLER, patience=60, wait=speak, say=SPEECH, hold=1
        )
        chat = str(person.chat_id)
        await bot.wait_for(
            lambda c: c.method == "sendVoice" and str(c.params.get("chat_id")) == chat,
            timeout=TRANSCRIBED,
        )

    async def report(self) -> dict[str, Any]:
        version = (await self.pbx.rx("core show version")).strip().splitlines()
        return {
            "pbx": {
                "asterisk": version[0] if version else "",
                "astdb": parse_astdb(await self.pbx.rx("database show frontdesk")),
                "user_events": user_events(self.harness.events),
                "bridges": bridges(self.harness.events),
                "call_back": self.call_back,
                "telegram_forward": self.telegram_forward,
            }
        }

    # -- the outside world ------------------------------------------------------------

    async def astdb(self, key: str, value: str) -> None:
        await self.pbx.db_put("frontdesk", key, value)

    async def agents(self, **modes: str) -> None:
        """How each agent behaves: answer | reject | ring."""
        for agent, mode in modes.items():
            await self.pbx.db_put("test", f"agent/{agent}", mode)

    async def call(self, ddi: str, callerid: str, **how: Any) -> CallSnapshot:
        """`"Name" <number>` dials `ddi`; returns the call once the gateway ended it."""
        count = self.calls.count(ddi) + 1
        await self.harness.call(ddi, callerid, **how)
        return await self.calls.wait(ddi, count)


@asynccontextmanager
async def private_pbx(
    launcher: Path, workdir: Path, ddis: Sequence[str]
) -> AsyncIterator[PrivatePbx]:
    """A private Asterisk with a mailbox per DDI, its prompts spoken, and the harness."""
    config = PbxConfig(dialplan=DIALPLAN, agents=AGENTS, mailboxes=tuple(ddis))
    pbx = PrivateAsterisk(launcher, workdir / "pbx", config)
    await asyncio.to_thread(make_prompts, pbx.sounds, {SPEECH: media.VOICE})
    try:
        await pbx.start()  # inside: a start that timed out leaves a process to stop
        async with AmiHarness(pbx.ami_port, HARNESS_USER, config.harness_secret) as harness:
            side = PrivatePbx(pbx, harness)
            await side.agents(**dict.fromkeys(AGENTS, "ring"))
            yield side
    finally:
        await pbx.stop()


def _callerid(caller: tuple[str, str]) -> str:
    number, name = caller
    return f'"{name}" <{number}>'


def parse_astdb(text: str) -> dict[str, str]:
    """`database show frontdesk` -> {"scenario/2100001": "agent", ...}."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith("/frontdesk/"):
            found[key.strip().removeprefix("/frontdesk/")] = value.strip()
    return found


def user_events(events: Sequence[Frame]) -> list[dict[str, Any]]:
    """The dialplan's Frontdesk* UserEvents in order: name and the fields it set (those
    after the UserEvent header; Linkedid is one, shown once among the channel's)."""
    found = []
    for e in events:
        name = e.get("UserEvent", "")
        if e.get("Event") != "UserEvent" or not name.startswith("Frontdesk"):
            continue
        keys = list(e)
        fields = {k: e[k] for k in keys[keys.index("UserEvent") + 1 :] if k != RECEIVED}
        found.append({"name": name, "fields": {**fields, "Linkedid": e.get("Linkedid", "")}})
    return found


def bridges(events: Sequence[Frame]) -> list[list[str]]:
    """Every bridge the PBX made, as the channels that entered it, in order."""
    members: dict[str, list[str]] = {}
    for e in events:
        if e.get("Event") == "BridgeEnter":
            members.setdefault(e.get("BridgeUniqueid", ""), []).append(e.get("Channel", ""))
    return list(members.values())


def _joins(bridge: Sequence[str], mobile: str, caller: str) -> bool:
    """Whether the call back's Originate (its Local channel in frontdesk-callback, named
    after the mobile) is in this bridge with the leg dialled to the caller."""
    return any(f"{mobile}@frontdesk-callback" in c for c in bridge) and any(
        f"{caller}@" in c for c in bridge
    )


def check_pbx(report: dict[str, Any]) -> list[str]:
    """The sandbox's AMI checks (demo.control.check_ami_actions), asked of the real PBX:
    the Telegram command switched the line to forward in AstDB, and the call back's
    Originate was bridged with the caller."""
    pbx = report["pbx"]
    problems = []
    if pbx["telegram_forward"].get("scenario") != Scenario.FORWARD:
        problems.append("control: the line is not switched to forward in AstDB")
    back = pbx["call_back"]
    if not back or not _joins(back["bridge"], back["mobile"], back["caller"]):
        problems.append("control: the call back's Originate was never bridged with the caller")
    return problems
