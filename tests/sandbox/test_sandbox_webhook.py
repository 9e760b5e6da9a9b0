"""The Bot API stand-in's webhook: setWebhook, posts with the secret, retries, 409 to polls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sandbox.telegram_api import BotApiServer

TOKEN = "123456:HOOK-token"
SECRET = "s3cret_-X"
URL = "https://bot.example.org/hook/path"


class Receiver:
    """A loopback server standing for the gateway: answers the statuses it is told to."""

    def __init__(self) -> None:
        self.answers: list[int] = []  # taken in turn; 200 once used up
        self.got: list[tuple[str | None, dict[str, Any]]] = []  # (secret header, update)
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/path", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(TOKEN) as srv:
        yield srv


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    if r.runner is not None:
        await r.runner.cleanup()


async def call(server: BotApiServer, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base_url}{TOKEN}/{method}", json=params) as resp,
    ):
        return resp.status, await resp.json()


async def test_updates_are_posted_with_the_secret_until_a_2xx(
    server: BotApiServer, receiver: Receiver
) -> None:
    server.webhook_retry = (0.01, 0.02)
    receiver.answers = [500, 403]  # two failures, then 200
    server.route_webhook(receiver.base)
    status, body = await call(
        server, "setWebhook", url=URL, secret_token=SECRET, allowed_updates=["message"]
    )
    assert (status, body["result"]) == (200, True)
    sent = server.inject_message(7, "hello")
    await server.wait_until(lambda: any(p.ok for p in server.webhook_posts), what="a 2xx")
    assert [p.status for p in server.webhook_posts] == [500, 403, 200]
    assert receiver.got == [(SECRET, sent)] * 3
    _, info = await call(server, "getWebhookInfo")
    assert info["result"]["url"] == URL and info["result"]["pending_update_count"] == 0
    assert info["result"]["last_error_message"].startswith("Wrong response from the webhook: 403")
    assert info["result"]["allowed_updates"] == ["message"]


async def test_pending_updates_wait_while_the_webhook_is_unreachable(
    server: BotApiServer, receiver: Receiver
) -> None:
    server.webhook_retry = (0.01, 0.02)
    assert receiver.runner is not None
    await receiver.runner.cleanup()  # nobody listens there now
    receiver.runner = None
    server.route_webhook(receiver.base)
    await call(server, "setWebhook", url=URL, secret_token=SECRET)
    server.inject_message(7, "one")
    server.inject_message(7, "two")
    await server.wait_until(lambda: len(server.webhook_posts) >= 2, what="failed posts")
    _, info = await call(server, "getWebhookInfo")
    assert info["result"]["pending_update_count"] == 2
    assert info["result"]["last_error_message"].startswith("Connection failed")
    assert all(p.status == 0 and p.update_id == 1 for p in server.webhook_posts)  # in order


async def test_get_updates_conflicts_with_a_webhook_until_it_is_deleted(
    server: BotApiServer,
) -> None:
    await call(server, "setWebhook", url=URL, secret_token=SECRET)
    status, body = await call(server, "getUpdates", timeout=0)
    assert status == 409 and "webhook is active" in body["description"]
    server.inject_message(7, "kept")  # no route_webhook: held, never posted beyond loopback
    await call(server, "deleteWebhook")
    status, body = await call(server, "getUpdates", timeout=0)
    assert status == 200 and [u["message"]["text"] for u in body["result"]] == ["kept"]
    assert server.webhook_posts == []


@pytest.mark.parametrize("secret", ["has space", "x" * 257, "ünï"])
async def test_set_webhook_refuses_a_secret_telegram_would(
    server: BotApiServer, secret: str
) -> None:
    status, body = await call(server, "setWebhook", url=URL, secret_token=secret)
    assert status == 400 and "secret token" in body["description"]
    status, _ = await call(server, "setWebhook", url="http://bot.example.org/x")
    assert status == 400 and server.webhook_url == ""


async def test_a_slow_webhook_counts_as_a_failure(server: BotApiServer) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook/path", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        server.webhook_timeout = 0.2
        server.webhook_retry = (0.01, 0.02)
        server.route_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}")
        await call(server, "setWebhook", url=URL)
        server.inject_message(7, "slow")
        await server.wait_until(lambda: len(server.webhook_posts) >= 1, what="a timeout")
        assert server.webhook_posts[0].error == "Read timeout expired"
    finally:
        release.set()
        await runner.cleanup()
