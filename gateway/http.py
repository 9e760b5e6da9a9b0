"""The gateway's HTTP face (aiohttp): health and metrics for operators, and the hooks peers call
(MM7 delivery reports from the MMSC, received faxes from the HylaFAX hook)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from gateway.fax.hook import BODY_ERRORS, FaxHook, fax_handler
from models.settings import FaxSettings, MmsSettings
from notifiers.base import DeliveryReport
from notifiers.mms.reports import install as install_mm7
from notifiers.mms.reports import mm7_handler

log = logging.getLogger(__name__)

HealthProbe = Callable[[], Awaitable[dict[str, Any]]]
ReportHook = Callable[[DeliveryReport], Awaitable[None]]
MetricsPage = Callable[[], Awaitable[tuple[bytes, str]]]  # the body and its content type
HEALTH_PROBE: web.AppKey[HealthProbe] = web.AppKey("health_probe")
METRICS_PAGE: web.AppKey[MetricsPage] = web.AppKey("metrics_page")
REPORT_HOOK: web.AppKey[ReportHook] = web.AppKey("report_hook")
MAX_HOOK_BYTES = 1 << 20  # a delivery report is a few KB


async def _health(request: web.Request) -> web.Response:
    """200 when all is well; 503 naming what is not (AMI, a failing or dead loop)."""
    try:
        report = await request.app[HEALTH_PROBE]()
    except Exception:  # a probe that cannot answer is itself a reason to page someone
        log.exception("health probe failed")
        report = {"ok": False, "error": "health probe failed"}
    return web.json_response(report, status=200 if report.get("ok") else 503)


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus text format (gateway/metrics.py)."""
    body, content_type = await request.app[METRICS_PAGE]()
    return web.Response(body=body, headers={"Content-Type": content_type})


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No internal detail ever leaves in an answer: HTTP errors pass as they are, a peer that
    broke off gets 400, anything else 500 with a generic body and the details in the log."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except BODY_ERRORS as exc:
        log.info("HTTP %s %s: the request broke off (%r)", request.method, request.path, exc)
        return web.json_response({"ok": False, "error": "incomplete request"}, status=400)
    except Exception:
        log.exception("HTTP %s %s: unexpected error", request.method, request.path)
        return web.json_response({"ok": False, "error": "internal error"}, status=500)


class _BadRequestsAsWarnings(logging.Filter):
    """aiohttp answers a request it cannot parse with 400 and logs it with a traceback at
    ERROR: on a port open to the network, every scanner would fill the log. One warning
    line instead (still naming the peer and the reason)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= error.code < 500:
            reason = " ".join(str(error.message).split())[:200]
            record.msg, record.args = f"{record.getMessage()}: {reason}", None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


_QUIET_BAD_REQUESTS = _BadRequestsAsWarnings()


def build_app(
    health: HealthProbe,
    on_report: ReportHook,
    fax: FaxSettings,
    on_fax: FaxHook,
    mms: MmsSettings | None = None,
    metrics: MetricsPage | None = None,
) -> web.Application:
    """`mms` says who may post MM7 delivery reports (or later: mm7_hook.install)."""
    logging.getLogger("aiohttp.server").addFilter(_QUIET_BAD_REQUESTS)  # once: same object
    app = web.Application(client_max_size=MAX_HOOK_BYTES, middlewares=[_errors])
    app[HEALTH_PROBE] = health
    app[REPORT_HOOK] = on_report
    app.router.add_get("/healthz", _health)
    if metrics is not None:
        app[METRICS_PAGE] = metrics
        app.router.add_get("/metrics", _metrics)
    if mms is not None:
        install_mm7(app, mms)
    app.router.add_post("/hooks/mm7", mm7_handler(on_report))
    # The fax handler reads its own (larger, signed) body; it refuses all when unset.
    app.router.add_post("/hooks/fax", fax_handler(fax, on_fax))
    return app
