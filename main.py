"""Frontdesk command line: the composition root.

python main.py run -c frontdesk.toml        run the gateway
python main.py migrate -c frontdesk.toml    bring the database schema up to date
python main.py demo [--report FILE]         a short day against the sandbox
python main.py demo --pbx [--asterisk PATH] the same day's calls on a real private Asterisk
python main.py subscriber add|list|code ... admin helpers
python main.py agent add|team add|code|list the operator's staff
python main.py admin add --name N          the first admin (then /admin in the bot)
python main.py campaign add|import|show     call lists worked by agents from Telegram
python main.py schedule set|close|show      office hours that switch the scenario
python main.py desk link --subscriber ID    a login link to a subscriber's web desk
python main.py deliveries [--status dead]   the outbox, e.g. the dead letters
python main.py usage --month YYYY-MM [--subscriber ID] --csv FILE    the month's usage
python main.py report --month YYYY-MM --subscriber ID --pdf FILE     a subscriber's PDF
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gateway.control import admin
from gateway.delivery.notices import Notices
from models import logs
from models.database import close_db, is_locked, migrate, open_db
from models.db import Delivery, DeliveryStatus, Subscriber, Urgency
from models.phone import InvalidNumber
from models.settings import ConfigError, Settings, load_settings
from models.vocab import KINDS, LANGUAGES, Language

log = logging.getLogger("frontdesk")


def setup_logging(settings: Settings) -> None:
    """Text or JSON lines on stderr, every configured secret masked (models/logs.py)."""
    logs.setup(settings)


async def cmd_run(settings: Settings, _: argparse.Namespace) -> int:
    from bot.runtime import Runtime  # the bot and the whole gateway: only `run` needs them

    await migrate(settings.database.url)
    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("starting with %s", json.dumps(settings.redacted()))
    await runtime.start()
    await stop.wait()
    log.info("stopping")
    await runtime.stop()
    return 0


async def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    await migrate(settings.database.url)
    print("database schema is up to date")
    return 0


async def _with_db(settings: Settings, work: Callable[[], Awaitable[int]]) -> int:
    await migrate(settings.database.url)
    await open_db(settings.database.url)
    try:
        return await work()
    finally:
        await close_db()


async def cmd_subscriber(settings: Settings, args: argparse.Namespace) -> int:
    async def add() -> int:
        created = await admin.add_subscriber(
            name=args.name,
            ddis=args.ddi,
            language=args.language or settings.locale.default_language,
            timezone=args.timezone or settings.locale.default_timezone,
            mobile=args.mobile,
            instructions=args.instructions,
            region=settings.locale.default_region,
        )
        print(f"subscriber {created.subscriber.id} {created.subscriber.name!r} created")
        print(f"link code: {created.link_code}  (the subscriber sends /start {created.link_code})")
        return 0

    async def listing() -> int:
        for s in await Subscriber.all().prefetch_related("ddis", "users"):
            ddis = ",".join(d.number for d in s.ddis)
            chats = sum(1 for u in s.users if u.telegram_chat_id)
            print(f"{s.id}\t{s.name}\t{s.language}\t{s.scenario.value}\t{ddis}\tchats={chats}")
        return 0

    async def code() -> int:
        subscriber = await Subscriber.get_or_none(id=args.id)
        if subscriber is None:
            raise admin.AdminError(f"no subscriber {args.id}")
        print(f"link code: {await admin.new_link_code(subscriber)}")
        return 0

    async def contact() -> int:
        s = await admin.set_contact_points(
            args.id,
            email=args.email,
            mobile=args.mobile,
            quiet_hours=args.quiet,
            region=settings.locale.default_region,
            pin=args.pin,
            forward=args.forward,
        )
        quiet = f"{s.quiet_start}-{s.quiet_end}" if s.quiet_start else "none"
        print(
            f"{s.id}\temail={s.email or ''}\tmobile={s.mobile or ''}"
            f"\tforward={s.forward_target or ''}\tquiet={quiet}"
        )
        return 0

    async def route() -> int:
        urgency = Urgency.URGENT if args.urgent else Urgency.NORMAL
        channels = [c.strip() for c in args.channels.split(",") if c.strip()]
        await admin.set_route(args.id, args.kind, urgency, channels)
        print(f"{args.id}\t{args.kind}\t{urgency.value}\t{','.join(channels)}")
        return 0

    async def outbound() -> int:
        from gateway.admin import policy

        subscriber = await Subscriber.get_or_none(id=args.id)
        if subscriber is None:
            raise admin.AdminError(f"no subscriber {args.id}")
        if args.allow is not None:
            try:
                subscriber.outbound_allowed = policy.parse_allowed(args.allow)
            except ValueError as exc:
                raise admin.AdminError(str(exc)) from exc
            await subscriber.save(update_fields=["outbound_allowed"])
        print(f"{subscriber.id}\toutbound={subscriber.outbound_allowed}")
        return 0

    actions = {
        "add": add,
        "list": listing,
        "code": code,
        "set": contact,
        "route": route,
        "outbound": outbound,
    }
    return await _with_db(settings, actions[args.action])


async def cmd_international(settings: Settings, args: argparse.Namespace) -> int:
    """The month's international calls placed by the gateway (the outbound policy's record)."""
    from gateway.admin import policy

    async def report() -> int:
        month = args.month or policy.this_month()
        zone = settings.locale.default_timezone
        try:
            calls = await policy.international_calls(month, zone)
        except ValueError as exc:
            raise admin.AdminError(f"--month: YYYY-MM ({exc})") from exc
        for line in policy.report_lines(Language.EN, calls, zone):
            print(line)
        print(f"{len(calls)} international call(s) in {month}")
        return 0

    return await _with_db(settings, report)


async def cmd_agent(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.staff import people

    async def add() -> int:
        created = await people.add_staff(
            name=args.name,
            role=args.role,
            team=args.team,
            interface=args.interface,
            queue=args.queue,
            language=args.language,
        )
        agent = created.agent
        print(f"staff {agent.id} {agent.user.name!r} ({agent.user.role}) created")
        print(f"link code: {created.link_code}  (they send /start {created.link_code})")
        return 0

    async def team() -> int:
        made = await people.add_team(args.name, args.supervisor)
        print(f"team {made.id} {made.name!r} created")
        return 0

    async def code() -> int:
        print(f"link code: {await people.new_staff_code(args.id)}")
        return 0

    async def listing() -> int:
        for a in await people.roster():
            team_name = a.team.name if a.team is not None else "-"
            chat = "yes" if a.user.telegram_chat_id else "no"
            print(
                f"{a.id}\t{a.user.name}\t{a.user.role}\t{team_name}\t{a.interface or '-'}"
                f"\t{a.queue}\t{a.presence.value}\tchat={chat}"
            )
        return 0

    actions = {"add": add, "team": team, "code": code, "list": listing}
    try:
        return await _with_db(settings, actions[args.action])
    except people.StaffError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2


async def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    """`admin add`: the first admin (later ones are added from the bot's /admin menu)."""
    from gateway.staff import people

    async def add() -> int:
        created = await people.add_admin(args.name, args.language or None)
        agent = created.agent
        print(f"admin {agent.id} {agent.user.name!r} created")
        print(f"link code: {created.link_code}  (they send /start {created.link_code})")
        return 0

    try:
        return await _with_db(settings, add)
    except people.StaffError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2


async def cmd_campaign(settings: Settings, args: argparse.Namespace) -> int:
    """Call lists: make one (with typed contacts), import contacts from CSV, show progress."""
    from datetime import date
    from pathlib import Path

    from gateway.campaigns import importing, lists, work
    from models.campaigns import Campaign, CampaignEntry

    region = settings.locale.default_region

    async def added(campaign: Campaign, contacts: list[importing.Contact]) -> None:
        errors = await lists.add_contacts(campaign, contacts)
        for error in errors:
            print(f"frontdesk: {error.text(Language.EN)}", file=sys.stderr)
        print(f"{len(contacts) - len(errors)} contact(s) added to call list {campaign.id}")

    async def listed() -> Campaign:
        campaign = await Campaign.get_or_none(id=args.id).select_related("subscriber")
        if campaign is None:
            raise lists.CampaignError(f"no call list {args.id}")
        return campaign

    async def add() -> int:
        try:
            starts_on, ends_on = date.fromisoformat(args.start), date.fromisoformat(args.end)
        except ValueError as exc:
            raise lists.CampaignError(f"--from/--to: YYYY-MM-DD ({exc})") from exc
        contacts, errors = importing.parse("\n".join(args.contact or []), region)
        for error in errors:
            print(f"frontdesk: --contact {error.text(Language.EN)}", file=sys.stderr)
        if errors:
            return 2
        campaign = await lists.create(
            subscriber_id=args.subscriber,
            name=args.name,
            script=args.script,
            starts_on=starts_on,
            ends_on=ends_on,
            agent_id=args.agent,
            team_id=args.team,
        )
        print(f"call list {campaign.id} {campaign.name!r} created")
        if contacts:
            await added(campaign, contacts)
        return 0

    async def load() -> int:
        campaign = await listed()
        try:
            text = importing.decode(await asyncio.to_thread(Path(args.file).read_bytes))
        except OSError as exc:
            raise lists.CampaignError(f"cannot read {args.file}: {exc.strerror}") from exc
        except ValueError as exc:
            raise lists.CampaignError(str(exc)) from exc
        contacts, errors = importing.parse(text, region)
        for error in errors:
            print(f"frontdesk: {error.text(Language.EN)}", file=sys.stderr)
        await added(campaign, contacts)
        return 2 if errors else 0

    async def show() -> int:
        campaign = await listed()
        c = await work.counters(campaign.id)
        print(
            f"{campaign.id}\t{campaign.name}\t{campaign.subscriber.name}"
            f"\t{campaign.starts_on}..{campaign.ends_on}"
        )
        print(
            f"in_progress={c.in_progress}\tunanswered={c.unanswered}\tpending={c.pending}"
            f"\tdone={c.done}\trefused={c.refused}\ttotal={c.total}"
        )
        entries = CampaignEntry.filter(campaign_id=campaign.id).select_related("agent__user")
        for e in await entries.order_by("position"):
            who = e.agent.user.name if e.agent is not None else "-"
            print(
                f"{e.position}\t{e.name}\t{e.number}\t{e.status.value}\t{e.outcome or '-'}"
                f"\tcalls={e.attempts}\t{who}"
            )
        return 0

    actions = {"add": add, "import": load, "show": show}
    try:
        return await _with_db(settings, actions[args.action])
    except lists.CampaignError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2


async def cmd_schedule(settings: Settings, args: argparse.Namespace) -> int:
    """Office hours: weekly periods, holidays, closures; the gateway switches at boundaries."""
    from datetime import date

    from gateway.schedule import admin as schedules

    async def set_() -> int:
        periods = [schedules.parse_period(w, schedules.WEEKDAYS) for w in args.weekdays or []]
        periods += [schedules.parse_period(p) for p in args.period or []]
        await schedules.set_schedule(
            args.subscriber, periods, args.default, args.holidays or "", args.announce
        )
        print("\n".join(await schedules.show(args.subscriber)))
        return 0

    async def close() -> int:
        try:
            first, last = date.fromisoformat(args.start), date.fromisoformat(args.end)
        except ValueError as exc:
            raise schedules.ScheduleError(f"--from/--to: YYYY-MM-DD ({exc})") from exc
        await schedules.close(args.subscriber, first, last, args.note)
        print(f"subscriber {args.subscriber}: closed {first}..{last}")
        return 0

    async def show() -> int:
        print("\n".join(await schedules.show(args.subscriber)))
        return 0

    try:
        return await _with_db(settings, {"set": set_, "close": close, "show": show}[args.action])
    except schedules.ScheduleError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2


async def cmd_desk(settings: Settings, args: argparse.Namespace) -> int:
    """`desk link --subscriber ID`: a fresh magic link to the subscriber's web desk."""
    from gateway.web.links import issue_link
    from models.db import Subscriber

    async def link() -> int:
        if not await Subscriber.exists(id=args.subscriber):
            print(f"frontdesk: no subscriber {args.subscriber}", file=sys.stderr)
            return 2
        base = settings.web.base_url or f"http://127.0.0.1:{settings.http.port}"
        print(await issue_link(args.subscriber, base, settings.web.link_minutes))
        return 0

    return await _with_db(settings, link)


async def cmd_message(settings: Settings, args: argparse.Namespace) -> int:
    async def take() -> int:
        notices = Notices(admin.configured_channels(settings), settings.routing)
        key = await admin.take_message(
            notices,
            args.id,
            args.text,
            urgent=args.urgent,
            caller_number=args.caller or "",
            caller_name=args.caller_name or "",
            region=settings.locale.default_region,
        )
        # The running gateway's outbox sends it on its next round.
        print(f"message {key} queued")
        return 0

    try:
        return await _while_locked(args.wait, lambda: _with_db(settings, take))
    except DatabaseBusy as exc:
        print(
            f"frontdesk: {exc}; the message was NOT queued, run the command again", file=sys.stderr
        )
        return 3


class DatabaseBusy(Exception):
    """The database stayed locked by another process for as long as we would wait."""


async def _while_locked(wait: float, attempt: Callable[[], Awaitable[int]]) -> int:
    """Run `attempt` (one whole transaction: a failed try wrote nothing) again while it
    fails with "database is locked", backing off, for up to `wait` seconds."""
    loop = asyncio.get_running_loop()
    deadline, pause, tries = loop.time() + wait, 0.05, 1
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_locked(exc):
                raise
            if loop.time() + pause > deadline:
                raise DatabaseBusy(
                    f"the database stayed locked for {wait:g}s ({tries} tries)"
                ) from None
            log.info("database locked (try %d); trying again in %.2fs", tries, pause)
            # Jitter: many writers queued behind one lock must not retry in step.
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause, tries = min(pause * 2, 2.0), tries + 1
            continue
        if tries > 1:
            log.info("database was locked: done at try %d", tries)
        return result


async def cmd_usage(settings: Settings, args: argparse.Namespace) -> int:
    """`usage`: the month's usage CSV (every subscriber, or one), written to --csv."""
    from pathlib import Path

    from gateway.admin import stats, usage

    async def export() -> int:
        zone = settings.locale.default_timezone
        try:
            rows = await usage.usage(args.month, zone, args.subscriber)
        except stats.PeriodError as exc:
            raise admin.AdminError(f"--month: {exc}") from exc
        if args.subscriber is not None and not rows:
            raise admin.AdminError(f"no subscriber {args.subscriber}")
        await asyncio.to_thread(Path(args.csv).write_bytes, usage.to_csv(rows))
        print(f"{len(rows)} subscriber(s), {args.month}: {args.csv}")
        return 0

    try:
        return await _with_db(settings, export)
    except admin.AdminError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2


async def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """`report`: one subscriber's monthly PDF (its language; reports.font for non-Latin)."""
    from pathlib import Path

    from gateway.admin import report_pdf, stats

    async def write() -> int:
        subscriber = await Subscriber.get_or_none(id=args.subscriber)
        if subscriber is None:
            raise admin.AdminError(f"no subscriber {args.subscriber}")
        zone, font = settings.locale.default_timezone, settings.reports.font
        try:
            data = await report_pdf.report(
                args.month, zone, subscriber.id, subscriber.language, font
            )
        except stats.PeriodError as exc:
            raise admin.AdminError(f"--month: {exc}") from exc
        await asyncio.to_thread(Path(args.pdf).write_bytes, data)
        print(f"{subscriber.name}, {args.month}: {args.pdf}")
        return 0

    try:
        return await _with_db(settings, write)
    except admin.AdminError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2


async def cmd_deliveries(settings: Settings, args: argparse.Namespace) -> int:
    async def listing() -> int:
        query = Delivery.all().order_by("id")
        if args.status:
            query = query.filter(status=DeliveryStatus(args.status))
        for d in await query:
            print(
                f"{d.id}\t{d.kind}\t{d.channel}\t{d.address}\t{d.status.value}"
                f"\tattempts={d.attempts}\t{d.last_error}"
            )
        return 0

    return await _with_db(settings, listing)


def cmd_demo(args: argparse.Namespace) -> int:
    from demo.day import run_demo  # the demo alone needs the sandbox
    from demo.pbx import PbxUnavailable, find_launcher

    asterisk = None
    try:
        if args.asterisk and not args.pbx:
            raise PbxUnavailable("--asterisk is for demo --pbx")
        if args.pbx:
            asterisk = find_launcher(args.asterisk)
    except PbxUnavailable as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_demo(report_path=args.report, verbose=args.verbose, asterisk=asterisk))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frontdesk", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    config_help = "TOML config file (env FRONTDESK__SECTION__KEY overrides)"
    # `-c` also after a nested action (`subscriber add -c f.toml`); SUPPRESS keeps the outer one.
    late_config = argparse.ArgumentParser(add_help=False)
    late_config.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("-c", "--config", help=config_help)
        return cmd

    with_config("run", "run the gateway")
    with_config("migrate", "apply database migrations")
    demo = sub.add_parser("demo", help="play a short day against the sandbox")
    demo.add_argument("--report", help="write the JSON report to this file")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the gateway's logs")
    demo.add_argument(
        "--pbx", action="store_true", help="place the calls on a real private Asterisk"
    )
    demo.add_argument(
        "--asterisk",
        metavar="PATH",
        help="its launcher (`start STATE ETC`, `rx STATE CMD`); default $FRONTDESK_TEST_ASTERISK",
    )

    subscriber = with_config("subscriber", "manage subscribers")
    actions = subscriber.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="create a subscriber and print its link code", parents=[late_config]
    )
    add.add_argument("--name", required=True)
    add.add_argument("--ddi", action="append", required=True, help="DDI number (repeatable)")
    add.add_argument("--language", choices=LANGUAGES)
    add.add_argument("--timezone")
    add.add_argument(
        "--mobile", help="their own mobile: SMS commands, SMS, MMS, call back, forwarding"
    )
    add.add_argument("--instructions", default="", help="what agents should say")
    actions.add_parser("list", help="list subscribers", parents=[late_config])
    code = actions.add_parser("code", help="issue a new one-time link code", parents=[late_config])
    code.add_argument("id", type=int)
    contact = actions.add_parser(
        "set", help="set email, mobile and quiet hours", parents=[late_config]
    )
    contact.add_argument("id", type=int)
    contact.add_argument("--email", help="address for the email channel ('' removes it)")
    contact.add_argument(
        "--mobile", help="own mobile: SMS commands, SMS, MMS, call back, forwarding ('' removes it)"
    )
    contact.add_argument(
        "--forward", help="forward calls here instead of the mobile ('' = to the mobile again)"
    )
    contact.add_argument("--quiet", help="quiet hours HH:MM-HH:MM in their timezone ('' = none)")
    contact.add_argument("--pin", help="PIN (4-8 digits) for SMS commands; stored hashed")
    outbound = actions.add_parser(
        "outbound", help="show or set the outbound call policy", parents=[late_config]
    )
    outbound.add_argument("id", type=int)
    outbound.add_argument(
        "--allow", help="number classes it may call: national,mobile,international,premium"
    )
    route = actions.add_parser(
        "route", help="channels, in order, for one kind of event", parents=[late_config]
    )
    route.add_argument("id", type=int)
    route.add_argument("--kind", required=True, choices=KINDS)
    route.add_argument("--urgent", action="store_true", help="the route for urgent ones")
    route.add_argument(
        "--channels",
        required=True,
        help="in order, e.g. sms,telegram; '+' = at once: telegram+email,sms",
    )

    agent = with_config("agent", "manage the operator's staff: teams, agents, link codes")
    staff = agent.add_subparsers(dest="action", required=True)
    agent_add = staff.add_parser(
        "add", help="create a staff member and print their link code", parents=[late_config]
    )
    agent_add.add_argument("--name", required=True)
    agent_add.add_argument("--role", required=True, choices=["agent", "supervisor", "director"])
    agent_add.add_argument("--team", help="team name or id (required for an agent)")
    agent_add.add_argument(
        "--interface", help="their queue member interface, e.g. PJSIP/207 or Local/agent7@agents"
    )
    agent_add.add_argument("--queue", help="the queue they sign in to (default frontdesk-agents)")
    agent_add.add_argument("--language", choices=LANGUAGES)
    team_add = staff.add_parser("team", help="teams", parents=[late_config])
    team_actions = team_add.add_subparsers(dest="team_action", required=True)
    new_team = team_actions.add_parser("add", help="create a team", parents=[late_config])
    new_team.add_argument("name")
    new_team.add_argument("--supervisor", type=int, help="the staff id of who leads it")
    staff_code = staff.add_parser(
        "code", help="issue a new one-time link code", parents=[late_config]
    )
    staff_code.add_argument("id", type=int, help="staff id")
    staff.add_parser("list", help="list staff and their presence", parents=[late_config])

    admin_cmd = with_config("admin", "the operator's admins (then: /admin in the bot)")
    admins = admin_cmd.add_subparsers(dest="action", required=True)
    admin_add = admins.add_parser(
        "add", help="create an admin and print their link code", parents=[late_config]
    )
    admin_add.add_argument("--name", required=True)
    admin_add.add_argument("--language", choices=LANGUAGES)

    campaign = with_config("campaign", "call lists worked by agents from Telegram (/campaigns)")
    campaigns = campaign.add_subparsers(dest="action", required=True)
    campaign_add = campaigns.add_parser(
        "add", help="make a call list (contacts: --contact or import)", parents=[late_config]
    )
    campaign_add.add_argument("--subscriber", type=int, required=True, help="subscriber id")
    campaign_add.add_argument("--name", required=True)
    campaign_add.add_argument("--script", default="", help="what the agent reads")
    campaign_add.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    campaign_add.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
    worker = campaign_add.add_mutually_exclusive_group(required=True)
    worker.add_argument("--agent", type=int, help="the staff id of who works it")
    worker.add_argument("--team", type=int, help="the team id whose agents work it")
    campaign_add.add_argument(
        "--contact", action="append", help='"name,number" (repeatable), as a CSV line'
    )
    campaign_import = campaigns.add_parser(
        "import", help="add contacts from a CSV file (name,number)", parents=[late_config]
    )
    campaign_import.add_argument("id", type=int, help="call list id")
    campaign_import.add_argument("file", help="CSV file, UTF-8; a header row is optional")
    campaign_show = campaigns.add_parser(
        "show", help="a call list's counters and contacts", parents=[late_config]
    )
    campaign_show.add_argument("id", type=int, help="call list id")

    schedule = with_config("schedule", "office hours that switch the scenario by themselves")
    schedule_actions = schedule.add_subparsers(dest="action", required=True)
    schedule_set = schedule_actions.add_parser(
        "set", help="set weekly periods (replacing them), default, holidays", parents=[late_config]
    )
    schedule_set.add_argument("--subscriber", type=int, required=True, help="subscriber id")
    schedule_set.add_argument(
        "--weekdays", action="append", help="Monday-Friday HH:MM-HH:MM=scenario (repeatable)"
    )
    schedule_set.add_argument(
        "--period", action="append", help='"sat 10:00-13:00=agent", "mon,wed 14:00-18:00=voicemail"'
    )
    schedule_set.add_argument("--default", default="closed", help="outside periods (closed)")
    schedule_set.add_argument("--holidays", help="country code for public holidays, e.g. GR")
    schedule_set.add_argument("--announce", action="store_true", help="tell them of each switch")
    schedule_close = schedule_actions.add_parser(
        "close", help="one-off closed days (inclusive)", parents=[late_config]
    )
    schedule_close.add_argument("--subscriber", type=int, required=True, help="subscriber id")
    schedule_close.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
    schedule_close.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD")
    schedule_close.add_argument("--note", default="", help="why (shown to the subscriber)")
    schedule_show = schedule_actions.add_parser(
        "show", help="the schedule, what is due, recent switches", parents=[late_config]
    )
    schedule_show.add_argument("--subscriber", type=int, required=True, help="subscriber id")

    desk = with_config("desk", "the subscribers' web desk")
    desk_actions = desk.add_subparsers(dest="action", required=True)
    desk_link = desk_actions.add_parser(
        "link", help="print a fresh single-use login link", parents=[late_config]
    )
    desk_link.add_argument("--subscriber", type=int, required=True, help="subscriber id")

    message = with_config("message", "queue a message taken for a subscriber")
    message.add_argument("id", type=int, help="subscriber id")
    message.add_argument("--text", required=True)
    message.add_argument("--urgent", action="store_true", help="never held; escalates")
    message.add_argument("--caller", help="the caller's number")
    message.add_argument("--caller-name", help="the caller's name")
    message.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to keep trying while the database is locked (default 60)",
    )

    international = with_config("international", "list the month's international calls")
    international.add_argument("--month", help="YYYY-MM (default: this month)")

    usage_cmd = with_config("usage", "the month's usage per subscriber, as CSV")
    usage_cmd.add_argument("--month", required=True, help="YYYY-MM (operator's time zone)")
    usage_cmd.add_argument("--subscriber", type=int, help="one subscriber's row only")
    usage_cmd.add_argument("--csv", required=True, help="file to write")
    report_cmd = with_config("report", "a subscriber's monthly report, as PDF")
    report_cmd.add_argument("--month", required=True, help="YYYY-MM (operator's time zone)")
    report_cmd.add_argument("--subscriber", type=int, required=True)
    report_cmd.add_argument("--pdf", required=True, help="file to write")

    deliveries = with_config("deliveries", "list outbox rows")
    deliveries.add_argument("--status", choices=[s.value for s in DeliveryStatus])
    return p


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "run": cmd_run,
    "migrate": cmd_migrate,
    "subscriber": cmd_subscriber,
    "deliveries": cmd_deliveries,
    "usage": cmd_usage,
    "report": cmd_report,
    "message": cmd_message,
    "agent": cmd_agent,
    "admin": cmd_admin,
    "international": cmd_international,
    "campaign": cmd_campaign,
    "schedule": cmd_schedule,
    "desk": cmd_desk,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "demo":
        return cmd_demo(args)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        result: Any = asyncio.run(COMMANDS[args.command](settings, args))
    except (ConfigError, admin.AdminError, InvalidNumber) as exc:
        print(f"frontdesk: {exc}", file=sys.stderr)
        return 2
    except Exception:
        # Through logging, so the traceback is redacted (InvalidToken quotes the token).
        log.exception("frontdesk %s failed", args.command)
        return 1
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
