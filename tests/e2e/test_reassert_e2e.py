"""The AstDB re-assert at AMI login through the real gateway and the sandbox AMI: what the
PBX is sent on a first login, on a second with nothing changed (no write at all), after a
change by hand on the PBX (that key alone); and a call arriving while 30,000 DDIs are
re-asserted is tracked and routed before the re-assert is done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.reassert import seed
from bot.runtime import Runtime
from gateway.control import admin
from models.database import close_db, migrate, open_db
from models.db import Ddi
from models.events import CallSnapshot
from sandbox.ami_server import AmiServer, header
from sandbox.call_scripts import CallFactory
from sandbox.telegram_api import BotApiServer
from tests.stack import sandbox_settings

TOKEN = "123456:REASSERT-token"
WAIT = 60.0
A, B = "2100001", "2100002"
MOBILE = "+306944000001"


@dataclass
class Stack:
    ami: AmiServer
    runtime: Runtime

    def writes(self, since: int = 0) -> list[tuple[str, str, str]]:
        return [
            (header(a, "Action"), f"{header(a, 'Family')}/{header(a, 'Key')}", header(a, "Val"))
            for a in self.ami.actions[since:]
            if header(a, "Action") in ("DBPut", "DBDel", "DBDelTree")
        ]

    async def relogin(self) -> int:
        """Drop the link (the PBX keeps its AstDB), wait for the next login's sync; the
        index of the first action sent after the drop."""
        gateway, mark = self.runtime.gateway, len(self.ami.actions)
        syncs = gateway.pbx_syncs
        await self.ami.drop_clients()
        await gateway.wait_synced(after=syncs, timeout=WAIT)
        return mark


@asynccontextmanager
async def gateway_on(
    tmp: Path, ami: AmiServer, lines: Callable[[], Awaitable[object]]
) -> AsyncIterator[Stack]:
    """The product against `ami`, its database holding `lines` before the first login."""
    async with BotApiServer(TOKEN) as bot:
        settings = sandbox_settings(tmp / "reassert.sqlite3", ami, bot, TOKEN)
        await migrate(settings.database.url)
        await open_db(settings.database.url)
        try:
            await lines()
        finally:
            await close_db()
        runtime = Runtime(settings)
        await runtime.start()
        try:
            yield Stack(ami, runtime)
        finally:
            await runtime.stop()


async def two_offices() -> None:
    await admin.add_subscriber(name="Dr A", ddis=[A], language="en", timezone="UTC", mobile=MOBILE)
    await admin.add_subscriber(name="Dr B", ddis=[B], language="en", timezone="UTC")
    await Ddi.filter(number=A).update(mailbox="7001@default")


async def test_only_what_differs_is_written_and_a_second_login_writes_nothing(
    tmp_path: Path,
) -> None:
    async with AmiServer(secret="s") as ami:
        ami.astdb.update(
            {
                f"frontdesk/scenario/{A}": "agent",  # already right
                f"frontdesk/scenario/{B}": "closed",  # set by hand: wrong
                "frontdesk/scenario/2109999": "voicemail",  # a DDI since removed
                "frontdesk/forward/2109999": "+306900000000",
                f"frontdesk/ringtime/{A}": "30",  # the operator's
                "test/other": "x",  # another family
            }
        )
        async with gateway_on(tmp_path, ami, two_offices) as stack:
            await stack.runtime.gateway.wait_synced(after=0, timeout=WAIT)
            assert sorted(stack.writes()) == [
                ("DBDel", "frontdesk/forward/2109999", ""),
                ("DBDel", "frontdesk/scenario/2109999", ""),
                ("DBPut", f"frontdesk/forward/{A}", MOBILE),
                ("DBPut", f"frontdesk/forward/{B}", ""),
                ("DBPut", f"frontdesk/mailbox/{A}", "7001@default"),
                ("DBPut", f"frontdesk/scenario/{B}", "agent"),
            ]
            assert ami.astdb[f"frontdesk/ringtime/{A}"] == "30"
            assert ami.astdb["test/other"] == "x"

            mark = await stack.relogin()  # nothing changed on either side
            assert stack.writes(mark) == []
            trees = [
                (header(a, "Family"), header(a, "Key"))
                for a in ami.actions[mark:]
                if header(a, "Action") == "DBGetTree" and header(a, "Family") == "frontdesk"
            ]
            assert sorted(trees) == [
                ("frontdesk", "forward"),
                ("frontdesk", "mailbox"),
                ("frontdesk", "scenario"),
            ]

            ami.astdb[f"frontdesk/forward/{A}"] = "+306999999999"  # by hand, while linked
            mark = await stack.relogin()
            assert stack.writes(mark) == [("DBPut", f"frontdesk/forward/{A}", MOBILE)]


async def test_a_call_during_a_30000_ddi_reassert_is_handled_before_it_ends(
    tmp_path: Path,
) -> None:
    async def many() -> None:
        await seed(10_000, 3)

    async with AmiServer(secret="s") as ami:  # AstDB empty: all 90,000 keys are written
        async with gateway_on(tmp_path, ami, many) as stack:
            gateway = stack.runtime.gateway
            first_put = await ami.wait_action("DBPut", timeout=WAIT)  # the re-assert is on
            assert gateway.pbx_syncs == 0
            frames = CallFactory(start_epoch=1795400000).missed(A, "+302101234567", "Άννα")
            linkedid = frames[0]["Linkedid"]
            routed = asyncio.Event()
            seen: list[tuple[int, int]] = []  # (logins synced, DBPuts received) when routed

            def observe(snap: CallSnapshot) -> None:
                if snap.linkedid == linkedid and snap.ended and not routed.is_set():
                    puts = sum(1 for a in ami.actions if header(a, "Action") == "DBPut")
                    seen.append((gateway.pbx_syncs, puts))
                    routed.set()

            gateway.observers.append(observe)
            await ami.play(frames)
            await asyncio.wait_for(routed.wait(), WAIT)
            await gateway.wait_synced(after=0, timeout=WAIT)

            [(synced, puts)] = seen
            assert synced == 0, "the call waited for the re-assert to finish"
            assert puts < 90_000
            assert first_put in ami.actions
            assert sum(1 for a in ami.actions if header(a, "Action") == "DBPut") == 90_000
            assert len([k for k in ami.astdb if k.startswith("frontdesk/")]) == 90_000
