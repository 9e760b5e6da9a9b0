"""Telegram by webhook: gateways take the updates the sandbox Bot API posts to them.

The sandbox stands for Telegram (setWebhook, then a POST per update with the secret
header, again until a 2xx) and, through `route_webhook`, for the TLS-terminating proxy
that hands each POST to one instance. Two Runtimes on one database are the "several
instances behind one address".
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.runtime import Runtime
from bot.webhook import MAX_UPDATE_BYTES, SECRET_HEADER
from gateway.control import admin
from models.database import migrate
from models.settings import Settings, with_section
from sandbox.ami_server import AmiServer
from sandbox.telegram_api import BotApiServer, Call
from tests.stack import sandbox_settings

TOKEN = "123456:WEBHOOK-token"
SECRET = "hook_Secret-0123456789"
URL = "https://frontdesk.example/telegram/webhook"
CHAT = 6160
DDI = "2100060"
WAIT = 10.0


@dataclass
class Hooked:
    ami: AmiServer
    bot: BotApiServer
    runtimes: list[Runtime]
    # The ORM's connections live in a context variable: each instance after the first runs
    # in a context of its own, so it has its own connections, as a process would.
    contexts: list[contextvars.Context | None] = field(default_factory=list)
    stopped: set[int] = field(default_factory=set)

    async def start(self, settings: Settings) -> None:
        runtime = Runtime(settings)
        own = contextvars.Context() if self.runtimes else None
        await (
            runtime.start() if own is None else asyncio.create_task(runtime.start(), context=own)
        )
        self.runtimes.append(runtime)
        self.contexts.append(own)

    async def stop(self, n: int) -> None:
        if n not in self.stopped:
            self.stopped.add(n)
            own, stop = self.contexts[n], self.runtimes[n].stop()
            await (stop if own is None else asyncio.create_task(stop, context=own))

    def hook_url(self, n: int = 0) -> str:
        return f"http://127.0.0.1:{self.runtimes[n].gateway.http_port}/telegram/webhook"

    def answers(self) -> list[Call]:
        return [c for c in self.bot.messages_to(CHAT) if c.method == "sendMessage"]

    def statuses(self) -> list[Call]:
        """The answers to /status ("Calls: ...") so far."""
        return [c for c in self.answers() if c.params["text"].startswith("Calls:")]

    async def settle(self) -> None:
        """/help to each running instance (the proxy takes them in turn), and wait for the
        answers: by then every update of the chat posted before has been answered (the
        sandbox posts in order; each instance runs a chat's updates in order)."""
        before = len(self.answers())
        running = len(self.runtimes) - len(self.stopped)
        for _ in range(running):
            self.bot.inject_message(CHAT, "/help")

        def helped() -> bool:
            answers = self.answers()[before:]
            return len([c for c in answers if not c.params["text"].startswith("Calls:")]) >= running

        await self.bot.wait_until(helped, WAIT, "the answers to /help")

    async def post(
        self, body: bytes, headers: dict[str, str] | None = None, *, chunked: bool = False
    ) -> int:
        """A POST straight to the first gateway's webhook route; its HTTP status. Chunked:
        without a Content-Length, the body in 64 KiB pieces."""

        async def pieces() -> AsyncIterator[bytes]:
            for at in range(0, len(body), 65536):
                yield body[at : at + 65536]

        sent = {"Content-Type": "application/json", **(headers or {})}
        data = pieces() if chunked else body
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.hook_url(), data=data, headers=sent) as response,
        ):
            return response.status


def webhook_settings(tmp: Path, ami: AmiServer, bot: BotApiServer) -> Settings:
    s = sandbox_settings(tmp / "webhook.sqlite3", ami, bot, TOKEN)
    return with_section(s, "telegram", mode="webhook", webhook_url=URL, webhook_secret=SECRET)


async def hooked(tmp: Path, instances: int) -> AsyncIterator[Hooked]:
    async with AmiServer(secret="s") as ami, BotApiServer(TOKEN) as bot:
        s = webhook_settings(tmp, ami, bot)
        await migrate(s.database.url)
        hooked = Hooked(ami, bot, [])
        try:
            for _ in range(instances):
                await hooked.start(s)
            suffix = len("/telegram/webhook")
            bot.route_webhook(*(hooked.hook_url(n)[:-suffix] for n in range(instances)))
            created = await admin.add_subscriber(
                name="Webhook", ddis=[DDI], language="en", timezone="UTC"
            )
            bot.inject_message(CHAT, f"/start {created.link_code}")
            await bot.wait_until(lambda: bool(hooked.answers()), WAIT, "the link's answer")
            yield hooked
        finally:
            for n in reversed(range(len(hooked.runtimes))):
                await hooked.stop(n)


@pytest.fixture
async def one(tmp_path: Path) -> AsyncIterator[Hooked]:
    async for h in hooked(tmp_path, 1):
        yield h


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[Hooked]:
    async for h in hooked(tmp_path, 2):
        yield h


def update_from(chat: int, text: str, update_id: int) -> dict[str, Any]:
    user = {"id": chat, "is_bot": False, "first_name": "Test", "language_code": "en"}
    message = {
        "message_id": update_id,
        "from": user,
        "chat": {"id": chat, "type": "private", "first_name": "Test"},
        "date": 1_700_000_000,
        "text": text,
        "entities": [{"offset": 0, "length": len(text), "type": "bot_command"}],
    }
    return {"update_id": update_id, "message": message}


