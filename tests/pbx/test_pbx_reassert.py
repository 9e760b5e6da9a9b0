"""The AstDB re-assert against a real Asterisk 22 (marker `pbx`): DBGetTree as Asterisk
answers it, and after a login's re-assert `database show frontdesk` holds our values,
stale keys of DDIs we no longer have are gone, the operator's keys are untouched, and a
second login writes nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.control import admin
from gateway.control.lines import ASTDB_FAMILY, Control, Reasserted
from gateway.pbx.actions import Pbx
from gateway.pbx.client import AmiClient
from models.db import Ddi
from models.settings import AmiSettings
from sandbox.real_pbx import AMI_USER, PbxConfig, PrivateAsterisk
from tests.pbx_stack import DIALPLAN, launcher

pytestmark = pytest.mark.pbx

A, B = "2100001", "2100002"
MOBILE = "+306944000001"
WAIT = 30.0


@pytest.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[PrivateAsterisk]:
    path = launcher()
    assert path is not None
    asterisk = PrivateAsterisk(path, tmp_path / "pbx", PbxConfig(dialplan=DIALPLAN))
    await asterisk.start()
    try:
        yield asterisk
    finally:
        await asterisk.stop()


class Gateway:
    """The gateway's AMI client and Control; every login re-asserts, as Gateway does."""

    def __init__(self, pbx: PrivateAsterisk) -> None:
        settings = AmiSettings(
            port=pbx.ami_port, username=AMI_USER, secret=pbx.config.ami_secret, reconnect_min=0.1
        )
        self.client = AmiClient(settings, lambda frame: None, frozenset(), self._logged_in)
        self.pbx = Pbx(self.client)
        self.control = Control(self.pbx)
        self.done: asyncio.Queue[Reasserted] = asyncio.Queue()

    async def _logged_in(self) -> None:
        self.done.put_nowait(await self.control.reassert_all())

    async def login(self) -> Reasserted:
        await self.client.start()
        return await asyncio.wait_for(self.done.get(), WAIT)


def shown(cli: str) -> dict[str, str]:
    """`database show frontdesk` as key -> value."""
    pairs = (re.match(r"^/frontdesk/(\S+)\s*:\s?(.*?)\s*$", line) for line in cli.splitlines())
    return {m[1]: m[2] for m in pairs if m}


async def test_dbgettree_is_read_and_the_pbx_ends_up_with_our_values(
    db: str, pbx: PrivateAsterisk
) -> None:
    await admin.add_subscriber(name="Dr A", ddis=[A], language="en", timezone="UTC", mobile=MOBILE)
    await admin.add_subscriber(name="Dr B", ddis=[B], language="en", timezone="UTC")
    await Ddi.filter(number=A).update(mailbox="7001@default")
    await pbx.db_put(ASTDB_FAMILY, f"scenario/{A}", "agent")  # right already
    await pbx.db_put(ASTDB_FAMILY, f"scenario/{B}", "closed")  # wrong
    await pbx.db_put(ASTDB_FAMILY, "scenario/2109999", "voicemail")  # a DDI since removed
    await pbx.db_put(ASTDB_FAMILY, f"ringtime/{A}", "30")  # the operator's
    await pbx.db_put(ASTDB_FAMILY, "scenariox/1", "x")  # not under scenario/

    gateway = Gateway(pbx)
    try:
        first = await gateway.login()
        # Written: forward/A, mailbox/A, forward/B and scenario/B; deleted: the stale one.
        assert (first.ddis, first.written, first.deleted) == (2, 4, 1)
        assert shown(await pbx.rx("database show frontdesk")) == {
            f"forward/{A}": MOBILE,
            f"forward/{B}": "",
            f"mailbox/{A}": "7001@default",
            f"ringtime/{A}": "30",
            f"scenario/{A}": "agent",
            f"scenario/{B}": "agent",
            "scenariox/1": "x",
        }
        # DBGetTree, parsed: keys within the family, the empty value kept, whole segments.
        assert await gateway.pbx.db_tree(ASTDB_FAMILY, "forward") == {
            f"forward/{A}": MOBILE,
            f"forward/{B}": "",
        }
        assert await gateway.pbx.db_tree(ASTDB_FAMILY, "scenario") == {
            f"scenario/{A}": "agent",
            f"scenario/{B}": "agent",
        }
        assert await gateway.pbx.db_get(ASTDB_FAMILY, f"mailbox/{A}") == "7001@default"

        await pbx.db_put(ASTDB_FAMILY, f"scenario/{A}", "closed")  # by hand, while linked
        await gateway.client.stop()
        gateway = Gateway(pbx)
        again = await gateway.login()
        assert (again.written, again.deleted) == (1, 0)
        assert await pbx.db_get(ASTDB_FAMILY, f"scenario/{A}") == "agent"
    finally:
        await gateway.client.stop()
