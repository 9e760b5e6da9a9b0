"""The web desk's routes on the gateway's aiohttp app (/desk).

Logging in: a magic link (gateway/web/links.py) asked for at /desk/login (sent by email
or to the subscriber's Telegram chats through the outbox), by /desk in the bot, or by
`frontdesk desk link`. Every page needs a session; every POST its CSRF token. What a
page may show or change is the session's subscriber's only: an id of anyone else's is
404, as is an id that does not exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.control.desk import CommandDesk
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from gateway.web import forms, links, pages, render
from gateway.web.auth import Sessions, csrf_ok
from gateway.web.context import BAD_INPUT, Ctx, PageError
from locales import LANGUAGES, N_, tr
from models.db import Subscriber, User
from models.phone import InvalidNumber, to_e164
from models.settings import WebSettings
from models.vocab import Channel, Language

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Page = Callable[[Ctx], Awaitable[web.StreamResponse]]
STATIC = Path(__file__).parent / "static"
LOGIN = "/desk/login"
TOKEN_IN_PATH = re.compile(r"/desk/auth/[^\s\"?]+")
MAX_FORM_BYTES = 64 * 1024
LINK_TEXT = N_("Your Frontdesk desk: {url} (valid {minutes} minutes, once).")
ANSWER = N_("If that address is one of ours, a link to your desk is on its way.")
TOO_MANY = N_("Too many link requests. Try again in an hour.")
FORBIDDEN = N_("This form has expired. Reload the page and try again.")
BAD_LINK = N_("This link is not valid: it was used already or has expired.")
NO_ADDRESS = N_("Enter your email address or mobile number.")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _HideLinkTokens(logging.Filter):
    """The access log names each request's path: a magic link's token is not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "/desk/auth/" in str(record.msg) or "/desk/auth/" in str(record.args):
            record.msg, record.args = TOKEN_IN_PATH.sub("/desk/auth/***", record.getMessage()), None
        return True


_HIDE_TOKENS = _HideLinkTokens()


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _lang(request: web.Request, fallback: str) -> str:
    wanted = request.query.get("lang", "")
    return wanted if wanted in LANGUAGES else fallback


