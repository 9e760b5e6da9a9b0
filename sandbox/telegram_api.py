"""A stand-in for Telegram's Bot API server, speaking only its HTTP/JSON wire protocol.

It imports nothing from the product and nothing from python-telegram-bot: a client is
pointed at it with ``base_url`` / ``base_file_url`` and cannot tell the difference for the
methods Frontdesk uses. Tests inject what users do (messages, button presses), read what
the bot did (``requests``, ``sent``) and inject faults (``fail_next``, ``stall``).

Behaviour copied from the real server: dates in seconds, ``is_bot`` on bot users, message
ids per chat, ``parse_mode`` is applied (HTML, Markdown, MarkdownV2 become plain text plus
entities, and malformed markup is refused with "can't parse entities"), surrounding
whitespace is trimmed, inline keyboards are validated (callback_data of 1-64 bytes),
editing to identical content is refused with "message is not modified", getUpdates
long-polls and answers 409 to a poll superseded by another one. With a webhook set
(setWebhook), getUpdates answers 409 and each update is POSTed to the webhook, in order,
with ``X-Telegram-Bot-Api-Secret-Token``, and posted again until it gets a 2xx; since a
test cannot serve https, ``route_webhook`` names the loopback servers that stand for the
TLS-terminating proxy behind the public URL (taken in turn, as a balancer would); until
it is called, updates wait (the sandbox never posts beyond them).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from sandbox.flood import FloodLimits
from sandbox.lifecycle import Served

__all__ = ["BotApiServer", "Call", "StoredFile", "WebhookPost"]

JsonDict = dict[str, Any]

# Parameters that form posts carry as JSON-encoded strings.
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "media",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
        "results",
    }
)
INT_PARAMS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "timeout",
        "duration",
        "width",
        "height",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "max_connections",
        "user_id",
        "from_chat_id",
    }
)
BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
        "disable_content_type_detection",
        "supports_streaming",
    }
)
# Update kinds the real server leaves out unless asked for in allowed_updates.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
MAX_DOWNLOAD = 20 * 1024 * 1024
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass
class Call:
    """One request the bot made, as the server understood it."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    result: Any | None = None
    status: int = 200
    dropped: bool = False
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class WebhookPost:
    """One POST of an update to the webhook: status 0 when no HTTP answer came."""

    update_id: int
    target: str
    status: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    mime_type: str
    file_name: str


