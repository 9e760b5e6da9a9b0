"""Control actions: what subscribers' commands do on the PBX and in the database.

AstDB keys (family `frontdesk`) are read by deploy/asterisk/extensions_frontdesk.conf:
scenario/<ddi>, forward/<ddi>, mailbox/<ddi> (ringtime/ and fallback/ are the operator's).
"""

from __future__ import annotations

import logging
from typing import Protocol

from models.db import Call, Ddi, Subscriber
from models.events import Scenario

log = logging.getLogger(__name__)

ASTDB_FAMILY = "frontdesk"
CALLBACK_CONTEXT = "frontdesk-callback"


class ActionSender(Protocol):
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]: ...


class NoMobileNumber(ValueError):
    """The subscriber has no forward/mobile number on file."""


class Control:
    def __init__(self, ami: ActionSender) -> None:
        self._ami = ami

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

    async def forward_to_mobile(self, subscriber: Subscriber) -> str:
        """Forward the subscriber's lines to its mobile; returns the number used."""
        if not subscriber.forward_number:
            raise NoMobileNumber(subscriber.name)
        subscriber.scenario = Scenario.FORWARD
        await self.push_lines(
            subscriber
        )  # the PBX first: if it fails, the DB still tells the truth
        await subscriber.save(update_fields=["scenario"])
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