class WebDesk:
    def __init__(
        self,
        settings: WebSettings,
        control: Control,
        notices: Notices,
        base_url: Callable[[], str],
        region: str = "GR",
        default_language: str = Language.EN,
        clock: Clock = _utcnow,
    ) -> None:
        self.settings = settings
        self.notices = notices
        self.desk = CommandDesk(control, notices, region)
        self.sessions = Sessions(settings.session_secret, settings.session_hours)
        self.links = links.DeskLinks(base_url, settings.link_minutes)
        self.region = region
        self.default_language = default_language
        self.clock = clock

    # -- mounting ---------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        logging.getLogger("aiohttp.access").addFilter(_HIDE_TOKENS)  # once: same object
        r = app.router
        r.add_get("/desk", self._to_desk)
        r.add_get("/desk/login", self.login_form)
        r.add_post("/desk/login", self.login)
        r.add_get("/desk/auth/{token}", self.auth)
        r.add_post("/desk/logout", self._post(self._logout))
        r.add_static("/desk/static/", STATIC, append_version=False)
        for path, page in {
            "/desk/": pages.today,
            "/desk/calls": pages.calls,
            "/desk/voicemails": pages.voicemails,
            "/desk/voicemails/{id}/audio": pages.voicemail_audio,
            "/desk/faxes": pages.faxes,
            "/desk/faxes/{name}": pages.fax_pdf,
            "/desk/messages": pages.messages,
            "/desk/diary": pages.diary_get,
            "/desk/contacts": pages.contacts,
            "/desk/contacts/{id}": pages.contact,
            "/desk/tasks": pages.tasks,
            "/desk/lines": pages.lines,
            "/desk/preferences": pages.preferences,
            "/desk/schedule": pages.schedule,
        }.items():
            r.add_get(path, self._get(page))
        for path, action in {
            "/desk/lines/scenario": forms.set_scenario,
            "/desk/lines/forward": forms.set_forward,
            "/desk/diary/book": forms.book,
            "/desk/diary/{id}/cancel": forms.cancel,
            "/desk/diary/{id}/move": forms.move,
            "/desk/preferences": forms.save_preferences,
        }.items():
            r.add_post(path, self._post(action))

    # -- the wrappers: session, language, CSRF, localised refusals -------------------------

    async def _context(self, request: web.Request) -> Ctx | None:
        now = self.clock()
        session = await self.sessions.current(request, now)
        if session is None:
            return None
        subscriber: Subscriber = session.subscriber
        lang = session.lang or subscriber.language
        wanted = request.query.get("lang", "")
        if wanted in LANGUAGES and wanted != session.lang:
            session.lang = lang = wanted
            await session.save(update_fields=["lang"])
        return Ctx(request, session, subscriber, lang, now, self.desk)

    async def _guarded(self, ctx: Ctx, page: Page) -> web.StreamResponse:
        try:
            return await page(ctx)
        except PageError as exc:
            return self._refusal(ctx.lang, exc.status, exc.msgid)

    def _refusal(self, lang: str, status: int, msgid: str, **context: Any) -> web.Response:
        return render.page(
            "message.html", lang, status, message=tr(lang, msgid), error=True, **context
        )

    def _get(self, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            ctx = await self._context(request)
            if ctx is None:
                raise web.HTTPSeeOther(LOGIN)
            return await self._guarded(ctx, page)

        return handler

    def _post(self, action: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            ctx = await self._context(request)
            lang = ctx.lang if ctx else _lang(request, self.default_language)
            if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
                return self._refusal(lang, 413, BAD_INPUT)
            try:
                form = await request.post()
            except ValueError:  # not a form we can read
                return self._refusal(lang, 400, BAD_INPUT)
            if ctx is None or not csrf_ok(ctx.session, form.get("csrf")):
                return self._refusal(lang, 403, FORBIDDEN)
            return await self._guarded(ctx, action)

        return handler

    # -- logging in and out ----------------------------------------------------------------

    async def _to_desk(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/desk/")

    async def login_form(self, request: web.Request) -> web.Response:
        lang = _lang(request, self.default_language)
        return render.page("login.html", lang)

    async def login(self, request: web.Request) -> web.Response:
        """Always the same answer, known address or not; the link goes by the outbox."""
        lang = _lang(request, self.default_language)
        try:
            form = await request.post()
        except ValueError:
            return self._refusal(lang, 400, BAD_INPUT)
        raw = form.get("address", "")
        address = raw.strip()[:254] if isinstance(raw, str) else ""
        if not address:
            return self._refusal(lang, 400, NO_ADDRESS)
        now = self.clock()
        keys = [f"address:{address.lower()}", f"ip:{request.remote or '?'}"]
        if not await links.allow_request(keys, self.settings.link_requests_per_hour, now):
            log.info("web desk: link requests over the hourly limit")
            return self._refusal(lang, 429, TOO_MANY)
        subscriber = await self._subscriber_for(address)
        if subscriber is not None:
            await self._send_link(subscriber, address, now)
        return render.page("login.html", lang, sent=True, message=tr(lang, ANSWER))

    async def _subscriber_for(self, address: str) -> Subscriber | None:
        if "@" in address:
            return await Subscriber.filter(email__iexact=address).first()
        try:
            mobile = to_e164(address, self.region)
        except InvalidNumber:
            return None
        return await Subscriber.get_or_none(mobile=mobile)

    async def _send_link(self, subscriber: Subscriber, address: str, now: datetime) -> None:
        minutes = self.settings.link_minutes
        url = await links.issue_link(subscriber.id, self.links.base_url(), minutes, now)
        text = tr(subscriber.language, LINK_TEXT, url=url, minutes=str(minutes))
        if "@" in address and subscriber.email:
            subject = tr(subscriber.language, "Frontdesk")
            await self.notices.reply(Channel.EMAIL, subscriber.email, text, subscriber, subject)
            return
        chats = await User.filter(subscriber_id=subscriber.id, telegram_chat_id__isnull=False)
        for user in chats:
            await self.notices.reply(Channel.TELEGRAM, str(user.telegram_chat_id), text, subscriber)
        if not chats and subscriber.mobile:  # no chat linked: the mobile asked gets it by SMS
            await self.notices.reply(Channel.SMS, subscriber.mobile, text, subscriber)

    async def auth(self, request: web.Request) -> web.StreamResponse:
        now = self.clock()
        subscriber_id = await links.redeem(request.match_info["token"], now)
        if subscriber_id is None:
            return self._refusal(_lang(request, self.default_language), 400, BAD_LINK, relogin=True)
        response = _see_other("/desk/")
        await self.sessions.start(request, response, subscriber_id, now)
        log.info("web desk: subscriber %s logged in", subscriber_id)
        return response

    async def _logout(self, ctx: Ctx) -> web.StreamResponse:
        response = _see_other(LOGIN)
        await self.sessions.end(ctx.session, response)
        return response
