"""The subscriber's web desk over HTTP on the running gateway (no browser): magic links,
sessions, CSRF, the link-request limit, isolation between subscribers on every route,
malformed input, and the scenario changed through the bot's control path (sandbox AMI)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from yarl import URL

from bot.runtime import Runtime
from gateway.control import admin
from gateway.web.app import WebDesk
from gateway.web.auth import COOKIE
from gateway.web.links import issue_link
from models.db import (
    Appointment,
    Call,
    Contact,
    Delivery,
    Notification,
    RoutingPreference,
    Subscriber,
    Voicemail,
)
from models.events import CallOutcome, CallStatus
from models.settings import with_section
from models.staff import TakenMessage, Task
from models.vocab import Scenario
from models.web import WebSession
from sandbox.ami_server import AmiServer, header
from sandbox.telegram_api import BotApiServer
from tests.conftest import copy_migrated
from tests.pg_cluster import on_postgres
from tests.stack import environment, run_main, running, sandbox_settings

TOKEN = "123456:TEST-token"
SECRET = "test-secret"
CHAT = 5151
DDI_A, DDI_B = "2100011", "2100022"
EMAIL_A = "dr.a@example.com"
MARK = "BEE-SECRET"  # in every row of B's: never on A's pages
WAIT = 10.0
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Desk:
    ami: AmiServer
    bot: BotApiServer
    runtime: Runtime
    a: int  # subscriber ids
    b: int
    b_ids: dict[str, int]
    clock: list[datetime]
    tmp: Path

    @property
    def web(self) -> WebDesk:
        assert self.runtime.gateway.desk_web is not None
        return self.runtime.gateway.desk_web

    @property
    def base(self) -> str:
        return self.runtime.gateway.web_base_url()


def client() -> aiohttp.ClientSession:
    # The gateway is 127.0.0.1: cookies for an IP host need the unsafe jar.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _seed_b(tmp: Path, b: int) -> dict[str, int]:
    """One of everything for B, each carrying MARK."""
    now = datetime.now(UTC)
    audio = tmp / "b.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 40)
    pdf = tmp / "b.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% B\n")
    call = await Call.create(
        linkedid="b-1",
        ddi=DDI_B,
        subscriber_id=b,
        caller_number="+306900000222",
        caller_name=MARK,
        status=CallStatus.LOST,
        outcome=CallOutcome.ABANDONED,
        started_at=now,
    )
    voicemail = await Voicemail.create(
        key="vm-b",
        mailbox="b@x",
        subscriber_id=b,
        left_at=now,
        audio_path=str(audio),
        transcript=MARK,
        caller_name=MARK,
    )
    fax = await Notification.create(
        dedupe_key="fax:b",
        subscriber_id=b,
        kind="fax",
        payload={
            "caller_name": MARK,
            "pages": 1,
            "attachments": [{"path": str(pdf), "content_type": "application/pdf"}],
        },
    )
    start = (now + timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
    appointment = await Appointment.create(
        subscriber_id=b, starts_at=start, ends_at=start + timedelta(minutes=30), name=MARK, uid="b"
    )
    contact = await Contact.create(subscriber_id=b, name=MARK, number="+306900000222")
    task = await Task.create(subscriber_id=b, text=MARK, caller_name=MARK, due_at=now)
    taken = await TakenMessage.create(kind="message", subscriber_id=b, text=MARK)
    await RoutingPreference.create(subscriber_id=b, kind="fax", channels=["email"])
    return {
        "call": call.id,
        "voicemail": voicemail.id,
        "fax": fax.id,
        "appointment": appointment.id,
        "contact": contact.id,
        "task": task.id,
        "taken": taken.id,
    }


@pytest.fixture
async def desk(tmp_path: Path, migrated_db: Path) -> AsyncIterator[Desk]:
    database = tmp_path / "web.sqlite3"
    if not on_postgres():
        copy_migrated(migrated_db, database)  # a copy: the migrations' seconds saved
    async with AmiServer(secret=SECRET) as ami, BotApiServer(TOKEN) as bot:
        s = sandbox_settings(database, ami, bot, TOKEN, SECRET)
        s = with_section(s, "ami", reconnect_min=0.05)
        s = with_section(s, "web", session_secret="web-secret-for-tests")
        async with running(s) as runtime:
            await ami.wait_logged_in(timeout=WAIT)
            await runtime.gateway.wait_synced(0, WAIT)
            a = await admin.add_subscriber(
                name="Dr A",
                ddis=[DDI_A],
                language="el",
                timezone="Europe/Athens",
                mobile="+306944000011",
            )
            await admin.set_contact_points(a.subscriber.id, email=EMAIL_A)
            b = await admin.add_subscriber(
                name="Dr B",
                ddis=[DDI_B],
                language="en",
                timezone="Europe/Athens",
                mobile="+306944000022",
            )
            bot.inject_message(CHAT, f"/start {a.link_code}", language_code="el")
            await bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)
            clock = [datetime.now(UTC)]
            assert runtime.gateway.desk_web is not None
            runtime.gateway.desk_web.clock = lambda: clock[0]
            b_ids = await _seed_b(tmp_path, b.subscriber.id)
            yield Desk(ami, bot, runtime, a.subscriber.id, b.subscriber.id, b_ids, clock, tmp_path)


async def login(d: Desk, http: aiohttp.ClientSession, subscriber: int | None = None) -> str:
    """Log in by a fresh magic link; the CSRF token of the session."""
    url = await issue_link(subscriber or d.a, d.base)
    async with http.get(url, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == "/desk/"
    async with http.get(f"{d.base}/desk/lines") as r:
        assert r.status == 200
        found = CSRF.search(await r.text())
    assert found
    return found.group(1)


def cookie(http: aiohttp.ClientSession) -> str:
    [value] = [c.value for c in http.cookie_jar if c.key == COOKIE]
    return value


def plant(http: aiohttp.ClientSession, d: Desk, value: str) -> None:
    """A session cookie as the server would set it (e.g. one an attacker planted)."""
    morsel: SimpleCookie = SimpleCookie()
    morsel[COOKIE] = value
    morsel[COOKIE]["path"] = "/desk"
    http.cookie_jar.update_cookies(morsel, URL(d.base))


# -- magic links and sessions ------------------------------------------------------------------


async def test_a_magic_link_opens_once_with_a_safe_cookie(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    url = await issue_link(desk.a, desk.base)
    async with client() as http:
        async with http.get(url, allow_redirects=False) as r:
            assert r.status == 303
            set_cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        assert "Path=/desk" in set_cookie
        async with http.get(f"{desk.base}/desk/") as r:
            page = await r.text()
        assert r.status == 200 and 'data-testid="today"' in page and '<html lang="el">' in page
    async with client() as http, http.get(url, allow_redirects=False) as r:
        assert r.status == 400  # used already: localised (A's link, but no session: default)
        assert "/desk/login" in await r.text()
    # The access log shows that a link was followed, never its token.
    assert "/desk/auth/***" in caplog.text and url.rsplit("/", 1)[1] not in caplog.text


async def test_an_expired_link_is_refused(desk: Desk) -> None:
    url = await issue_link(desk.a, desk.base, minutes=15, now=desk.clock[0])
    desk.clock[0] += timedelta(minutes=16)
    async with client() as http, http.get(f"{url}?lang=ru", allow_redirects=False) as r:
        assert r.status == 400
        assert "Ссылка недействительна" in await r.text()
        assert COOKIE not in r.cookies


async def test_a_session_expires(desk: Desk) -> None:
    async with client() as http:
        await login(desk, http)
        desk.clock[0] += timedelta(hours=desk.web.settings.session_hours, seconds=1)
        async with http.get(f"{desk.base}/desk/calls", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/desk/login"


async def test_login_replaces_a_planted_session(desk: Desk) -> None:
    async with client() as attacker:
        await login(desk, attacker)
        planted = cookie(attacker)
    async with client() as victim:
        plant(victim, desk, planted)
        await login(desk, victim)
        fresh = cookie(victim)
        assert fresh != planted
    # The planted (old) session id no longer opens anything.
    async with client() as attacker:
        plant(attacker, desk, planted)
        async with attacker.get(f"{desk.base}/desk/", allow_redirects=False) as r:
            assert r.status == 303
    assert await WebSession.all().count() == 1


async def test_a_forged_cookie_is_no_session(desk: Desk) -> None:
    async with client() as http:
        plant(http, desk, "abc.def")
        async with http.get(f"{desk.base}/desk/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/desk/login"


async def test_logout_deletes_the_session(desk: Desk) -> None:
    async with client() as http:
        token = await login(desk, http)
        old = cookie(http)
        async with http.post(
            f"{desk.base}/desk/logout", data={"csrf": token}, allow_redirects=False
        ) as r:
            assert r.status == 303
    assert await WebSession.all().count() == 0
    async with client() as http:
        plant(http, desk, old)
        async with http.get(f"{desk.base}/desk/", allow_redirects=False) as r:
            assert r.status == 303


async def test_every_page_needs_a_session(desk: Desk) -> None:
    async with client() as http:
        for path in GET_PAGES + [p.format(**desk.b_ids) for p in GET_FILES]:
            async with http.get(f"{desk.base}{path}", allow_redirects=False) as r:
                assert r.status == 303, path
                assert r.headers["Location"] == "/desk/login"
        for path in POSTS:
            async with http.post(
                f"{desk.base}{path.format(**desk.b_ids)}", data={}, allow_redirects=False
            ) as r:
                assert r.status == 403, path


# -- CSRF and the control path ----------------------------------------------------------------


def _scenario_puts(ami: AmiServer) -> list[str]:
    return [
        header(a, "Val")
        for a in ami.actions
        if header(a, "Action").lower() == "dbput" and header(a, "Key") == f"scenario/{DDI_A}"
    ]


async def test_a_post_without_the_right_csrf_changes_nothing(desk: Desk) -> None:
    before = len(_scenario_puts(desk.ami))
    async with client() as http:
        await login(desk, http)
        url = f"{desk.base}/desk/lines/scenario"
        for data in ({"scenario": "closed"}, {"scenario": "closed", "csrf": "wrong"}):
            async with http.post(url, data=data) as r:
                assert r.status == 403
                assert "Η φόρμα έληξε" in await r.text()  # A reads Greek
    assert (await Subscriber.get(id=desk.a)).scenario is Scenario.AGENT
    assert len(_scenario_puts(desk.ami)) == before


async def test_the_scenario_changes_through_the_bots_control_path(desk: Desk) -> None:
    async with client() as http:
        token = await login(desk, http)
        async with http.post(
            f"{desk.base}/desk/lines/scenario?lang=en", data={"scenario": "closed", "csrf": token}
        ) as r:
            page = await r.text()
        assert r.status == 200
        assert 'data-testid="flash"' in page and 'data-testid="scenario">Closed<' in page
    await desk.ami.wait_until(lambda: desk.ami.astdb.get(f"frontdesk/scenario/{DDI_A}") == "closed")
    assert "closed" in _scenario_puts(desk.ami)
    assert (await Subscriber.get(id=desk.a)).scenario is Scenario.CLOSED
    assert (await Subscriber.get(id=desk.b)).scenario is Scenario.AGENT


async def test_forward_number_is_set_and_a_bad_one_refused(desk: Desk) -> None:
    async with client() as http:
        token = await login(desk, http)
        url = f"{desk.base}/desk/lines/forward?lang=en"
        async with http.post(url, data={"forward": "6944 123456", "csrf": token}) as r:
            assert r.status == 200 and "+306944123456" in await r.text()
        async with http.post(url, data={"forward": "not a number", "csrf": token}) as r:
            assert r.status == 400 and 'data-testid="error"' in await r.text()
    assert (await Subscriber.get(id=desk.a)).forward_number == "+306944123456"
    await desk.ami.wait_until(
        lambda: desk.ami.astdb.get(f"frontdesk/forward/{DDI_A}") == "+306944123456"
    )


# -- link requests -----------------------------------------------------------------------------


async def test_link_requests_are_limited_and_answered_alike(desk: Desk) -> None:
    async with client() as http:
        url = f"{desk.base}/desk/login?lang=el"
        answers = []
        for _ in range(desk.web.settings.link_requests_per_hour):
            async with http.post(url, data={"address": EMAIL_A.upper()}) as r:
                assert r.status == 200
                answers.append(await r.text())
        async with http.post(url, data={"address": EMAIL_A}) as r:
            assert r.status == 429
            assert "Πάρα πολλά αιτήματα" in await r.text()
        # An unknown address gets the known one's answer (its own budget: another key,
        # but the same client IP, now over its limit too).
        async with http.post(url, data={"address": "nobody@example.com"}) as r:
            assert r.status == 429
    assert len(set(answers)) == 1
    links = await Delivery.filter(channel="email", address=EMAIL_A, kind="reply")
    assert len(links) == desk.web.settings.link_requests_per_hour
    assert all("/desk/auth/" in d.text for d in links)


async def test_an_unknown_address_gets_the_same_answer_and_nothing_is_sent(desk: Desk) -> None:
    async with client() as http:
        async with http.post(f"{desk.base}/desk/login", data={"address": EMAIL_A}) as r:
            known = await r.text()
        async with http.post(f"{desk.base}/desk/login", data={"address": "x@example.com"}) as r:
            unknown = await r.text()
    assert r.status == 200 and known == unknown
    assert await Delivery.filter(address="x@example.com").count() == 0


async def test_a_mobile_gets_its_link_in_the_subscribers_chat(desk: Desk) -> None:
    async with client() as http:
        async with http.post(f"{desk.base}/desk/login", data={"address": "6944000011"}) as r:
            assert r.status == 200
    sent = await desk.bot.wait_for(
        lambda c: c.method == "sendMessage" and "/desk/auth/" in c.params.get("text", ""),
        timeout=WAIT,
    )
    assert int(sent.params["chat_id"]) == CHAT
    url = re.search(r"http\S+/desk/auth/\S+", sent.params["text"])
    assert url
    async with client() as http, http.get(url.group(0), allow_redirects=False) as r:
        assert r.status == 303


async def test_desk_in_the_bot_sends_a_working_link(desk: Desk) -> None:
    desk.bot.inject_message(CHAT, "/desk", language_code="el")
    sent = await desk.bot.wait_for(
        lambda c: c.method == "sendMessage" and "/desk/auth/" in c.params.get("text", ""),
        timeout=WAIT,
    )
    url = re.search(r"http\S+/desk/auth/\S+", sent.params["text"])
    assert url and sent.params["text"].startswith("Η γραμματεία σας")
    async with client() as http:
        async with http.get(url.group(0), allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(f"{desk.base}/desk/") as r:
            assert "Dr A" in await r.text()


# -- isolation: every route, with B's ids -------------------------------------------------------

GET_PAGES = [
    "/desk/",
    "/desk/calls",
    "/desk/calls?q=%2B306900000222",
    "/desk/voicemails",
    "/desk/faxes",
    "/desk/messages",
    "/desk/diary",
    "/desk/contacts",
    "/desk/contacts?q=BEE",
    "/desk/tasks",
    "/desk/lines",
    "/desk/preferences",
    "/desk/schedule",
]
GET_FILES = [
    "/desk/voicemails/{voicemail}/audio",
    "/desk/faxes/{fax}.pdf",
    "/desk/contacts/{contact}",
]
POSTS = [
    "/desk/diary/{appointment}/cancel",
    "/desk/diary/{appointment}/move",
    "/desk/diary/book",
    "/desk/lines/scenario",
    "/desk/lines/forward",
    "/desk/preferences",
    "/desk/logout",
]
# POSTs that name one of B's things: refused as not found.
POSTS_WITH_IDS = POSTS[:2]


def _templates(d: Desk, method: str) -> set[str]:
    found = set()
    for route in d.runtime.gateway.web.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        if route.method == method and path.startswith("/desk") and "static" not in path:
            found.add(path)
    return found


async def test_no_route_shows_or_changes_another_subscribers_data(desk: Desk) -> None:
    gets = {p.split("?")[0] for p in GET_PAGES}
    gets |= {"/desk/voicemails/{id}/audio", "/desk/faxes/{name}", "/desk/contacts/{id}"}
    assert _templates(desk, "GET") - gets == {"/desk", "/desk/login", "/desk/auth/{token}"}
    posts = {p.replace("{appointment}", "{id}") for p in POSTS}
    assert _templates(desk, "POST") - posts == {"/desk/login"}

    b = desk.b_ids
    b_day = (await Appointment.get(id=b["appointment"])).starts_at.astimezone(
        ZoneInfo("Europe/Athens")
    )
    async with client() as http:
        token = await login(desk, http)
        for path in [*GET_PAGES, f"/desk/diary?day={b_day:%Y-%m-%d}"]:
            async with http.get(f"{desk.base}{path}") as r:
                page = await r.text()
            assert r.status == 200, path
            assert MARK not in page and DDI_B not in page and "Dr B" not in page, path
        for path in GET_FILES:
            async with http.get(f"{desk.base}{path.format(**b)}") as r:
                assert r.status == 404, path
                assert "Δεν βρέθηκε" in await r.text()
        for path in POSTS_WITH_IDS:
            data = {"csrf": token, "starts_at": f"{b_day + timedelta(hours=1):%Y-%m-%dT%H:%M}"}
            async with http.post(f"{desk.base}{path.format(**b)}", data=data) as r:
                assert r.status == 404, path
        # The forms without ids act on A alone.
        for path, data in [
            ("/desk/lines/scenario", {"scenario": "voicemail"}),
            ("/desk/lines/forward", {"forward": "6944555666"}),
            ("/desk/preferences", {"fax": "sms"}),
            ("/desk/diary/book", {"name": "Mr A", "starts_at": f"{b_day:%Y-%m-%dT%H:%M}"}),
        ]:
            async with http.post(f"{desk.base}{path}", data={**data, "csrf": token}) as r:
                assert r.status == 200, (path, await r.text())
    appointment = await Appointment.get(id=b["appointment"])
    assert appointment.name == MARK and appointment.starts_at == b_day
    subscriber_b = await Subscriber.get(id=desk.b)
    assert subscriber_b.scenario is Scenario.AGENT and subscriber_b.forward_number is None
    assert [p.channels for p in await RoutingPreference.filter(subscriber_id=desk.b)] == [["email"]]
    # A's own booking at B's time: diaries are separate.
    assert await Appointment.filter(subscriber_id=desk.a, starts_at=b_day.astimezone(UTC)).exists()


# -- malformed input ----------------------------------------------------------------------------


async def test_malformed_input_gets_a_localised_4xx(desk: Desk) -> None:
    async with client() as http:
        token = await login(desk, http)
        for path, status in [
            ("/desk/calls?page=abc", 400),
            ("/desk/calls?page=0", 400),
            ("/desk/calls?page=99999999999999999999999", 400),
            ("/desk/calls?page=100000", 200),  # deep but sane: an empty page
            ("/desk/calls?page=%C2%B2", 400),  # "²": a digit to str.isdigit, not to int()
            ("/desk/diary?day=2026-13-45", 400),
            ("/desk/diary?day=x", 400),
            ("/desk/voicemails/abc/audio", 404),
            ("/desk/voicemails/99999999999999999999/audio", 404),
            ("/desk/faxes/abc.pdf", 404),
            ("/desk/faxes/12", 404),
            ("/desk/contacts/-1", 404),
            ("/desk/contacts/%00", 404),
        ]:
            async with http.get(f"{desk.base}{path}") as r:
                body = await r.text()
            assert r.status == status, (path, r.status)
            if status != 200:
                assert 'data-testid="error"' in body and '<html lang="el">' in body, path
        for path, data in [
            ("/desk/diary/book", {"name": "X", "starts_at": "tomorrow"}),
            ("/desk/diary/book", {"name": "X", "starts_at": "2026-02-30T10:00"}),
            ("/desk/diary/abc/move", {"starts_at": "2026-01-01T10:00"}),
            ("/desk/diary/1/move", {"starts_at": ""}),
            ("/desk/lines/scenario", {"scenario": "party"}),
            ("/desk/preferences", {"fax": "pigeon"}),
        ]:
            async with http.post(f"{desk.base}{path}", data={**data, "csrf": token}) as r:
                assert 400 <= r.status < 500, (path, r.status)
                assert 'data-testid="error"' in await r.text()
        async with http.post(
            f"{desk.base}/desk/lines/scenario",
            data=b"\xff\xfe",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ) as r:
            assert 400 <= r.status < 500


# -- what the pages show ------------------------------------------------------------------------


async def test_a_subscriber_sees_their_voicemail_fax_and_diary(desk: Desk) -> None:
    async with client() as http:
        await login(desk, http, desk.b)
        async with http.get(f"{desk.base}/desk/voicemails") as r:
            page = await r.text()
        assert 'data-testid="transcript">' + MARK in page
        vm = desk.b_ids["voicemail"]
        async with http.get(f"{desk.base}/desk/voicemails/{vm}/audio") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
        async with http.get(
            f"{desk.base}/desk/voicemails/{vm}/audio", headers={"Range": "bytes=0-3"}
        ) as r:
            assert r.status == 206 and await r.read() == b"RIFF"
        async with http.get(f"{desk.base}/desk/faxes/{desk.b_ids['fax']}.pdf") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/pdf"
            assert (await r.read()).startswith(b"%PDF")
        async with http.get(f"{desk.base}/desk/contacts/{desk.b_ids['contact']}") as r:
            assert r.status == 200 and 'data-testid="call-row"' in await r.text()


async def test_book_move_and_cancel_in_the_diary(desk: Desk) -> None:
    zone = ZoneInfo("Europe/Athens")
    day = (desk.clock[0].astimezone(zone) + timedelta(days=8)).date()
    async with client() as http:
        token = await login(desk, http)
        book = f"{desk.base}/desk/diary/book?lang=en"
        data = {"csrf": token, "name": "Mr Smith", "phone": "", "starts_at": f"{day}T10:00"}
        async with http.post(book, data=data) as r:
            assert r.status == 200 and 'data-testid="appointment"' in await r.text()
        async with http.post(book, data={**data, "name": "Mrs Jones"}) as r:
            assert r.status == 400 and "That time is taken" in await r.text()
        async with http.post(book, data={**data, "starts_at": f"{day}T23:00"}) as r:
            assert r.status == 400 and 'data-testid="error"' in await r.text()
        booked = await Appointment.get(subscriber_id=desk.a, name="Mr Smith")
        move = f"{desk.base}/desk/diary/{booked.id}/move?lang=en"
        async with http.post(move, data={"csrf": token, "starts_at": f"{day}T11:00"}) as r:
            assert r.status == 200 and 'data-testid="flash"' in await r.text()
        moved = await Appointment.get(id=booked.id)
        assert moved.starts_at.astimezone(zone).hour == 11
        cancel = f"{desk.base}/desk/diary/{booked.id}/cancel"
        async with http.post(cancel, data={"csrf": token}) as r:
            assert r.status == 200
        assert not await Appointment.exists(id=booked.id)
        async with http.post(cancel, data={"csrf": token}) as r:
            assert r.status == 404


async def test_a_booking_keeps_the_customers_mobile_for_the_reminder(desk: Desk) -> None:
    zone = ZoneInfo("Europe/Athens")
    day = (desk.clock[0].astimezone(zone) + timedelta(days=8)).date()
    async with client() as http:
        token = await login(desk, http)
        book = f"{desk.base}/desk/diary/book?lang=en"
        data = {"csrf": token, "name": "Ms Mobile", "phone": "694 400 0077"}
        async with http.post(book, data={**data, "starts_at": f"{day}T12:00"}) as r:
            assert r.status == 200
        async with http.post(book, data={**data, "phone": "12", "starts_at": f"{day}T13:00"}) as r:
            assert r.status == 400 and "That is not a phone number: 12" in await r.text()
    [booked] = await Appointment.filter(subscriber_id=desk.a, name="Ms Mobile")
    assert booked.phone == "+306944000077"


async def test_calls_are_paged_and_searched(desk: Desk) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    await Call.bulk_create(
        [
            Call(
                linkedid=f"a-{n}",
                ddi=DDI_A,
                subscriber_id=desk.a,
                caller_number=f"+3069000{n:05d}",
                caller_name=f"Caller {n}",
                status=CallStatus.ANSWERED,
                outcome=CallOutcome.ANSWERED,
                started_at=start + timedelta(minutes=n),
            )
            for n in range(120)
        ]
    )
    async with client() as http:
        await login(desk, http)
        pages: list[str] = []
        for number in (1, 2, 3):
            async with http.get(f"{desk.base}/desk/calls?page={number}") as r:
                pages.append(await r.text())
        counts = [p.count('data-testid="call-row"') for p in pages]
        assert counts == [50, 50, 20]
        assert 'data-testid="next-page"' in pages[0] and 'data-testid="next-page"' not in pages[2]
        assert "Caller 119" in pages[0] and "Caller 0<" in pages[2].replace(" +", "<")
        async with http.get(f"{desk.base}/desk/calls?q=caller 10") as r:
            found = await r.text()
        assert found.count('data-testid="call-row"') == 11  # 10, 100..109


async def test_desk_link_on_the_command_line(desk: Desk, tmp_path: Path) -> None:
    env = environment(
        FRONTDESK__DATABASE__URL=desk.runtime.settings.database.url,
        FRONTDESK__WEB__BASE_URL=desk.base,
    )
    out = await run_main("desk", "link", "--subscriber", str(desk.a), env=env)
    url = out.strip()
    assert url.startswith(f"{desk.base}/desk/auth/")
    async with client() as http, http.get(url, allow_redirects=False) as r:
        assert r.status == 303
