"""The AMI session takes the events the gateway wants though the lead changed while its
Login was on its way (that Login asked for what was wanted when it was sent)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.pbx.client import AmiClient
from gateway.pbx.wire import Frame
from models.settings import load_settings, with_section
from sandbox.ami_server import AmiServer
from sandbox.call_scripts import CallFactory

WAIT = 10.0
DDI = "+302100000001"


@asynccontextmanager
async def _login_held_while_lead_changes(
    ami: AmiServer, frames: list[Frame], was_leading: bool
) -> AsyncIterator[tuple[AmiClient, list[str]]]:
    """A client logs in; the PBX holds its Login while the lead changes, then answers.
    Yields the client and the EventMask values it sent by the time its on-connect hook ran."""
    s = load_settings(None, environ={})
    s = with_section(s, "ami", port=ami.port, secret="s", reconnect_min=0.05)
    hooked = asyncio.Event()
    masks: list[str] = []

    async def on_connected() -> None:  # the gateway syncs its calls here
        masks.extend(a["EventMask"] for a in ami.actions if a.get("Action") == "Events")
        hooked.set()

    client = AmiClient(s.ami, frames.append, None, on_connected, consuming=was_leading)
    ami.held.add("login")
    try:
        await client.start()
        await ami.wait_until(lambda: any(a.get("Action") == "Login" for a in ami.actions), WAIT)
        client.want_events(not was_leading)  # what `_elected` / `_deposed` do meanwhile
        ami.held.clear()
        await ami.release()
        await asyncio.wait_for(hooked.wait(), WAIT)
        yield client, masks
    finally:
        await client.stop()


async def test_a_standby_elected_while_logging_in_takes_the_calls_events() -> None:
    async with AmiServer(secret="s") as ami:
        frames: list[Frame] = []
        async with _login_held_while_lead_changes(ami, frames, was_leading=False) as (
            client,
            masks,
        ):
            assert masks == ["on"]  # before the gateway syncs: nothing after it is lost
            call = CallFactory().missed(DDI, "+302101234567", "Μαρία")
            await ami.play(call)
            await client.send_action({"Action": "Ping"})  # answered after the events
            assert call[0]["Linkedid"] in {f.get("Linkedid") for f in frames}


async def test_a_leader_deposed_while_logging_in_stops_taking_the_calls_events() -> None:
    async with AmiServer(secret="s") as ami:
        frames: list[Frame] = []
        async with _login_held_while_lead_changes(ami, frames, was_leading=True) as (_, masks):
            assert masks == ["off"]