@dataclass
class _Fault:
    method: str
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    count: int


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JsonDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class _Signal:
    """Wakes every waiter whenever anything changes; waiters re-check their predicate."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], seconds: float | None) -> None:
        async with asyncio.timeout(seconds):
            while not predicate():
                await self._event.wait()


Handler = Callable[[Call], Awaitable[Any]]


class BotApiServer(Served):
    def __init__(
        self,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "frontdesk_test_bot",
    ) -> None:
        self.token = token
        self.host = host
        self._port = port
        prefix = token.split(":", 1)[0]
        self.bot_user: JsonDict = {
            "id": int(prefix) if prefix.isdigit() else 1000001,
            "is_bot": True,
            "first_name": bot_username.removesuffix("_bot").replace("_", " ").title(),
            "username": bot_username,
        }
        self.requests: list[Call] = []
        self.sent: list[Call] = []
        self._signal = _Signal()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._updates: list[JsonDict] = []
        self._update_ids = itertools.count(1)
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._polling = 0
        self._webhook_url = ""
        self._webhook_secret = ""
        self._webhook_error: tuple[int, str] | None = None  # last_error_date, _message
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_turn = itertools.count()
        self.webhook_routes: list[str] = []  # see route_webhook
        self.webhook_posts: list[WebhookPost] = []
        self.webhook_retry = (0.05, 1.0)  # first and longest pause between failed posts
        self.webhook_timeout = 10.0  # an answer slower than this counts as a failure
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[tuple[int, int], JsonDict] = {}
        self._users: dict[int, JsonDict] = {}
        self._open_queries: set[str] = set()
        self._files: dict[str, StoredFile] = {}
        self._file_paths: dict[str, StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._commands: dict[tuple[Any, ...], list[JsonDict]] = {}
        self._faults: list[_Fault] = []
        self._stalled: set[str] = set()
        self._held: list[Call] = []
        # Telegram's flood limits (429 with retry_after); None: unlimited, as by default.
        self.flood: FloodLimits | None = None
        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "sendVoice": self._send_voice,
            "sendDocument": self._send_document,
            "sendAudio": self._send_audio,
            "sendPhoto": self._send_photo,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "getFile": self._get_file,
        }
        # The real server matches method names case-insensitively.
        self._handlers = {name.lower(): (name, h) for name, h in handlers.items()}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._closing = False
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._webhook_task = asyncio.create_task(self._push_webhook(), name="webhook")

    async def stop(self) -> None:
        self._closing = True
        self._signal.notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/file/bot"

    # ------------------------------------------------------------------ test helpers

    def messages_to(self, chat_id: int) -> list[Call]:
        """Successful send* calls that landed in ``chat_id``."""
        return [
            c
            for c in self.sent
            if c.method.startswith("send") and (c.result or {}).get("chat", {}).get("id") == chat_id
        ]

    async def wait_for(
        self,
        predicate: Callable[[Call], bool],
        timeout: float = 5.0,
    ) -> Call:
        """The first recorded call (past or future) matching ``predicate``."""
        found: list[Call] = []
        scanned = 0

        def check() -> bool:
            nonlocal scanned
            for call in self.requests[scanned:]:
                scanned += 1
                if predicate(call):
                    found.append(call)
                    return True
            return False

        await self._wait(check, timeout, "a matching call")
        return found[0]

    async def wait_count(
        self,
        method: str,
        n: int,
        timeout: float = 5.0,
        *,
        ok_only: bool = True,
    ) -> list[Call]:
        """Wait until ``n`` calls of ``method`` are recorded (successful ones unless
        ``ok_only`` is false); returns all of them."""

        def matching() -> list[Call]:
            return [c for c in self.requests if c.method == method and (c.ok or not ok_only)]

        await self._wait(lambda: len(matching()) >= n, timeout, f"{n} x {method}")
        return matching()

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait until ``condition()`` holds; it is rechecked whenever a call is recorded."""
        await self._wait(condition, timeout, what)

    async def wait_stalled(self, n: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``n`` calls are held by :meth:`stall`; returns the held calls."""
        await self._wait(lambda: len(self._held) >= n, timeout, f"{n} stalled call(s)")
        return list(self._held)

    async def wait_polling(self, n: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``n`` getUpdates long-polls are parked waiting for updates."""
        await self._wait(lambda: self._polling >= n, timeout, "a waiting getUpdates")

    def route_webhook(self, *bases: str) -> None:
        """Post webhook updates to these base URLs (the webhook URL's path appended), one
        after the other, instead of the public https URL: the proxy in front of them."""
        self.webhook_routes = list(bases)
        self._signal.notify()

    @property
    def webhook_url(self) -> str:
        return self._webhook_url

    @property
    def webhook_secret(self) -> str:
        return self._webhook_secret

    @property
    def held(self) -> list[Call]:
        return list(self._held)

    @property
    def pending_updates(self) -> list[JsonDict]:
        return copy.deepcopy(self._updates)

    def message(self, chat_id: int, message_id: int) -> JsonDict | None:
        """The current state of a stored message (after edits), or None."""
        msg = self._messages.get((chat_id, message_id))
        return copy.deepcopy(msg) if msg is not None else None

    def commands(self, scope: JsonDict | None = None, language_code: str = "") -> list[JsonDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(scope, language_code), []))

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id].content

    async def _wait(self, predicate: Callable[[], bool], seconds: float, what: str) -> None:
        try:
            await self._signal.wait_until(predicate, seconds)
        except TimeoutError:
            seen = ", ".join(f"{c.method}:{c.status}" for c in self.requests[-20:])
            raise TimeoutError(f"no {what} within {seconds}s; last calls: [{seen}]") from None

    # ------------------------------------------------------------------ injection

    def inject_update(self, update: JsonDict) -> JsonDict:
        update = copy.deepcopy(update)
        if "update_id" in update:
            self._update_ids = itertools.count(max(next(self._update_ids), update["update_id"] + 1))
        else:
            update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._signal.notify()
        return copy.deepcopy(update)

    def inject_message(
        self,
        chat_id: int,
        text: str,
        *,
        first_name: str = "Test",
        language_code: str | None = "en",  # None: the field is left out, as Telegram may
        username: str | None = None,
    ) -> JsonDict:
        user = self._remember_user(chat_id, first_name, language_code, username)
        msg: JsonDict = {
            "message_id": self._next_message_id(chat_id),
            "from": user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if command := re.match(r"/\S+", text):
            msg["entities"] = [
                {"offset": 0, "length": _u16(command.group()), "type": "bot_command"}
            ]
        self._messages[(chat_id, msg["message_id"])] = msg
        return self.inject_update({"message": msg})

    def inject_callback(
        self, chat_id: int, message_id: int, data: str, *, language_code: str | None = "en"
    ) -> JsonDict:
        stored = self._messages.get((chat_id, message_id))
        message = copy.deepcopy(stored) if stored is not None else None
        if message is None:
            message = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": self._chat(chat_id),
                "date": int(time.time()),
            }
        user = dict(self._users.get(chat_id) or self._remember_user(chat_id, "Test", "en", None))
        _set_language(user, language_code)
        query_id = str(secrets.randbits(62))
        self._open_queries.add(query_id)
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": str(abs(hash(("chat", chat_id)))),
            "data": data,
        }
        return self.inject_update({"callback_query": query})

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        *,
        status: int,
        description: str = "",
        retry_after: int | None = None,
        chat_id: int | None = None,
        count: int = 1,
    ) -> None:
        if status == 429 and retry_after is None:
            retry_after = 1
        if not description:
            description = _default_description(status, retry_after)
        fault = _Fault(method.lower(), status, description, retry_after, chat_id, count)
        self._faults.append(fault)

    def rate_limit(self, limits: FloodLimits | None = None) -> FloodLimits:
        """Answer 429 as Telegram does past its flood limits (sandbox/flood.py); returns
        the limits in force (their `refused` counts the 429s)."""
        self.flood = limits or FloodLimits()
        return self.flood

    def stall(self, method: str) -> None:
        self._stalled.add(method.lower())

    def release(self, method: str | None = None) -> None:
        if method is None:
            self._stalled.clear()
        else:
            self._stalled.discard(method.lower())
        self._signal.notify()

    # ------------------------------------------------------------------ webhook delivery

    async def _push_webhook(self) -> None:
        """Telegram's side of a webhook: the oldest pending update is POSTed until some
        answer is a 2xx, then the next one (the real server has up to max_connections
        under way; one at a time keeps each chat's order the same way)."""
        pause = self.webhook_retry[0]
        async with aiohttp.ClientSession() as session:
            while not self._closing:
                await self._signal.wait_until(
                    lambda: self._closing or bool(self._routable() and self._deliverable()),
                    None,
                )
                if self._closing:
                    return
                update = self._deliverable()[0]
                if await self._post_update(session, update):
                    self._updates = [u for u in self._updates if u is not update]
                    pause = self.webhook_retry[0]
                    self._signal.notify()
                else:
                    await asyncio.sleep(pause)  # Telegram too waits before posting again
                    pause = min(pause * 2, self.webhook_retry[1])

    def _routable(self) -> bool:
        return bool(self._webhook_url and self.webhook_routes)

    async def _post_update(self, session: aiohttp.ClientSession, update: JsonDict) -> bool:
        base = self.webhook_routes[next(self._webhook_turn) % len(self.webhook_routes)]
        parts = urlsplit(self._webhook_url)
        url = base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"X-Telegram-Bot-Api-Secret-Token": self._webhook_secret}
        if not self._webhook_secret:
            headers = {}
        post = WebhookPost(int(update["update_id"]), url, 0)
        try:
            async with session.post(
                url,
                data=_dumps(update).encode(),
                headers={**headers, "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                post.status = response.status
                if not post.ok:
                    post.error = (
                        f"Wrong response from the webhook: {response.status} {response.reason}"
                    )
        except TimeoutError:
            post.error = "Read timeout expired"
        except aiohttp.ClientError as exc:
            post.error = f"Connection failed: {exc.__class__.__name__}"
        if post.error:
            self._webhook_error = (int(time.time()), post.error)
        self.webhook_posts.append(post)
        self._signal.notify()
        return post.ok

    # ------------------------------------------------------------------ HTTP plumbing

    async def _dispatch(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return self._finish(Call(name, {}), ApiError(401, "Unauthorized"))
        entry = self._handlers.get(name.lower())
        try:
            params, files = await _read_params(request)
        except ApiError as exc:
            return self._finish(Call(entry[0] if entry else name, {}), exc)
        call = Call(entry[0] if entry else name, params, files)
        if entry is None:
            return self._finish(call, ApiError(404, "Not Found"))
        if not await self._hold(call):
            call.dropped = True
            return self._finish(call, ApiError(502, "Bad Gateway"))
        if fault := self._take_fault(call):
            parameters = {"retry_after": fault.retry_after} if fault.retry_after else None
            return self._finish(call, ApiError(fault.status, fault.description, parameters))
        if self.flood and (
            wait := self.flood.check(call.method, call.params.get("chat_id"), call.at)
        ):
            too_many = ApiError(429, _default_description(429, wait), {"retry_after": wait})
            return self._finish(call, too_many)
        try:
            call.result = await entry[1](call)
        except ApiError as exc:
            return self._finish(call, exc)
        return self._finish(call, None)

    def _finish(self, call: Call, error: ApiError | None) -> web.Response:
        if error is None:
            body: JsonDict = {"ok": True, "result": call.result}
        else:
            call.status, call.description = error.status, error.description
            body = {"ok": False, "error_code": error.status, "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
        self._record(call)
        return web.json_response(body, status=call.status, dumps=_dumps)

    def _record(self, call: Call) -> None:
        self.requests.append(call)
        if call.ok and call.method.startswith(("send", "edit")) and call.method != "sendChatAction":
            self.sent.append(call)
        self._signal.notify()

    async def _hold(self, call: Call) -> bool:
        """Hold a stalled call until released; False if the server shut down meanwhile."""
        key = call.method.lower()
        if key not in self._stalled:
            return True
        self._held.append(call)
        self._signal.notify()
        try:
            await self._signal.wait_until(
                lambda: key not in self._stalled or self._closing, seconds=None
            )
        except asyncio.CancelledError:  # the client went away while we held its request
            call.status, call.dropped, call.description = 0, True, "client disconnected"
            self._record(call)
            raise
        finally:
            self._held.remove(call)
            self._signal.notify()
        return not self._closing

    def _take_fault(self, call: Call) -> _Fault | None:
        for fault in self._faults:
            if fault.method != call.method.lower():
                continue
            if fault.chat_id is not None and call.params.get("chat_id") != fault.chat_id:
                continue
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)
            return fault
        return None

    async def _download(self, request: web.Request) -> web.Response:
        stored = self._file_paths.get(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            body = {"ok": False, "error_code": 404, "description": "Not Found"}
            return web.json_response(body, status=404)
        return web.Response(body=stored.content, content_type=stored.mime_type)

    # ------------------------------------------------------------------ chats and messages

    def _remember_user(
        self, user_id: int, first_name: str, language_code: str | None, username: str | None
    ) -> JsonDict:
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        _set_language(user, language_code)
        self._users[user_id] = user
        return dict(user)

    def _chat(self, chat_id: int) -> JsonDict:
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}
        user = self._users.get(chat_id, {})
        chat: JsonDict = {
            "id": chat_id,
            "type": "private",
            "first_name": user.get("first_name", "Test"),
        }
        if "username" in user:
            chat["username"] = user["username"]
        return chat

    def _chat_for(self, params: JsonDict) -> JsonDict:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for user_id, user in self._users.items():
                if user.get("username", "").lower() == chat_id[1:].lower():
                    return self._chat(user_id)
        if not isinstance(chat_id, int) or chat_id == 0:
            raise _bad("chat not found")
        return self._chat(chat_id)

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _store_bot_message(
        self, chat: JsonDict, content: JsonDict, markup: JsonDict | None, params: JsonDict
    ) -> JsonDict:
        reply = self._reply_target(chat["id"], params)
        msg: JsonDict = {
            "message_id": self._next_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        if reply is not None:
            msg["reply_to_message"] = reply
        msg.update(content)
        if markup is not None:
            msg["reply_markup"] = markup
        self._messages[(chat["id"], msg["message_id"])] = msg
        return copy.deepcopy(msg)

    def _reply_target(self, chat_id: int, params: JsonDict) -> JsonDict | None:
        options = params.get("reply_parameters") or {}
        message_id = options.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        target = self._messages.get((chat_id, int(message_id)))
        if target is not None:
            return {k: copy.deepcopy(v) for k, v in target.items() if k != "reply_to_message"}
        if options.get("allow_sending_without_reply") or params.get("allow_sending_without_reply"):
            return None
        raise _bad("message to be replied not found")

    def _message_to_edit(self, params: JsonDict) -> JsonDict:
        if params.get("inline_message_id"):
            raise _bad("message to edit not found")
        chat = self._chat_for(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        msg = self._messages.get((chat["id"], message_id))
        if msg is None:
            raise _bad("message to edit not found")
        if msg["from"]["id"] != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return msg

    def _apply_edit(self, msg: JsonDict, changes: JsonDict) -> JsonDict:
        """Replace the editable fields; None removes a field. Refuses a no-op edit."""
        if all(msg.get(k) == v for k, v in changes.items()):
            raise _bad(NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                msg.pop(key, None)
            else:
                msg[key] = value
        msg["edit_date"] = int(time.time())
        return copy.deepcopy(msg)

    # ------------------------------------------------------------------ method handlers

    async def _true(self, call: Call) -> bool:
        return True

    async def _get_me(self, call: Call) -> JsonDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, call: Call) -> bool:
        p = call.params
        url = str(p.get("url") or "")
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = str(p.get("secret_token") or "")
        if secret and not WEBHOOK_SECRET.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        if "allowed_updates" in p:
            allowed = p["allowed_updates"]
            self._allowed_updates = frozenset(allowed) if allowed else None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        if url != self._webhook_url:
            self._webhook_error = None
        self._webhook_url, self._webhook_secret = url, secret if url else ""
        self._signal.notify()
        return True

    async def _delete_webhook(self, call: Call) -> bool:
        self._webhook_url, self._webhook_secret, self._webhook_error = "", "", None
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, call: Call) -> JsonDict:
        info: JsonDict = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_url and self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        if self._webhook_url and self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _get_updates(self, call: Call) -> list[JsonDict]:
        if self._webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        p = call.params
        offset, limit = int(p.get("offset") or 0), min(max(int(p.get("limit") or 100), 1), 100)
        timeout = max(float(p.get("timeout") or 0), 0.0)
        if "allowed_updates" in p:
            allowed = p["allowed_updates"]
            self._allowed_updates = frozenset(allowed) if allowed else None
        if offset < 0:
            del self._updates[:offset]
        elif offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        if timeout > 0 and not self._deliverable():
            self._polling += 1
            self._signal.notify()
            try:
                with contextlib.suppress(TimeoutError):
                    await self._signal.wait_until(
                        lambda: (
                            bool(self._deliverable())
                            or self._closing
                            or self._poll_generation != generation
                        ),
                        timeout,
                    )
            finally:
                self._polling -= 1
            if self._poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
        return copy.deepcopy(self._deliverable()[:limit])

    def _deliverable(self) -> list[JsonDict]:
        def wanted(update: JsonDict) -> bool:
            kind = next((k for k in update if k != "update_id"), "")
            if self._allowed_updates is None:
                return kind not in OPT_IN_UPDATES
            return kind in self._allowed_updates

        return [u for u in self._updates if wanted(u)]

    async def _send_message(self, call: Call) -> JsonDict:
        p = call.params
        chat = self._chat_for(p)
        text, entities = _formatted(p.get("text"), p.get("parse_mode"), p.get("entities"))
        if not text:
            raise _bad("message text is empty")
        if len(text) > 4096:
            raise _bad("message is too long")
        content: JsonDict = {"text": text}
        if entities:
            content["entities"] = entities
        return self._store_bot_message(chat, content, _inline_markup(p), p)

    async def _send_voice(self, call: Call) -> JsonDict:
        def build(f: StoredFile, p: JsonDict) -> JsonDict:
            return {**_file_ref(f), "duration": int(p.get("duration") or 0)}

        return self._send_media(call, "voice", "voice", build)

    async def _send_audio(self, call: Call) -> JsonDict:
        def build(f: StoredFile, p: JsonDict) -> JsonDict:
            extra = {k: p[k] for k in ("performer", "title") if p.get(k)}
            return {**_file_ref(f), "duration": int(p.get("duration") or 0), **extra}

        return self._send_media(call, "audio", "music", build)

    async def _send_document(self, call: Call) -> JsonDict:
        return self._send_media(call, "document", "documents", lambda f, p: _file_ref(f))

    async def _send_photo(self, call: Call) -> JsonDict:
        def build(f: StoredFile, p: JsonDict) -> list[JsonDict]:
            width, height = _image_size(f.content)
            ref = {k: v for k, v in _file_ref(f).items() if k not in ("file_name", "mime_type")}
            return [{**ref, "width": width, "height": height}]

        return self._send_media(call, "photo", "photos", build)

    def _send_media(
        self,
        call: Call,
        kind: str,
        folder: str,
        build: Callable[[StoredFile, JsonDict], Any],
    ) -> JsonDict:
        p = call.params
        chat = self._chat_for(p)
        stored = self._media_file(call, kind, folder)
        content: JsonDict = {kind: build(stored, p)}
        if p.get("caption"):
            caption, entities = _formatted(
                p["caption"], p.get("parse_mode"), p.get("caption_entities")
            )
            if len(caption) > 1024:
                raise _bad("message caption is too long")
            if caption:
                content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        return self._store_bot_message(chat, content, _inline_markup(p), p)

    def _media_file(self, call: Call, kind: str, folder: str) -> StoredFile:
        value = call.params.get(kind)
        upload = call.files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f'can\'t find attached file "{value}"')
        if upload is not None:
            filename, content_type, data = upload
            if not data:
                raise _bad("file must be non-empty")
            return self._store_file(folder, filename, content_type, data)
        if not isinstance(value, str) or not value:
            raise _bad(f"there is no {kind} in the request")
        if value in self._files:
            return self._files[value]
        if value.startswith(("http://", "https://")):  # no network here: an empty stand-in
            name = value.rsplit("/", 1)[-1] or kind
            return self._store_file(folder, name, "", b"")
        raise _bad("wrong file identifier/HTTP URL specified")

    def _store_file(self, folder: str, filename: str, content_type: str, data: bytes) -> StoredFile:
        n = next(self._file_seq)
        mime = _sniff_mime(data, filename, content_type)
        ext = {"voice": ".oga", "photos": ".jpg"}.get(folder) or (
            "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
        )
        stored = StoredFile(
            file_id=f"BQACAgIAAx{n:06d}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AgAD{n:06d}{secrets.token_urlsafe(6)}",
            file_path=f"{folder}/file_{n}{ext}",
            content=data,
            mime_type=mime,
            file_name=filename,
        )
        self._files[stored.file_id] = stored
        self._file_paths[stored.file_path] = stored
        return stored

    async def _send_chat_action(self, call: Call) -> bool:
        self._chat_for(call.params)
        if not call.params.get("action"):
            raise _bad("action is empty")
        return True

    async def _get_file(self, call: Call) -> JsonDict:
        stored = self._files.get(str(call.params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.content) > MAX_DOWNLOAD:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    async def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for item in commands:
            if not isinstance(item, dict) or not re.fullmatch(
                r"[a-z0-9_]{1,32}", str(item.get("command", ""))
            ):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(item.get("description", "")).strip()) <= 256:
                raise _bad("command description is empty")
        key = self._commands_key(call.params.get("scope"), call.params.get("language_code"))
        cleaned = [{"command": c["command"], "description": c["description"]} for c in commands]
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    async def _get_my_commands(self, call: Call) -> list[JsonDict]:
        return self.commands(call.params.get("scope"), call.params.get("language_code") or "")

    async def _delete_my_commands(self, call: Call) -> bool:
        key = self._commands_key(call.params.get("scope"), call.params.get("language_code"))
        self._commands.pop(key, None)
        return True

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[Any, ...]:
        scope = scope if isinstance(scope, dict) else {}
        lang = str(language_code or "")
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise _bad("invalid language code specified")
        return (scope.get("type", "default"), scope.get("chat_id"), scope.get("user_id"), lang)

    async def _answer_callback_query(self, call: Call) -> bool:
        query_id = str(call.params.get("callback_query_id") or "")
        if query_id not in self._open_queries:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._open_queries.discard(query_id)
        return True

    async def _edit_message_text(self, call: Call) -> JsonDict:
        p = call.params
        msg = self._message_to_edit(p)
        text, entities = _formatted(p.get("text"), p.get("parse_mode"), p.get("entities"))
        if not text:
            raise _bad("message text is empty")
        if "text" not in msg:
            raise _bad("there is no text in the message to edit")
        changes = {"text": text, "entities": entities or None, "reply_markup": _inline_markup(p)}
        return self._apply_edit(msg, changes)

    async def _edit_message_caption(self, call: Call) -> JsonDict:
        p = call.params
        msg = self._message_to_edit(p)
        if "text" in msg:
            raise _bad("there is no caption in the message to edit")
        caption, entities = _formatted(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities")
        )
        changes = {
            "caption": caption or None,
            "caption_entities": entities or None,
            "reply_markup": _inline_markup(p),
        }
        return self._apply_edit(msg, changes)

    async def _edit_message_reply_markup(self, call: Call) -> JsonDict:
        msg = self._message_to_edit(call.params)
        return self._apply_edit(msg, {"reply_markup": _inline_markup(call.params)})

    async def _delete_message(self, call: Call) -> bool:
        chat = self._chat_for(call.params)
        message_id = call.params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        if self._messages.pop((chat["id"], message_id), None) is None:
            raise _bad("message to delete not found")
        return True


# ---------------------------------------------------------------------- wire helpers


def _set_language(user: JsonDict, language_code: str | None) -> None:
    # Telegram leaves language_code out when the client does not tell it.
    if language_code is None:
        user.pop("language_code", None)
    else:
        user["language_code"] = language_code


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _default_description(status: int, retry_after: int | None) -> str:
    return {
        400: "Bad Request: chat not found",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: "Conflict: terminated by other getUpdates request",
        429: f"Too Many Requests: retry after {retry_after}",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }.get(status, f"Error {status}")


async def _read_params(
    request: web.Request,
) -> tuple[dict[str, Any], dict[str, tuple[str, str, bytes]]]:
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, tuple[str, str, bytes]] = {}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON encoded request") from None
            if isinstance(body, dict):
                raw.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = (value.filename, value.content_type, value.file.read())
                elif isinstance(value, bytes | bytearray):
                    raw[key] = bytes(value).decode()
                else:
                    raw[key] = value
    return {key: _decode_param(key, value) for key, value in raw.items()}, files


def _decode_param(key: str, value: Any) -> Any:
    """Give a parameter the type the Bot API would read it as."""
    if not isinstance(value, str):
        return value
    if key in JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            what = "reply keyboard markup" if key == "reply_markup" else key
            raise _bad(f"can't parse {what} JSON object") from None
    if key in INT_PARAMS or key == "chat_id":
        return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value
    if key in BOOL_PARAMS:
        return value.strip().lower() in ("true", "1")
    return value


def _inline_markup(params: JsonDict) -> JsonDict | None:
    """The reply_markup a sent message carries: only inline keyboards are echoed back."""
    markup = params.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise _bad('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array')
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not button.get("text"):
            raise _bad("can't parse inline keyboard button: Can't find field \"text\"")
        if len(button) < 2:
            raise _bad(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= 64:
            raise _bad("BUTTON_DATA_INVALID")
    if not any(rows):
        return None
    return {"inline_keyboard": [row for row in rows if row]}


def _file_ref(f: StoredFile) -> JsonDict:
    return {
        "file_id": f.file_id,
        "file_unique_id": f.file_unique_id,
        "file_name": f.file_name,
        "mime_type": f.mime_type,
        "file_size": len(f.content),
    }


def _sniff_mime(data: bytes, filename: str, declared: str) -> str:
    signatures = [
        (b"OggS", "audio/ogg"),
        (b"ID3", "audio/mpeg"),
        (b"\xff\xfb", "audio/mpeg"),
        (b"\xff\xf3", "audio/mpeg"),
        (b"%PDF", "application/pdf"),
        (b"\x89PNG", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
    ]
    for magic, mime in signatures:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/x-wav"
    if data[4:8] == b"ftyp":
        return "audio/mp4"
    guessed = mimetypes.guess_type(filename, strict=False)[0]
    if declared and declared != "application/octet-stream":
        return declared
    return guessed or "application/octet-stream"


def _image_size(data: bytes) -> tuple[int, int]:
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 0, 0


# ---------------------------------------------------------------------- formatted text


def _u16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _parse_error(description: str) -> ApiError:
    return _bad(f"can't parse entities: {description}")


class _TextBuilder:
    """Plain text plus entities with UTF-16 offsets, as the Bot API counts them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[JsonDict] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.pos += _u16(s)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append({"offset": start, "length": self.pos - start, "type": kind})
            self.entities[-1].update(extra)

    def byte_offset(self, index: int) -> int:
        return len(self.source[:index].encode())

    def result(self) -> tuple[str, list[JsonDict]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def _formatted(text: Any, parse_mode: Any, entities: Any) -> tuple[str, list[JsonDict]]:
    """Apply parse_mode (unless explicit entities are given) and trim like the Bot API."""
    if not isinstance(text, str):
        return "", []
    if isinstance(entities, list):
        parsed: tuple[str, list[JsonDict]] = (text, entities)
    else:
        mode = str(parse_mode or "").lower()
        parser = {
            "html": _parse_html,
            "markdownv2": _parse_markdown_v2,
            "markdown": _parse_markdown,
        }
        parsed = parser[mode](text) if mode in parser else (text, [])
        if parse_mode and mode not in parser:
            raise _bad(f'unsupported parse_mode "{parse_mode}"')
    plain, found = parsed
    stripped = plain.strip()
    shift, total = _u16(plain[: len(plain) - len(plain.lstrip())]), _u16(stripped)
    trimmed = []
    for e in found:
        start, end = max(e["offset"] - shift, 0), min(e["offset"] + e["length"] - shift, total)
        if end > start:
            trimmed.append({**e, "offset": start, "length": end - start})
    return stripped, trimmed


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot);")
_HTML_ATTR = re.compile(r"""\s*([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?""")


def _html_unescape(s: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#"):
            code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
            return chr(code) if 0 < code <= 0x10FFFF else m.group()
        return {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[name]

    return _HTML_ENTITY.sub(one, s)


def _parse_html(text: str) -> tuple[str, list[JsonDict]]:
    out = _TextBuilder(text)
    stack: list[tuple[str, int, dict[str, str], int]] = []  # tag, start, attrs, byte offset
    i = 0
    while i < len(text):
        if text[i] == "&" and (m := _HTML_ENTITY.match(text, i)):
            out.add(_html_unescape(m.group()))
            i = m.end()
            continue
        if text[i] != "<":
            out.add(text[i])
            i += 1
            continue
        begin = i
        if text.startswith("</", i):
            if not stack:
                raise _parse_error(f"Unexpected end tag at byte offset {out.byte_offset(begin)}")
            close = text.find(">", i)
            name = text[i + 2 : close].strip().lower() if close >= 0 else ""
            if close < 0 or " " in name:
                raise _parse_error(f"Unclosed end tag at byte offset {out.byte_offset(begin)}")
            tag, start, attrs, _ = stack.pop()
            if name and name != tag:
                raise _parse_error(
                    f"Unmatched end tag at byte offset {out.byte_offset(begin)}, "
                    f'expected "</{tag}>", found "</{name}>"'
                )
            _close_html(out, tag, start, attrs, stack)
            i = close + 1
            continue
        name_end = i + 1
        while name_end < len(text) and not text[name_end].isspace() and text[name_end] != ">":
            name_end += 1
        if name_end >= len(text):
            raise _parse_error(f"Unclosed start tag at byte offset {out.byte_offset(begin)}")
        name = text[i + 1 : name_end].lower()
        if name not in _HTML_TAGS:
            raise _parse_error(
                f'Unsupported start tag "{name}" at byte offset {out.byte_offset(begin)}'
            )
        close = text.find(">", name_end)
        if close < 0:
            raise _parse_error(f"Unclosed start tag at byte offset {out.byte_offset(begin)}")
        attrs = {
            m.group(1).lower(): _html_unescape(m.group(2) or m.group(3) or m.group(4) or "")
            for m in _HTML_ATTR.finditer(text[name_end:close])
        }
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _parse_error('Tag "span" must have class "tg-spoiler"')
        stack.append((name, out.pos, attrs, out.byte_offset(begin)))
        i = close + 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _close_html(
    out: _TextBuilder,
    tag: str,
    start: int,
    attrs: dict[str, str],
    stack: list[tuple[str, int, dict[str, str], int]],
) -> None:
    kind = _HTML_TAGS[tag]
    if tag == "code" and stack and stack[-1][0] == "pre":
        language = attrs.get("class", "").removeprefix("language-")
        if language:
            stack[-1][2]["language"] = language
            return
    if kind == "text_link":
        if href := attrs.get("href"):
            out.entity(kind, start, url=href)
    elif kind == "pre":
        extra = {"language": attrs["language"]} if attrs.get("language") else {}
        out.entity(kind, start, **extra)
    elif kind == "blockquote":
        out.entity("expandable_blockquote" if "expandable" in attrs else kind, start)
    elif kind == "custom_emoji":
        out.entity(kind, start, custom_emoji_id=attrs.get("emoji-id", ""))
    else:
        out.entity(kind, start)


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_URL = re.compile(r"((?:\\.|[^)\\])*)\)")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _parse_markdown_v2(text: str) -> tuple[str, list[JsonDict]]:
    out = _TextBuilder(text)
    stack: list[tuple[str, int, int]] = []  # kind, start, byte offset
    toggles = {"*": "bold", "~": "strikethrough", "__": "underline", "_": "italic", "||": "spoiler"}
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
            out.add(text[i + 1])
            i += 2
            continue
        in_code = bool(stack) and stack[-1][0] in ("code", "pre")
        if in_code:
            fence = "```" if stack[-1][0] == "pre" else "`"
            if text.startswith(fence, i):
                kind, start, _ = stack.pop()
                out.entity(kind, start)
                i += len(fence)
            else:
                out.add(c)
                i += 1
            continue
        if c not in _MDV2_RESERVED:
            out.add(c)
            i += 1
            continue
        marker = next((m for m in ("__", "||", "*", "~", "_") if text.startswith(m, i)), None)
        if marker is not None:
            kind = toggles[marker]
            if stack and stack[-1][0] == kind:
                out.entity(kind, stack.pop()[1])
            else:
                stack.append((kind, out.pos, out.byte_offset(i)))
            i += len(marker)
        elif text.startswith("```", i):
            line_end = text.find("\n", i + 3)
            language = text[i + 3 : line_end].strip() if line_end >= 0 else ""
            stack.append(("pre", out.pos, out.byte_offset(i)))
            i = line_end + 1 if line_end >= 0 and " " not in language else i + 3
        elif c == "`":
            stack.append(("code", out.pos, out.byte_offset(i)))
            i += 1
        elif c == "[":
            stack.append(("text_link", out.pos, out.byte_offset(i)))
            i += 1
        elif c == "]" and stack and stack[-1][0] == "text_link" and text.startswith("(", i + 1):
            url = _MDV2_URL.match(text, i + 2)
            if url is None:
                raise _parse_error(f"Can't find end of a URL at byte offset {out.byte_offset(i)}")
            href = re.sub(r"\\(.)", r"\1", url.group(1))
            out.entity("text_link", stack.pop()[1], url=href)
            i = url.end()
        elif c == ">" and (i == 0 or text[i - 1] == "\n"):
            line_end = text.find("\n", i)
            start = out.pos
            inner, found = _parse_markdown_v2(text[i + 1 : line_end if line_end >= 0 else None])
            out.add(inner)
            out.entities.extend({**e, "offset": e["offset"] + start} for e in found)
            out.entity("blockquote", start)
            i = line_end if line_end >= 0 else len(text)
        else:
            raise _parse_error(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
            )
    if stack:
        kind, _, offset = stack[-1]
        raise _parse_error(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {offset}")
    return out.result()


def _parse_markdown(text: str) -> tuple[str, list[JsonDict]]:
    """Legacy Markdown: *bold* _italic_ `code` ```pre``` [text](url), no nesting."""
    out = _TextBuilder(text)
    i = 0
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.add(c)
            i += 1
            continue
        begin, start = i, out.pos
        if c == "[":
            close = text.find("]", i + 1)
            if close < 0:
                raise _parse_error(
                    f"Can't find end of the entity starting at byte offset {out.byte_offset(begin)}"
                )
            out.add(text[i + 1 : close])
            i = close + 1
            if text.startswith("(", i) and (url_end := text.find(")", i)) >= 0:
                out.entity("text_link", start, url=text[i + 1 : url_end])
                i = url_end + 1
            continue
        fence = "```" if text.startswith("```", i) else c
        end = text.find(fence, i + len(fence))
        if end < 0:
            raise _parse_error(
                f"Can't find end of the entity starting at byte offset {out.byte_offset(begin)}"
            )
        out.add(text[i + len(fence) : end])
        out.entity("pre" if fence == "```" else kinds[c], start)
        i = end + len(fence)
    return out.result()
