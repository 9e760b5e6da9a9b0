"""The Bot API stand-in, spoken to over HTTP like a client would (and once by the real PTB)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sandbox.telegram_api import BotApiServer

TOKEN = "123456:TEST-token_abc"
CHAT = 42


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(TOKEN) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    server: BotApiServer,
    method: str,
    token: str = TOKEN,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{server.base_url}{token}/{method}", **kwargs) as resp:
        return resp.status, await resp.json()


async def test_get_me_answers_like_the_bot_api(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.base_url}{TOKEN}/getMe") as resp:
        status, body = resp.status, await resp.json()
    assert status == 200 and body["ok"] is True
    me = body["result"]
    assert me["is_bot"] is True and me["id"] == 123456
    assert me["username"] == "frontdesk_test_bot"
    assert {"first_name", "can_join_groups", "supports_inline_queries"} <= me.keys()


async def test_wrong_token_is_401_and_unknown_method_404(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, server, "getMe", token="123456:wrong")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await call(http, server, "sendTelepathy")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})


async def test_send_message_form_encoded_markup_is_decoded_and_recorded(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    markup = {"inline_keyboard": [[{"text": "Call back", "callback_data": "cb:1"}]]}
    form = {"chat_id": str(CHAT), "text": "New voicemail", "reply_markup": json.dumps(markup)}
    before = int(time.time())
    status, body = await call(http, server, "sendMessage", data=form)
    assert status == 200, body
    msg = body["result"]
    assert msg["message_id"] == 1 and msg["text"] == "New voicemail"
    assert msg["from"]["is_bot"] is True
    assert msg["chat"] == {"id": CHAT, "type": "private", "first_name": "Test"}
    assert before <= msg["date"] <= time.time() + 1  # seconds, not milliseconds
    assert msg["reply_markup"] == markup

    recorded = server.sent[-1]
    assert recorded.method == "sendMessage" and recorded.status == 200
    assert recorded.params["chat_id"] == CHAT  # typed, not the string "42"
    assert recorded.params["reply_markup"] == markup
    assert server.messages_to(CHAT) == [recorded]

    # JSON bodies work too, and message ids increase per chat.
    status, body = await call(http, server, "sendMessage", json={"chat_id": CHAT, "text": "2nd"})
    assert body["result"]["message_id"] == 2
    _, body = await call(http, server, "sendMessage", json={"chat_id": 7, "text": "other chat"})
    assert body["result"]["message_id"] == 1


async def test_parse_mode_is_applied_and_bad_markup_refused(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    form = {"chat_id": CHAT, "text": "<b>Μαρία</b> &lt;3", "parse_mode": "HTML"}
    _, body = await call(http, server, "sendMessage", data=form)
    assert body["result"]["text"] == "Μαρία <3"
    assert body["result"]["entities"] == [{"offset": 0, "length": 5, "type": "bold"}]

    form = {"chat_id": CHAT, "text": "Dr. Smith", "parse_mode": "MarkdownV2"}
    status, body = await call(http, server, "sendMessage", data=form)
    assert status == 400
    assert body["description"].startswith("Bad Request: can't parse entities: Character '.'")
    assert not server.sent[1:]


async def test_get_updates_long_polls_and_honours_offset(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(call(http, server, "getUpdates", json={"timeout": 30}))
    await server.wait_polling()
    injected = server.inject_message(CHAT, "/start hello", first_name="Μαρία")
    status, body = await poll
    assert time.monotonic() - started < 10
    assert status == 200
    [update] = body["result"]
    assert update == injected
    message = update["message"]
    assert message["text"] == "/start hello" and message["from"]["is_bot"] is False
    assert message["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]

    # Not confirmed yet: returned again. Confirmed by offset: gone for good.
    _, body = await call(http, server, "getUpdates", data={"timeout": "0"})
    assert [u["update_id"] for u in body["result"]] == [update["update_id"]]
    _, body = await call(
        http, server, "getUpdates", data={"offset": str(update["update_id"] + 1), "timeout": "0"}
    )
    assert body["result"] == []
    _, body = await call(http, server, "getUpdates", data={"timeout": "0"})
    assert body["result"] == []
    second = server.inject_message(CHAT, "again")
    assert second["update_id"] == update["update_id"] + 1


async def test_language_code_is_sent_only_when_given(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    server.inject_message(CHAT, "hello", language_code="el")
    server.inject_message(CHAT + 1, "hello", language_code=None)
    server.inject_callback(CHAT + 1, 1, "x", language_code=None)
    _, body = await call(http, server, "getUpdates", data={"timeout": "0"})
    greek, unknown, tapped = body["result"]
    assert greek["message"]["from"]["language_code"] == "el"
    assert "language_code" not in unknown["message"]["from"]
    assert "language_code" not in tapped["callback_query"]["from"]


async def test_callback_carries_the_bot_message_and_answer_is_recorded(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    markup = {"inline_keyboard": [[{"text": "Done", "callback_data": "done:7"}]]}
    _, body = await call(
        http, server, "sendMessage", json={"chat_id": CHAT, "text": "Call", "reply_markup": markup}
    )
    update = server.inject_callback(CHAT, body["result"]["message_id"], "done:7")
    query = update["callback_query"]
    assert query["message"]["text"] == "Call" and query["message"]["reply_markup"] == markup
    assert query["data"] == "done:7" and query["from"]["id"] == CHAT
    assert server.inject_callback(CHAT, 999, "x")["callback_query"]["message"]["message_id"] == 999

    form = {"callback_query_id": query["id"], "text": "Marked done"}
    status, body = await call(http, server, "answerCallbackQuery", data=form)
    assert (status, body) == (200, {"ok": True, "result": True})
    answered = await server.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert answered.params["callback_query_id"] == query["id"]


async def test_multipart_voice_upload_can_be_downloaded_again(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    audio = b"OggS\x00\x02" + bytes(range(256)) * 4
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("caption", "Voicemail from Μαρία")
    form.add_field("duration", "12")
    form.add_field("voice", audio, filename="msg0001.ogg", content_type="audio/ogg")
    status, body = await call(http, server, "sendVoice", data=form)
    assert status == 200, body
    voice = body["result"]["voice"]
    assert voice["duration"] == 12 and voice["mime_type"] == "audio/ogg"
    assert voice["file_size"] == len(audio)
    assert body["result"]["caption"] == "Voicemail from Μαρία"
    assert server.sent[-1].files["voice"] == ("msg0001.ogg", "audio/ogg", audio)

    _, body = await call(http, server, "getFile", data={"file_id": voice["file_id"]})
    file_path = body["result"]["file_path"]
    async with http.get(f"{server.base_file_url}{TOKEN}/{file_path}") as resp:
        assert resp.status == 200
        assert await resp.read() == audio

    # Re-sending by file_id reuses the stored file.
    form2 = {"chat_id": CHAT, "voice": voice["file_id"]}
    _, body = await call(http, server, "sendVoice", data=form2)
    assert body["result"]["voice"]["file_id"] == voice["file_id"]


async def test_fail_next_gives_real_error_shapes(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    server.fail_next("sendMessage", status=403, chat_id=CHAT)
    server.fail_next("sendMessage", status=429, retry_after=3)
    form = {"chat_id": CHAT, "text": "hi"}

    status, body = await call(http, server, "sendMessage", data=form)
    assert (status, body) == (
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    status, body = await call(http, server, "sendMessage", data=form)
    assert (status, body) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        },
    )
    status, _ = await call(http, server, "sendMessage", data=form)
    assert status == 200
    assert [c.status for c in server.requests] == [403, 429, 200]
    assert len(server.sent) == 1
    assert len(await server.wait_count("sendMessage", 3, ok_only=False)) == 3


async def test_stalled_send_dropped_by_client_is_not_delivered(server: BotApiServer) -> None:
    server.stall("sendMessage")
    client = aiohttp.ClientSession()
    request = asyncio.create_task(
        call(client, server, "sendMessage", data={"chat_id": CHAT, "text": "lost"})
    )
    [held] = await server.wait_stalled(1)
    assert held.params["text"] == "lost" and not server.requests
    request.cancel()  # the client dies mid-send
    await client.close()
    dropped = await server.wait_for(lambda c: c.dropped)
    assert dropped.status == 0 and dropped.params["text"] == "lost"
    assert server.sent == [] and server.messages_to(CHAT) == []


async def test_stalled_send_completes_on_release(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    server.stall("sendMessage")
    request = asyncio.create_task(
        call(http, server, "sendMessage", data={"chat_id": CHAT, "text": "late"})
    )
    await server.wait_stalled(1)
    assert server.sent == []
    server.release()
    status, body = await request
    assert status == 200 and body["result"]["text"] == "late"
    assert [c.params["text"] for c in server.sent] == ["late"]


async def test_edit_message_text(server: BotApiServer, http: aiohttp.ClientSession) -> None:
    status, body = await call(
        http, server, "editMessageText", data={"chat_id": CHAT, "message_id": 5, "text": "x"}
    )
    assert (status, body) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"},
    )
    markup = {"inline_keyboard": [[{"text": "Done", "callback_data": "done"}]]}
    _, body = await call(
        http, server, "sendMessage", json={"chat_id": CHAT, "text": "a", "reply_markup": markup}
    )
    edit = {"chat_id": CHAT, "message_id": body["result"]["message_id"], "text": "a"}
    status, body = await call(
        http, server, "editMessageText", json={**edit, "reply_markup": markup}
    )
    assert status == 400
    assert body["description"].startswith("Bad Request: message is not modified: ")
    status, body = await call(http, server, "editMessageText", json={**edit, "text": "b"})
    assert status == 200
    assert body["result"]["text"] == "b" and isinstance(body["result"]["edit_date"], int)
    assert "reply_markup" not in body["result"]  # editing without markup removes it


async def test_set_my_commands_per_language_roundtrip(
    server: BotApiServer, http: aiohttp.ClientSession
) -> None:
    en = [{"command": "start", "description": "Start"}]
    el = [{"command": "start", "description": "Έναρξη"}]
    scope = json.dumps({"type": "all_private_chats"})
    for lang, cmds in (("", en), ("el", el)):
        form = {"commands": json.dumps(cmds), "scope": scope, "language_code": lang}
        status, _ = await call(http, server, "setMyCommands", data=form)
        assert status == 200
    for lang, cmds in (("", en), ("el", el), ("ru", [])):
        _, body = await call(
            http, server, "getMyCommands", data={"scope": scope, "language_code": lang}
        )
        assert body["result"] == cmds
    _, body = await call(http, server, "getMyCommands", data={})
    assert body["result"] == []  # default scope was never set
    bad = {"commands": json.dumps([{"command": "Start", "description": "x"}])}
    status, body = await call(http, server, "setMyCommands", data=bad)
    assert (status, body["description"]) == (400, "Bad Request: BOT_COMMAND_INVALID")


async def test_python_telegram_bot_interoperates(server: BotApiServer) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.ext import Application

    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .updater(None)
        .build()
    )
    await app.initialize()
    try:
        assert app.bot.username == "frontdesk_test_bot"
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="cb:1")]])
        msg = await app.bot.send_message(chat_id=CHAT, text="Γειά σου", reply_markup=markup)
        assert msg.text == "Γειά σου" and msg.from_user is not None and msg.from_user.is_bot
        assert msg.reply_markup == markup
        recorded = server.messages_to(CHAT)[-1]
        assert recorded.params == {
            "chat_id": CHAT,
            "text": "Γειά σου",
            "reply_markup": {"inline_keyboard": [[{"text": "x", "callback_data": "cb:1"}]]},
        }

        audio = b"OggS" + b"\x00" * 200
        voice_msg = await app.bot.send_voice(CHAT, voice=audio)
        assert voice_msg.voice is not None and voice_msg.voice.mime_type == "audio/ogg"
        recorded = server.messages_to(CHAT)[-1]
        assert recorded.method == "sendVoice" and recorded.files["voice"][2] == audio
        tg_file = await app.bot.get_file(voice_msg.voice.file_id)
        assert bytes(await tg_file.download_as_bytearray()) == audio
    finally:
        await app.shutdown()
