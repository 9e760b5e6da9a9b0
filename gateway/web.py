"""The gateway's HTTP face (aiohttp): health for operators; hooks arrive here in later issues."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
HEALTH_PROBE: web.AppKey[HealthProbe] = web.AppKey("health_probe")


async def _health(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_PROBE]()
    return web.json_response(report, status=200 if report.get("ok") else 503)


def build_app(health: HealthProbe) -> web.Application:
    app = web.Application()
    app[HEALTH_PROBE] = health
    app.router.add_get("/healthz", _health)
    return app
