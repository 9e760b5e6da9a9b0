"""A database in use upgrades: rows written under an older schema survive the newer
migrations, and columns added to filled tables get their defaults (SQLite refuses a NOT
NULL column without a database default on a table that has rows, and so does PostgreSQL:
with FRONTDESK_TEST_DB=postgres the same runs on an empty PostgreSQL database)."""

from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate as run_migrations

from models.database import close_db, migrate, open_db, tortoise_config
from models.db import LinkCode, Subscriber
from tests import pg_cluster


async def test_a_filled_database_at_0005_upgrades_to_the_head(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    url = pg_cluster.empty_database(path) if pg_cluster.on_postgres() else f"sqlite://{path}"
    await run_migrations(config=tortoise_config(url), target="models.0005_mobile")
    connection = Tortoise.get_connection("default")
    # Ids from the database, as the old gateway got them (PostgreSQL: from the sequence).
    await connection.execute_script(
        "INSERT INTO subscriber (name, language, timezone, scenario, instructions,"
        " sms_pin_failures, created_at) VALUES ('Γραφείο', 'el', 'Europe/Athens',"
        " 'agent', 'Say hello', 0, '2026-11-01 09:00:00+00:00');"
        "INSERT INTO link_code (code, subscriber_id, expires_at)"
        " SELECT 'abc123', id, '2026-12-01 09:00:00+00:00' FROM subscriber;"
    )
    await Tortoise.close_connections()

    await migrate(url)
    await open_db(url)
    try:
        subscriber = await Subscriber.get(name="Γραφείο")
        assert (subscriber.name, subscriber.instructions, subscriber.greeting) == (
            "Γραφείο",
            "Say hello",
            "",
        )
        assert subscriber.outbound_allowed == "national,mobile"  # 0007's default
        link = await LinkCode.get(code="abc123")
        assert (link.subscriber_id, link.user_id) == (subscriber.id, None)  # type: ignore[attr-defined]
        # New rows still get ids of their own after the upgrade.
        later = await Subscriber.create(name="Νέο", language="el", timezone="Europe/Athens")
        assert later.id != subscriber.id
    finally:
        await close_db()
