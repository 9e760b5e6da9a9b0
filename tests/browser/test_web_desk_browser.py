"""The subscriber's web desk in Debian's headless chromium: log in by magic link (from the
Python API and from the bot's /desk), play a voicemail and read its transcript, open a fax
PDF, book and cancel an appointment, change the scenario (the sandbox AMI gets the DBPut),
and screenshots of the main pages in every language (build/screenshots/<lang>-<page>.png).

Each test is its own browser session on a freshly seeded gateway; all waiting is on page,
PBX or Bot API conditions."""

from __future__ import annotations

import importlib.util
import os
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import REQUIRED_ENV

if importlib.util.find_spec("playwright") is None and os.environ.get(REQUIRED_ENV) != "1":
    pytest.skip("no headless browser: Playwright is not installed", allow_module_level=True)

from playwright.async_api import Browser, Page, expect

from gateway.control.labels import SCENARIO_LABELS
from gateway.web.links import issue_link
from locales import tr
from models.db import Appointment, Subscriber
from models.vocab import Scenario
from tests.browser import seed
from tests.browser.conftest import WAIT, Desk, new_context

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
LANGUAGES = ("en", "el", "ru", "zh")
CHAT = 5151
BROWSER_LOCALES = {"en": "en-GB", "el": "el-GR", "ru": "ru-RU", "zh": "zh-CN"}
AUTH_LINK = re.compile(r"https?://\S+/desk/auth/[A-Za-z0-9_\-.~%]+")


async def log_in(page: Page, desk: Desk, who: seed.Seeded | None = None) -> str:
    """Follow a fresh magic link for `who` (alice by default) to the today page; the link."""
    subscriber = (who or desk.alice).subscriber
    link = await issue_link(subscriber.id, desk.base_url)
    await page.goto(link)
    await expect(page).to_have_url(desk.url("/desk/"))
    await expect(page.get_by_test_id("today")).to_be_visible()
    return link


async def link_alices_chat(desk: Desk) -> None:
    """Alice's Telegram chat linked by her code (the bot has answered the /start)."""
    desk.bot.inject_message(CHAT, f"/start {desk.alice.link_code}")
    await desk.bot.wait_for(lambda c: c.method == "sendMessage", timeout=WAIT)


