"""Two transactions writing one notification key (the router's missed call and the
voicemail scan's, for one call). On PostgreSQL they run side by side: the later insert
fails on the unique key when the first commits, and that must not undo the rest of its
transaction. SQLite runs them one after the other, so there it holds trivially."""

from __future__ import annotations

import asyncio

from tortoise import connections
from tortoise.transactions import in_transaction

from gateway.delivery.notices import NewNotification, Notices
from models.db import Notification, Subscriber, Urgency
from models.settings import RoutingSettings
from models.vocab import Kind

WAIT = 10.0


async def _blocked_on_a_lock() -> bool:
    """PostgreSQL: a session of this database waits for a lock (SQLite: never seen)."""
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        return True
    rows = await conn.execute_query_dict(
        "SELECT COUNT(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return bool(rows[0]["n"])


async def test_a_key_written_meanwhile_elsewhere_leaves_the_rest_of_ours_whole(db: str) -> None:
    sub = await Subscriber.create(name="Office", language="en", timezone="Europe/Athens")
    notices = Notices(["telegram"], RoutingSettings(default_channels="telegram"))

    def notice(key: str) -> NewNotification:
        return NewNotification(key, sub, Kind.MISSED_CALL, Urgency.NORMAL, {})

    wrote, may_commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with in_transaction():
            await notices.create([notice("missed_call:1")])
            wrote.set()
            await may_commit.wait()

    async def second() -> None:
        async with in_transaction():
            await Subscriber.filter(id=sub.id).update(greeting="second")
            await notices.create([notice("missed_call:1"), notice("missed_call:2")])

    one = asyncio.create_task(first())
    await asyncio.wait_for(wrote.wait(), WAIT)
    two = asyncio.create_task(second())
    async with asyncio.timeout(WAIT):  # the second's insert waits on the first's key
        while not await _blocked_on_a_lock():  # noqa: ASYNC110  (the server has no event)
            await asyncio.sleep(0.01)
    may_commit.set()
    await asyncio.wait_for(asyncio.gather(one, two), WAIT)

    keys = await Notification.all().order_by("dedupe_key").values_list("dedupe_key", flat=True)
    assert keys == ["missed_call:1", "missed_call:2"]
    assert (await Subscriber.get(id=sub.id)).greeting == "second"
