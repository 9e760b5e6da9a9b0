"""An MO SMS is acknowledged to the SMSC only once it is stored: with the database locked
the SMSC gets a temporary error and delivers it again, and the redelivery is stored once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from gateway.control.inbound import InboundDesk
from gateway.delivery.notices import Notices
from models.database import close_db, migrate, open_db
from models.db import InboundMessage
from notifiers.sms import text as sms_text
from sandbox.smsc import ESME_ROK, ESME_RX_T_APPN, SmscServer
from tests.e2e.test_sms import Connect
from tests.e2e.test_sms import connect as connect  # the fixtures
from tests.e2e.test_sms import sinks as sinks
from tests.e2e.test_sms import smsc as smsc

HANDSET = "306900000077"


@pytest.fixture
async def db_file(tmp_path: Path) -> AsyncIterator[Path]:
    """A migrated database whose writers give up on a lock after 0.1 s, not 5 s."""
    path = tmp_path / "mo.sqlite3"
    url = f"sqlite://{path}?busy_timeout=100"
    await migrate(url)
    await open_db(url)
    yield path
    await close_db()


def _desk() -> InboundDesk:
    # The sender is nobody's mobile: storing is all the desk does, no notice is touched.
    return InboundDesk(cast(Notices, None))


async def _stored(text: str) -> int:
    return await InboundMessage.filter(text=text, sender=f"+{HANDSET}").count()


@pytest.mark.parametrize("text", ["Call me back", "Παρακαλώ καλέστε με αύριο το πρωί. " * 6])
async def test_a_locked_database_gets_a_temporary_error_then_the_redelivery_is_stored(
    smsc: SmscServer, connect: Connect, db_file: Path, text: str
) -> None:
    await connect(on_inbound=_desk().receive)
    smsc.mo_retries = 100
    locker = sqlite3.connect(db_file, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        injected = smsc.inject_mo(HANDSET, "Frontdesk", text)
        delivery = asyncio.create_task(injected)
        await smsc.wait_until(lambda: ESME_RX_T_APPN in smsc.mo_statuses, timeout=10)
        assert await _count_unlocked(locker, text) == 0  # refused, not taken and lost
        locker.execute("COMMIT")
        statuses = await asyncio.wait_for(delivery, 10)
    finally:
        locker.close()
    parts = sms_text.count_parts(text)
    assert statuses[-1] == ESME_ROK and ESME_RX_T_APPN in statuses
    assert statuses.count(ESME_ROK) == parts  # every part taken once in the end
    assert await _stored(text) == 1  # nothing lost, nothing stored twice


async def _count_unlocked(locker: sqlite3.Connection, text: str) -> int:
    # Read through the lock holder: nothing was committed while it held the database.
    query = "SELECT count(*) FROM inbound_message WHERE text = ?"
    return int(locker.execute(query, (text,)).fetchone()[0])