async def test_magic_link_opens_the_desk_once(desk: Desk, page: Page) -> None:
    # Not logged in: any page sends the browser to the login form.
    await page.goto("/desk/calls")
    await expect(page).to_have_url(re.compile(r"/desk/login"))

    link = await log_in(page, desk)
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["fd_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/desk"
    # Today's incomings, including the missed call of five minutes ago.
    await expect(page.get_by_test_id("today")).to_contain_text(desk.alice.missed_caller)
    await expect(page.get_by_test_id("today")).not_to_contain_text("bob")

    # The nav leads on: the calls page lists this subscriber's calls only.
    await page.get_by_test_id("nav-calls").click()
    await expect(page).to_have_url(re.compile(r"/desk/calls"))
    rows = page.get_by_test_id("call-row")
    await expect(rows).to_have_count(4)
    await expect(page.get_by_test_id("calls")).not_to_contain_text("Missed bob")

    # Single use: the same link again is refused with a way back to the login form.
    again = await page.goto(link)
    assert again is not None and again.status == 400
    await expect(page.locator('a[href*="/desk/login"]').first).to_be_visible()

    # Logging out ends the session on the server: the old cookie opens nothing.
    await page.goto("/desk/")
    await expect(page.get_by_test_id("today")).to_be_visible()  # still logged in till now
    async with page.expect_navigation():
        await page.get_by_test_id("logout").click()
    await expect(page).to_have_url(re.compile(r"/desk/login"))
    old: SetCookieParam = {
        "name": session["name"],
        "value": session["value"],
        "url": desk.url("/desk/"),
    }
    await page.context.add_cookies([old])  # replaying the old cookie does not help
    await page.goto("/desk/")
    await expect(page).to_have_url(re.compile(r"/desk/login"))


async def test_a_new_link_replaces_the_browsers_session(desk: Desk, page: Page) -> None:
    """Session fixation: following a link never keeps the session the browser brought."""
    await log_in(page, desk)
    before = {c["name"]: c["value"] for c in await page.context.cookies()}["fd_session"]
    await log_in(page, desk, desk.bob)  # bob's link opened in alice's browser
    after = {c["name"]: c["value"] for c in await page.context.cookies()}["fd_session"]
    assert after != before
    await expect(page.get_by_test_id("today")).to_contain_text(desk.bob.missed_caller)
    await expect(page.get_by_test_id("today")).not_to_contain_text(desk.alice.missed_caller)
    await expect(page.locator("html")).to_have_attribute("lang", "el")  # bob's language
    # The replaced session is gone on the server, not only from this browser.
    replay: SetCookieParam = {"name": "fd_session", "value": before, "url": desk.url("/desk/")}
    await page.context.clear_cookies()
    await page.context.add_cookies([replay])
    await page.goto("/desk/")
    await expect(page).to_have_url(re.compile(r"/desk/login"))


async def test_desk_command_on_telegram_sends_a_working_link(desk: Desk, page: Page) -> None:
    await link_alices_chat(desk)
    desk.bot.inject_message(CHAT, "/desk")
    sent = await desk.bot.wait_for(
        lambda c: c.method == "sendMessage" and bool(AUTH_LINK.search(_text(c.params))),
        timeout=WAIT,
    )
    match = AUTH_LINK.search(_text(sent.params))
    assert match is not None and match.group().startswith(desk.base_url)
    await page.goto(match.group())
    await expect(page).to_have_url(desk.url("/desk/"))
    await expect(page.get_by_test_id("today")).to_contain_text(desk.alice.missed_caller)


async def test_login_form_sends_the_link_to_the_linked_chat(desk: Desk, page: Page) -> None:
    await link_alices_chat(desk)

    async def ask(address: str) -> str:
        await page.goto("/desk/login")
        await page.get_by_test_id("address").fill(address)
        async with page.expect_navigation():
            await page.get_by_test_id("send-link").click()
        return await page.get_by_test_id("login-sent").inner_text()

    # An unknown address gets the same answer as a known one, and nothing is sent.
    unknown = await ask("+306944999999")
    known = await ask("+306944000101")  # alice's mobile, typed as people do
    assert unknown == known
    sent = await desk.bot.wait_for(
        lambda c: c.method == "sendMessage" and bool(AUTH_LINK.search(_text(c.params))),
        timeout=WAIT,
    )
    assert str(sent.params["chat_id"]) == str(CHAT)
    match = AUTH_LINK.search(_text(sent.params))
    assert match is not None
    await page.goto(match.group())
    await expect(page).to_have_url(desk.url("/desk/"))
    await expect(page.get_by_test_id("today")).to_contain_text(desk.alice.missed_caller)
    links = [c for c in desk.bot.sent if AUTH_LINK.search(_text(c.params))]
    assert len(links) == 1  # the unknown address's request sent nothing


def _text(params: dict[str, object]) -> str:
    """A sent message's text and its buttons' URLs (the link may be either)."""
    parts = [str(params.get("text", ""))]
    markup = params.get("reply_markup")
    if isinstance(markup, dict):
        for row in markup.get("inline_keyboard", []):
            parts += [str(button.get("url", "")) for button in row]
    return " ".join(parts)


async def test_voicemail_plays_and_shows_its_transcript(desk: Desk, page: Page) -> None:
    await log_in(page, desk)
    await page.get_by_test_id("nav-voicemails").click()
    item = page.get_by_test_id("voicemail").filter(has_text=desk.alice.transcript)
    await expect(item).to_have_count(1)
    await expect(item.get_by_test_id("transcript")).to_have_text(desk.alice.transcript)
    await expect(page.get_by_test_id("voicemail")).to_have_count(1)  # not bob's

    audio = item.get_by_test_id("voicemail-audio")
    src = await audio.get_attribute("src")
    assert src == f"/desk/voicemails/{desk.alice.voicemail.id}/audio"
    # Played by script, as a click on the control would: resolved on `playing` (the
    # decoder accepted the served WAV), rejected on the element's error.
    started = await audio.evaluate(
        """a => new Promise((resolve, reject) => {
            a.addEventListener('playing', () => resolve('playing'), {once: true});
            a.addEventListener('ended', () => resolve('ended'), {once: true});
            a.addEventListener('error', () => reject(new Error('media error ' + a.error?.code)));
            a.play().catch(reject);
        })"""
    )
    assert started in {"playing", "ended"}
    await page.wait_for_function(
        "a => a.currentTime > 0 || a.ended", arg=await audio.element_handle()
    )

    # The audio itself: the stored file, as audio, Range honoured.
    response = await page.request.get(src, headers={"Range": "bytes=0-11"})
    assert response.status in (200, 206)
    assert response.headers["content-type"].startswith(("audio/wav", "audio/x-wav"))
    assert (await response.body()).startswith(b"RIFF")

    # Another subscriber's voicemail is not there for this session.
    other = await page.request.get(f"/desk/voicemails/{desk.bob.voicemail.id}/audio")
    assert other.status == 404


async def test_fax_opens_as_pdf(desk: Desk, page: Page) -> None:
    await log_in(page, desk)
    await page.get_by_test_id("nav-faxes").click()
    faxes = page.get_by_test_id("fax")
    await expect(faxes).to_have_count(1)
    link = faxes.get_by_test_id("fax-pdf")
    href = await link.get_attribute("href")
    assert href is not None and href.endswith(".pdf")

    response = await page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"].split(";")[0] == "application/pdf"
    body = await response.body()
    assert body.startswith(b"%PDF") and body == desk.alice.fax_pdf

    # Bob's fax, by the same URL scheme, is a 404 for alice.
    other = await page.request.get(re.sub(r"/\d+\.pdf$", f"/{desk.bob.fax.id}.pdf", href))
    assert other.status == 404


async def test_book_then_cancel_an_appointment(desk: Desk, page: Page) -> None:
    await log_in(page, desk)
    zone = ZoneInfo(desk.alice.subscriber.timezone)
    day = seed.next_workday(datetime.now(zone).date())
    name = "Browser Booking"
    await page.goto(f"/desk/diary?day={day.isoformat()}")
    form = page.get_by_test_id("book-form")
    await form.locator('input[name="name"]').fill(name)
    await form.locator('input[name="phone"]').fill("+302105550999")
    await form.locator('input[name="starts_at"]').fill(f"{day.isoformat()}T10:00")
    async with page.expect_navigation():
        await form.get_by_test_id("book").click()
    await expect(page.get_by_test_id("error")).to_have_count(0)

    row = await Appointment.get(subscriber_id=desk.alice.subscriber.id, name=name)
    assert row.starts_at == datetime.combine(day, time(10, 0), tzinfo=zone).astimezone(UTC)
    assert row.ends_at - row.starts_at == timedelta(minutes=30)

    await page.goto(f"/desk/diary?day={day.isoformat()}")
    booked = page.get_by_test_id("appointment").filter(has_text=name)
    await expect(booked).to_have_count(1)

    async with page.expect_navigation():
        await booked.get_by_test_id("cancel-appointment").click()
    await page.goto(f"/desk/diary?day={day.isoformat()}")
    await expect(page.get_by_test_id("diary")).to_be_visible()
    await expect(page.get_by_test_id("appointment").filter(has_text=name)).to_have_count(0)
    assert not await Appointment.filter(id=row.id).exists()
    # Nothing else was touched: the seeded appointment is still there.
    assert await Appointment.filter(id=desk.alice.appointment.id).exists()


async def test_booking_in_the_past_is_refused_with_a_message(desk: Desk, page: Page) -> None:
    await log_in(page, desk)
    yesterday = datetime.now(ZoneInfo(desk.alice.subscriber.timezone)).date() - timedelta(1)
    await page.goto("/desk/diary")
    form = page.get_by_test_id("book-form")
    await form.locator('input[name="name"]').fill("Too Late")
    await form.locator('input[name="starts_at"]').fill(f"{yesterday.isoformat()}T10:00")
    await form.get_by_test_id("book").click()
    await expect(page.get_by_test_id("error")).to_be_visible()
    assert not await Appointment.filter(name="Too Late").exists()


async def test_scenario_change_reaches_the_pbx(desk: Desk, page: Page) -> None:
    await log_in(page, desk)
    await page.get_by_test_id("nav-lines").click()
    await expect(page).to_have_url(re.compile(r"/desk/lines"))
    agent = tr("en", SCENARIO_LABELS[Scenario.AGENT])
    await expect(page.get_by_test_id("scenario")).to_contain_text(agent)
    await page.get_by_test_id("scenario-select").select_option("closed")
    async with page.expect_navigation():
        await page.get_by_test_id("set-scenario").click()
    await expect(page.get_by_test_id("flash")).to_be_visible()

    key = f"scenario/{desk.alice.ddi}"
    # Seeding wrote `agent` there already; the desk's change is the `closed` write after it.
    put = await desk.ami.wait_action(
        "DBPut",
        lambda a: (
            a.get("Family") == "frontdesk" and a.get("Key") == key and a.get("Val") == "closed"
        ),
        timeout=WAIT,
    )
    assert put.get("Val") == "closed"
    await desk.ami.wait_until(lambda: desk.ami.astdb.get(f"frontdesk/{key}") == "closed")
    assert (await Subscriber.get(id=desk.alice.subscriber.id)).scenario == Scenario.CLOSED
    # Bob's line was not touched.
    assert desk.ami.astdb.get(f"frontdesk/scenario/{desk.bob.ddi}") != "closed"
    # The page now says so, in the subscriber's words for it.
    await page.reload()
    closed = tr("en", SCENARIO_LABELS[Scenario.CLOSED])
    await expect(page.get_by_test_id("scenario")).to_contain_text(closed)


async def test_calls_search_and_a_contacts_history(desk: Desk, page: Page) -> None:
    await log_in(page, desk)
    await page.goto("/desk/calls")
    search = page.get_by_test_id("search")
    await search.locator('input[name="q"]').fill("Missed")
    async with page.expect_navigation():
        await search.locator('input[name="q"]').press("Enter")
    await expect(page).to_have_url(re.compile(r"[?&]q=Missed"))
    await expect(page.get_by_test_id("call-row")).to_have_count(2)  # "Missed", "Missed again"

    await page.get_by_test_id("nav-contacts").click()
    contact = page.get_by_test_id("contact").filter(has_text="Contact alice")
    await expect(contact).to_have_count(1)
    await expect(page.get_by_test_id("contact")).to_have_count(1)  # bob's are not listed
    await contact.locator("a").first.click()
    await expect(page).to_have_url(re.compile(r"/desk/contacts/\d+"))
    await expect(page.locator("body")).to_contain_text(desk.alice.missed_caller)


async def test_a_form_without_its_csrf_token_changes_nothing(desk: Desk, page: Page) -> None:
    await log_in(page, desk)
    await page.goto("/desk/lines")
    form = page.locator("form").filter(has=page.get_by_test_id("set-scenario"))
    await form.locator('input[name="csrf"]').evaluate("i => { i.value = 'forged' }")
    await page.get_by_test_id("scenario-select").select_option("closed")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_test_id("set-scenario").click()
    assert (await answer.value).status == 403
    assert (await Subscriber.get(id=desk.alice.subscriber.id)).scenario == Scenario.AGENT
    assert desk.ami.astdb.get(f"frontdesk/scenario/{desk.alice.ddi}") != "closed"


# page: (path, an element it must show, its heading's msgid)
PAGES = {
    "today": ("/desk/", "today", "Today"),
    "calls": ("/desk/calls", "calls", "Calls"),
    "voicemails": ("/desk/voicemails", "voicemail", "Voicemails"),
    "faxes": ("/desk/faxes", "fax", "Faxes"),
    "diary": ("/desk/diary", "diary", "Diary"),
    "contacts": ("/desk/contacts", "contact", "Contacts"),
    "lines": ("/desk/lines", "scenario", "Lines"),
    "schedule": ("/desk/schedule", "schedule", "Schedule"),
}


async def test_screenshots_of_every_page_in_every_language(desk: Desk, browser: Browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    zone = ZoneInfo(desk.alice.subscriber.timezone)
    tomorrow = datetime.now(zone).date() + timedelta(days=1)  # the seeded appointment's day
    for lang in LANGUAGES:
        # The browser speaks that language too (Accept-Language, navigator.language).
        context = await new_context(browser, desk, BROWSER_LOCALES[lang])
        page = await context.new_page()
        await log_in(page, desk)
        for name, (path, testid, heading) in PAGES.items():
            day = f"&day={tomorrow.isoformat()}" if name == "diary" else ""
            await page.goto(f"{path}?lang={lang}{day}")
            await expect(page.locator("html")).to_have_attribute("lang", lang)
            await expect(page.get_by_test_id(testid).first).to_be_visible()
            # The page's own heading and the nav, from that language's catalogue.
            title = tr(lang, heading)
            assert lang == "en" or title != heading, f"{heading!r} is not translated to {lang}"
            await expect(page.locator("h1").first).to_contain_text(title)
            await expect(page.get_by_test_id("nav-calls")).to_have_text(tr(lang, "Calls"))
            await page.screenshot(path=SCREENSHOTS / f"{lang}-{name}.png", full_page=True)
        # The language chosen is remembered by the session, without ?lang= again.
        await page.goto("/desk/calls")
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        await context.close()
    written = {p.name for p in SCREENSHOTS.glob("*-*.png")}
    assert {f"{lang}-{name}.png" for lang in LANGUAGES for name in PAGES} <= written
