"""Control actions: what subscribers' commands do on the PBX and in the database.

AstDB keys (family `frontdesk`) are read by deploy/asterisk/extensions_frontdesk.conf:
scenario/<ddi>, forward/<ddi>, mailbox/<ddi> (ringtime/ and fallback/ are the operator's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from models.db import Call, Ddi, Subscriber
from models.events import CallSnapshot, Scenario

log = logging.getLogger(__name__)

ASTDB_FAMILY = "frontdesk"
CALLBACK_CONTEXT = "frontdesk-callback"


class ActionSender(Protocol):
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]: ...


class NoMobileNumber(ValueError):
    """The subscriber has no forward/mobile number on file."""


class Control:
    def __init__(
        self, ami: ActionSender, ringing: Callable[[], Iterable[CallSnapshot]] = tuple
    ) -> None:
        self._ami = ami
        self._ringing = ringing  # the tracker's calls in progress

    async def _db_put(self, key: str, value: str) -> None:
        await self._ami.send_action(
            {"Action": "DBPut", "Family": ASTDB_FAMILY, "Key": key, "Val": value}
        )

    async def push_lines(self, subscriber: Subscriber) -> None:
        """Write the subscriber's scenario and forward number for each of its DDIs."""
        for ddi in await Ddi.filter(subscriber=subscriber):
            await self._db_put(f"scenario/{ddi.number}", subscriber.scenario.value)
            await self._db_put(f"forward/{ddi.number}", subscriber.forward_number or "")
            if ddi.mailbox:
                await self._db_put(f"mailbox/{ddi.number}", ddi.mailbox)

    async def set_scenario(
        self, subscriber: Subscriber, scenario: Scenario, until: datetime | None = None
    ) -> None:
        """Switch the lines now; with `until`, the scenario in force now returns by itself
        then (revert_due). The PBX first: if AMI fails, the database still tells the truth."""
        previous = subscriber.scenario
        subscriber.scenario = scenario
        await self.push_lines(subscriber)
        if until is None:
            subscriber.scenario_until = None
            subscriber.scenario_after = None  # type: ignore[assignment]  # nullable column
        else:  # a timed switch during a timed switch returns to the original scenario
            subscriber.scenario_after = subscriber.scenario_after or previous
            subscriber.scenario_until = until
        await subscriber.save(update_fields=["scenario", "scenario_until", "scenario_after"])
        log.info("subscriber %s: scenario %s until %s", subscriber.id, scenario.value, until)

    async def set_forward(self, subscriber: Subscriber, number: str | None) -> None:
        """The number calls are forwarded to (None: none; the forward scenario then falls
        back at once, as the dialplan documents)."""
        subscriber.forward_number = number
        await self.push_lines(subscriber)
        await subscriber.save(update_fields=["forward_number"])

    async def revert_due(self, now: datetime) -> int:
        """Timed scenarios whose time is up return to what was in force before."""
        reverted = 0
        for subscriber in await Subscriber.filter(scenario_until__lte=now):
            back = subscriber.scenario_after or Scenario.AGENT
            await self.set_scenario(subscriber, back)
            reverted += 1
        return reverted

    async def redirect_ringing(self, subscriber: Subscriber) -> int:
        """Move the subscriber's calls that are ringing right now to its mobile (Redirect
        of the caller's channel to the callback context, which dials the number)."""
        if not subscriber.forward_number:
            return 0
        lines = set(await Ddi.filter(subscriber=subscriber).values_list("number", flat=True))
        moved = 0
        for call in list(self._ringing()):
            waiting = not call.ended and call.answered_at is None and call.caller_channel
            if waiting and call.ddi in lines:
                await self._ami.send_action(
                    {
                        "Action": "Redirect",
                        "Channel": call.caller_channel,
                        "Context": CALLBACK_CONTEXT,
                        "Exten": subscriber.forward_number,
                        "Priority": "1",
                    }
                )
                moved += 1
        if moved:
            log.info("subscriber %s: %d ringing call(s) moved to mobile", subscriber.id, moved)
        return moved

    async def forward_to_mobile(self, subscriber: Subscriber) -> str:
        """Forward the subscriber's lines to its mobile; returns the number used."""
        if not subscriber.forward_number:
            raise NoMobileNumber(subscriber.name)
        subscriber.scenario = Scenario.FORWARD
        await self.push_lines(
            subscriber
        )  # the PBX first: if it fails, the DB still tells the truth
        await subscriber.save(update_fields=["scenario"])
        await self.redirect_ringing(subscriber)
        log.info("subscriber %s: calls forwarded to mobile", subscriber.id)
        return subscriber.forward_number

    async def call_back(self, subscriber: Subscriber, call: Call) -> None:
        """Ring the subscriber's mobile first, then connect the caller."""
        if not subscriber.forward_number:
            raise NoMobileNumber(subscriber.name)
        await self._ami.send_action(
            {
                "Action": "Originate",
                "Channel": f"Local/{subscriber.forward_number}@{CALLBACK_CONTEXT}",
                "Context": CALLBACK_CONTEXT,
                "Exten": call.caller_number,
                "Priority": "1",
                "CallerID": f'"{subscriber.name}" <{call.ddi}>',
                "Async": "true",
            }
        )

    async def reassert_all(self) -> None:
        """After Asterisk (re)connects, make AstDB agree with our database."""
        for subscriber in await Subscriber.all():
            await self.push_lines(subscriber)
