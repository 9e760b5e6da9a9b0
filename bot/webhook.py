"""Telegram by webhook: updates posted to our own aiohttp app, for several instances.

Polling (getUpdates) allows one consumer per bot, so several gateways behind one address
take updates by webhook instead: Telegram posts each update to `telegram.webhook_url`, the
reverse proxy in front hands it to one instance, and that instance's route here checks the
secret Telegram echoes, puts the update on its python-telegram-bot Application's queue and
answers 200 at once (Telegram waits for the answer before the chat's next update, and
redelivers what it did not get a 2xx for). PTB's own webhook server is not used: the
route lives on the gateway's app, on the port of /healthz.

Each instance calls setWebhook at start with the same URL and secret, which is
idempotent. None calls deleteWebhook on stop: the others still serve the address, and a
deleted webhook would leave updates undelivered until some instance started again.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from models.settings import TelegramSettings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# What the bot's handlers read (messages, typed or edited, and button presses).
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
# An update is a message or a button press with the message it sits on: a few KB.
MAX_UPDATE_BYTES = 256 * 1024
# Telegram redelivers an update it got no 2xx for (a timeout, a lost answer) within
# minutes; an update_id seen this recently is answered 200 and not processed again.
DEDUPE_SECONDS = 600.0
DEDUPE_MAX = 10_000

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


class RecentIds:
    """update_ids seen in the last `seconds` (at most `limit` of them, oldest dropped)."""

    def __init__(self, seconds: float = DEDUPE_SECONDS, limit: int = DEDUPE_MAX) -> None:
        self.seconds = seconds
        self.limit = limit
        self._seen: OrderedDict[int, float] = OrderedDict()

    def first_time(self, update_id: int, now: float | None = None) -> bool:
        """True the first time `update_id` is offered within the window (and remembers it)."""
        now = time.monotonic() if now is None else now
        while self._seen and (
            len(self._seen) >= self.limit or next(iter(self._seen.values())) < now - self.seconds
        ):
            self._seen.popitem(last=False)
        if update_id in self._seen:
            return False
        self._seen[update_id] = now
        return True


def _json_error(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)


class TelegramWebhook:
    """The route Telegram posts updates to, and the setWebhook that points it there."""

    def __init__(self, application: AnyApplication, settings: TelegramSettings) -> None:
        self.application = application
        self.settings = settings
        self._secret = settings.webhook_secret.encode()
        self.recent = RecentIds()

    def install(self, app: web.Application) -> None:
        """Add the route to the gateway's app (before it starts: routers freeze then)."""
        app.router.add_post(self.settings.webhook_path, self.handle)

    async def register(self) -> None:
        """setWebhook: every instance sends the same URL and secret, so any order is fine."""
        await self.application.bot.set_webhook(
            url=self.settings.webhook_url,
            secret_token=self.settings.webhook_secret,
            allowed_updates=list(ALLOWED_UPDATES),
        )

    def _secret_ok(self, request: web.Request) -> bool:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return False
        # Header values arrive as text; any undecodable byte stays a (mismatching) byte.
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._secret)

    async def handle(self, request: web.Request) -> web.Response:
        if not self._secret_ok(request):
            missing = SECRET_HEADER not in request.headers
            log.warning(
                "telegram webhook: %s secret token from %s; update refused",
                "no" if missing else "a wrong",
                request.remote,
            )
            return _json_error(403, "forbidden")
        if not self.application.running:
            # Starting or stopping: Telegram retries, maybe at another instance.
            return _json_error(503, "not ready")
        body = await _read_limited(request)
        if body is None:
            return _json_error(413, f"an update is at most {MAX_UPDATE_BYTES} bytes")
        update = self._parse(body)
        if update is None:
            return _json_error(400, "expected a Telegram Update object")
        if self.recent.first_time(update.update_id):
            self.application.update_queue.put_nowait(update)
        else:
            log.info("telegram webhook: update %s redelivered; already taken", update.update_id)
        return web.Response(status=200)

    def _parse(self, body: bytes) -> Update | None:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
            return None
        try:
            return Update.de_json(data, self.application.bot)
        except Exception:  # an object of the wrong shape: PTB raises whatever it meets
            log.info("telegram webhook: update %s not understood", update_id, exc_info=True)
            return None


async def _read_limited(request: web.Request) -> bytes | None:
    """The body, or None when it is longer than MAX_UPDATE_BYTES (read no further)."""
    if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
        return None
    body = await request.content.read(MAX_UPDATE_BYTES + 1)
    while len(body) <= MAX_UPDATE_BYTES and not request.content.at_eof():
        chunk = await request.content.read(MAX_UPDATE_BYTES + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return None if len(body) > MAX_UPDATE_BYTES else body
