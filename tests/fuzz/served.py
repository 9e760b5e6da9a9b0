"""The gateway's real HTTP app (`Gateway.web`, built by gateway/http.py build_app) on a
loopback TestServer, on a migrated SQLite database with one subscriber, with the MMSC's
credentials installed as bot/runtime.py does; plus what the fuzzers check after each
request: the rows written, the files in the fax archive, the exceptions logged."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bench.http_fuzz import DDI, MM7_PASSWORD, MM7_USER, SECRET, ServerLog
from gateway.app import Gateway
from gateway.control import admin
from models.db import Delivery, Notification
from models.settings import Settings, load_settings, with_section
from notifiers.mms import reports as mm7_hook

HOST = "127.0.0.1"
FAX_MAX_BYTES = 200_000  # small, so that oversized uploads come cheap


def settings_for(database_url: str, workdir: Path) -> Settings:
    s = load_settings(None, environ={})
    s = with_section(s, "database", url=database_url)
    s = with_section(s, "http", host=HOST, port=0)
    s = with_section(s, "mms", report_username=MM7_USER, report_password=MM7_PASSWORD)
    return with_section(
        s,
        "fax",
        secret=SECRET,
        archive=str(workdir / "fax"),
        max_bytes=FAX_MAX_BYTES,
        max_pixels=4_000_000,
    )


@dataclass
class Served:
    client: TestClient
    gateway: Gateway
    archive: Path
    log: ServerLog

    @property
    def port(self) -> int:
        port = self.client.server.port
        assert port is not None
        return port

    @property
    def routes(self) -> list[tuple[str, str]]:
        """(method, path) of every route the app mounts, from its router."""
        return sorted(
            (route.method, route.resource.canonical)
            for route in self.gateway.web.router.routes()
            if route.resource is not None
        )

    async def rows(self) -> int:
        return await Notification.all().count() + await Delivery.all().count()

    def archived(self) -> set[Path]:
        """Every file under the archive, including the uploads' spool (.incoming), whose
        files are anonymous while a request runs and must never be left named."""
        return {p for p in self.archive.rglob("*") if p.is_file()}


@contextlib.asynccontextmanager
async def serve(database_url: str, workdir: Path) -> AsyncIterator[Served]:
    settings = settings_for(database_url, workdir)
    await admin.add_subscriber(name="Fuzz", ddis=[DDI], language="el", timezone="UTC")
    with ServerLog().listening() as server_log:
        gateway = Gateway(settings)
        mm7_hook.install(gateway.web, settings.mms)
        client = TestClient(TestServer(gateway.web, host=HOST))
        await client.start_server()
        try:
            yield Served(client, gateway, Path(settings.fax.archive), server_log)
        finally:
            await client.close()
