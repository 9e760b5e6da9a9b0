"""The gateway's HTTP face (aiohttp): health for operators, and the hooks peers call
(MM7 delivery reports from the MMSC, received faxes from the HylaFAX hook)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.fax import FaxHook, fax_handler
from models.settings import FaxSettings
from notifiers.base import DeliveryReport
from notifiers.mm7 import Mm7FormatError, delivery_report_response, parse_delivery_report

log = logging.getLogger(__name__)

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
ReportHook = Callable[[DeliveryReport], Awaitable[None]]
HEALTH_PROBE: web.AppKey[HealthProbe] = web.AppKey("health_probe")
REPORT_HOOK: web.AppKey[ReportHook] = web.AppKey("report_hook")
MAX_HOOK_BYTES = 1 << 20  # a delivery report is a few KB


async def _health(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_PROBE]()
    return web.json_response(report, status=200 if report.get("ok") else 503)


async def _mm7_report(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        transaction_id, report = parse_delivery_report(
            body, request.headers.get("Content-Type", "")
        )
    except Mm7FormatError as exc:
        log.warning("MM7 delivery report refused: %s", exc)
        return web.Response(status=400, text=f"malformed MM7 delivery report: {exc}\n")
    if report is not None:  # None: an interim status (Deferred...), acknowledged only
        await request.app[REPORT_HOOK](report)
    return web.Response(
        body=delivery_report_response(transaction_id),
        content_type="text/xml",
        charset="utf-8",
    )


def build_app(
    health: HealthProbe, on_report: ReportHook, fax: FaxSettings, on_fax: FaxHook
) -> web.Application:
    app = web.Application(client_max_size=MAX_HOOK_BYTES)
    app[HEALTH_PROBE] = health
    app[REPORT_HOOK] = on_report
    app.router.add_get("/healthz", _health)
    app.router.add_post("/hooks/mm7", _mm7_report)
    # The fax handler reads its own (larger, signed) body; it refuses all when unset.
    app.router.add_post("/hooks/fax", fax_handler(fax, on_fax))
    return app