async def test_commands_and_buttons_arrive_by_webhook_not_by_polling(one: Hooked) -> None:
    assert (one.bot.webhook_url, one.bot.webhook_secret) == (URL, SECRET)
    one.bot.inject_message(CHAT, "/scenario")
    menu = await one.bot.wait_for(
        lambda c: c.method == "sendMessage" and "reply_markup" in c.params and c.ok, WAIT
    )
    rows = menu.params["reply_markup"]["inline_keyboard"]
    voicemail = next(r[0] for r in rows if r[0]["callback_data"] == "scn:voicemail")
    one.bot.inject_callback(CHAT, menu.result["message_id"], voicemail["callback_data"])
    put = await one.ami.wait_action("DBPut", lambda a: a.get("Val") == "voicemail", WAIT)
    assert put["Key"] == f"scenario/{DDI}"
    await one.bot.wait_for(lambda c: c.method == "answerCallbackQuery", WAIT)
    await one.bot.wait_for(lambda c: c.method == "editMessageText" and c.ok, WAIT)
    assert not [c for c in one.bot.requests if c.method == "getUpdates"]
    assert one.bot.webhook_posts and all(p.ok for p in one.bot.webhook_posts)
    assert one.bot.pending_updates == []


async def test_a_post_without_the_secret_is_refused_and_not_processed(
    one: Hooked, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(update_from(CHAT, "/status", 900_001)).encode()
    assert await one.post(body) == 403
    assert await one.post(body, {SECRET_HEADER: "wrong-secret"}) == 403
    assert await one.post(body, {SECRET_HEADER: SECRET + "x"}) == 403
    await one.settle()  # had any been taken, its answer came before this one
    assert one.statuses() == []
    refusals = [r for r in caplog.records if "secret token" in r.getMessage()]
    assert len(refusals) == 3 and all(r.levelno == logging.WARNING for r in refusals)
    assert SECRET not in caplog.text and "wrong-secret" not in caplog.text


async def test_malformed_and_oversized_posts_get_4xx(one: Hooked) -> None:
    right = {SECRET_HEADER: SECRET}
    assert await one.post(b'{"update_id": 5, "message": ', right) == 400
    assert await one.post(b"[1, 2]", right) == 400
    assert await one.post(b'{"message": {"text": "hi"}}', right) == 400
    assert await one.post(b'{"update_id": "7"}', right) == 400
    assert await one.post(b'{"update_id": 8, "message": "not an object"}', right) == 400
    assert await one.post(b"\xff\xfe not utf-8", right) == 400
    huge = b'{"update_id": 9, "pad": "' + b"x" * MAX_UPDATE_BYTES + b'"}'
    assert await one.post(huge, right) == 413
    assert await one.post(huge, right, chunked=True) == 413
    assert await one.post(b'{"update_id": 10}', right, chunked=True) == 200  # small: taken
    assert one.bot.inject_message(CHAT, "/status")  # and the route still works
    await one.settle()
    assert len(one.statuses()) == 1


async def test_a_redelivered_update_is_handled_once(one: Hooked) -> None:
    update = one.bot.inject_message(CHAT, "/status")
    one.bot.inject_update(update)  # Telegram posting it again (its answer was lost)
    await one.settle()  # posted after both copies: their answers, if any, came first
    posts = [p for p in one.bot.webhook_posts if p.update_id == update["update_id"]]
    assert [p.status for p in posts] == [200, 200]
    assert len(one.statuses()) == 1


async def test_two_instances_behind_one_address_answer_each_update_once(two: Hooked) -> None:
    registered = [c for c in two.bot.requests if c.method == "setWebhook"]
    assert len(registered) == 2 and all(c.ok for c in registered)
    assert {c.params["url"] for c in registered} == {URL}
    assert {c.params["secret_token"] for c in registered} == {SECRET}
    first_post = len(two.bot.webhook_posts)
    updates = [two.bot.inject_message(CHAT, "/status") for _ in range(6)]
    await two.bot.wait_until(lambda: len(two.statuses()) >= 6, WAIT, "six answers")
    await two.settle()
    assert len(two.statuses()) == 6  # each once
    ids = [u["update_id"] for u in updates]
    posts = [p for p in two.bot.webhook_posts[first_post:] if p.update_id in ids]
    assert [p.update_id for p in posts] == ids and all(p.ok for p in posts)
    targets = [p.target for p in posts]
    assert targets in (
        [two.hook_url(0), two.hook_url(1)] * 3,
        [two.hook_url(1), two.hook_url(0)] * 3,
    )


async def test_an_instance_that_stops_leaves_the_webhook_to_the_others(two: Hooked) -> None:
    await two.stop(1)
    assert not [c for c in two.bot.requests if c.method == "deleteWebhook"]
    assert two.bot.webhook_url == URL
    first_post = len(two.bot.webhook_posts)
    updates = [two.bot.inject_message(CHAT, "/status") for _ in range(4)]
    await two.bot.wait_until(lambda: len(two.statuses()) >= 4, WAIT, "four answers")
    await two.settle()
    assert len(two.statuses()) == 4
    posts = two.bot.webhook_posts[first_post:]
    taken = [p.update_id for p in posts if p.ok]
    assert taken[:4] == [u["update_id"] for u in updates]
    assert {p.target for p in posts if p.ok} == {two.hook_url(0)}
    assert [p for p in posts if not p.ok]  # the stopped one was tried, and passed over


async def test_a_stopping_instance_answers_503_so_the_update_goes_elsewhere(one: Hooked) -> None:
    await one.runtimes[0].application.stop()  # as Runtime.stop does before the web server
    body = json.dumps(update_from(CHAT, "/status", 900_002)).encode()
    assert await one.post(body, {SECRET_HEADER: SECRET}) == 503
