"""The gateway's running parts wired together: AMI in, tracker, router, outbox, web.

Start order: database, web, outbox, AMI (so nothing the PBX says is dropped for want of a
consumer); stop order is the reverse, letting the router drain what the tracker emitted.

Every background loop (router, escalate, revert, expire, voicemail scan, outbox) runs under
a Supervisor: a failed round is logged and retried after a capped backoff, a loop task that
ends is restarted, and `/healthz` names a loop that is failing or dead (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from tortoise.transactions import in_transaction

from gateway.admin import health as incidents
from gateway.admin.health import HealthMonitor
from gateway.admin.menus import AdminDesk
from gateway.admin.usage import CHECK_EVERY, MonthlyUsage
from gateway.calls import restore
from gateway.calls.router import Router
from gateway.calls.tracker import CallTracker
from gateway.campaigns.desk import CampaignDesk
from gateway.control.inbound import InboundDesk
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from gateway.delivery.outbox import Outbox
from gateway.delivery.receipts import Receipts
from gateway.fax.desk import FaxDesk
from gateway.http import build_app
from gateway.leadership import AdvisoryLockLeader, Leadership, SoleLeader, is_postgres
from gateway.metrics import Metrics, Sources
from gateway.pbx import journal
from gateway.pbx.actions import Pbx
from gateway.pbx.client import AmiClient, PbxRun
from gateway.pbx.errors import PbxUnavailable
from gateway.pbx.translate import AmiTranslator
from gateway.pbx.wire import Frame
from gateway.reminders.desk import ROUND_EVERY, Reminders
from gateway.reminders.inbound import ReminderInbound
from gateway.renderers import RENDERERS
from gateway.schedule.switcher import ROUND_EVERY as SCHEDULE_EVERY
from gateway.schedule.switcher import Switcher
from gateway.staff.cards import CardDesk
from gateway.staff.conversation import Conversations
from gateway.staff.monitor import Monitor
from gateway.staff.presence import PresenceDesk
from gateway.staff.tasks import Tasks
from gateway.staff.transfer import Transfers
from gateway.supervise import LoopReport, Supervisor, database_unavailable, repeat
from gateway.voicemail.spool import VoicemailDesk
from gateway.voicemail.transcription import Transcriber
from gateway.web.app import WebDesk
from models.db import Delivery, DeliveryStatus, Notification
from models.events import CallFinished, CallSnapshot, VoicemailWaiting
from models.settings import Settings
from models.vocab import Channel
from notifiers.base import DeliveryReport, InboundMessage, ManagedNotifier, Notifier
from notifiers.email.inbound import MailIn

log = logging.getLogger(__name__)

ROUTE_BATCH = 200  # snapshots routed per transaction when a burst arrives
BOOT_WAIT = 2.0  # how long a login waits for Asterisk's FullyBooted (it follows the login)
EXPIRE_EVERY = 300.0  # seconds between sweeps of calls whose hangup was lost
CARDS_DRAIN = 3.0  # seconds a stop waits for screen-pop cards being sent or edited
HEALTH_DB_WAIT = 2.0  # /healthz answers without counts rather than wait on a locked database


def _describe(run: PbxRun | None) -> str:
    if run is None:
        return "logged in (Asterisk's uptime unknown)"
    if run.restarted is None:
        return f"logged in (Asterisk up {run.uptime}s)"
    if run.restarted:
        return f"logged in after an Asterisk restart (up {run.uptime}s)"
    return f"reconnected to the same Asterisk run (up {run.uptime}s)"


class Gateway:
    def __init__(self, settings: Settings, notifiers: Mapping[str, Notifier] | None = None) -> None:
        self.settings = settings
        self.translator = AmiTranslator(settings.ami.userevent_prefix)
        self._snapshots: asyncio.Queue[CallSnapshot] = asyncio.Queue()
        # Screen-pop cards follow the same snapshots on a queue of their own (the router is
        # not slowed); they need a sender (bot/runtime.py sets Telegram's) to show anything.
        self.cards = CardDesk(settings.locale.default_region)
        self.tracker = CallTracker(self._tracked)
        # The channels this gateway can use; routes skip the others.
        self.notifiers: dict[str, Notifier] = dict(notifiers or {})
        self.receipts = Receipts(on_failed=self._fall_back)
        self.supervisor = Supervisor()
        self.outbox = Outbox(
            self.notifiers,
            settings.outbox,
            on_give_up=self._fall_back,
            on_parts=self.receipts.store_parts,
            on_parts_stored=self.receipts.settled_after_send,
            report=self.supervisor.report("outbox"),
        )
        self.notices = Notices(
            self.notifiers.keys(), settings.routing, on_new=self.outbox.wake, renderers=RENDERERS
        )
        # Day-before reminders to end customers; their replies are taken before the desk's.
        self.reminders = Reminders(
            self.notices,
            settings.reminders,
            self.notifiers.keys(),
            settings.locale.default_region,
            on_new=self.outbox.wake,
        )
        self.inbound: InboundDesk = ReminderInbound(self.notices, self.reminders)
        self.transcriber = Transcriber(settings.transcription)
        self.voicemail = VoicemailDesk(
            settings.voicemail, self.notices, self.transcriber, settings.locale.default_region
        )
        self.router = Router(self.notices, settings.locale.default_region)
        # One gateway of those sharing a PostgreSQL database leads: it alone takes the PBX's
        # events (the others log in to AMI for actions only); with SQLite, this one.
        self.leader: Leadership = (
            AdvisoryLockLeader(
                settings.database.url,
                self._elected,
                self._deposed,
                settings.database.leader_poll,
                report=self.supervisor.report("leader"),
            )
            if is_postgres(settings.database.url)
            else SoleLeader()
        )
        self._leads = asyncio.Event()  # set while leading: the leader's rounds wait on it
        if self.leader.leading:
            self._leads.set()
        self.ami = AmiClient(
            settings.ami,
            self.on_frame,
            wanted_events=self.translator.event_names,
            on_connected=self._on_ami_connected,
            consuming=self.leader.leading,
        )
        self._syncing = asyncio.Lock()  # a login and a new lead never sync at once
        # Told True when this gateway takes the lead and False when it steps down (the bot
        # polls Telegram only while leading: a bot token has one getUpdates consumer).
        self.on_leading: list[Callable[[bool], Awaitable[None]]] = []
        self.pbx = Pbx(self.ami)
        # Agents on the queue: kept in step with the PBX's QueueMember* events and, on
        # every login, its QueueStatus (the PBX is the truth for membership and pause).
        self.presence = PresenceDesk(self.pbx, settings.locale.default_timezone)
        # Tasks (reminders and escalation run in the `tasks` loop, on `tasks.clock`) and
        # the guided exchanges in which staff take messages and make tasks.
        self.tasks = Tasks(self.pbx, on_new=self.outbox.wake, region=settings.locale.default_region)
        self.conversations = Conversations(self.notices, self.tasks, settings.locale.default_region)
        # Call lists worked from the agents' chats (Next: Originate agent first, as tasks).
        self.campaigns = CampaignDesk(self.pbx, region=settings.locale.default_region)
        self.control = Control(
            self.pbx,
            ringing=lambda: self.tracker.calls.values(),
            on_moved=self.tracker.moved,
            region=settings.locale.default_region,
        )
        # Office-hours schedules switch scenarios through the same Control as commands.
        self.schedule = Switcher(self.control, self.notices)
        # The admins' menus: every subscriber or DDI change goes to AstDB at once.
        self.admin = AdminDesk(
            self.control.push_lines,
            settings.locale.default_region,
            settings.locale.default_timezone,
        )
        # Agents putting live calls through from their cards; supervisors listening in.
        self.transfers = Transfers(
            self.pbx, self.tracker.calls.get, self.notices, region=settings.locale.default_region
        )
        self.monitor = Monitor(self.pbx, lambda: self.tracker.calls.values())
        self.faxes = FaxDesk(self.notices, settings.locale.default_region)
        # Last month's usage CSV to the operator's reports.email on the 1st (operator's time
        # zone), through the outbox: the `reports` loop, on `reports.clock`; off without one.
        self.reports = MonthlyUsage(
            settings.reports.email.split(","),
            settings.locale.default_timezone,
            settings.locale.default_language,
            on_new=self.outbox.wake,
        )
        self.mail_in = MailIn(settings.mail_in, self.on_inbound)
        # /metrics and the components of /healthz (its own registry: one per gateway).
        self.metrics = Metrics(
            settings,
            self.notifiers,
            Sources(
                ami_connected=self.ami.connected.is_set,
                ami_stats=lambda: self.ami.parsers[-1].stats if self.ami.parsers else None,
                calls_in_progress=lambda: len(self.tracker.calls),
                transcription_queue=lambda: self.transcriber.queued,
            ),
        )
        self.outbox.send_observers.append(self.metrics.sent)
        self.web = build_app(
            self.health, self.on_report, settings.fax, self.faxes.on_fax, metrics=self.metrics.page
        )
        # The subscribers' web desk (/desk), on when web.session_secret is set.
        self.desk_web: WebDesk | None = None
        if settings.web.session_secret:
            self.desk_web = WebDesk(
                settings.web,
                self.control,
                self.notices,
                self.web_base_url,
                settings.locale.default_region,
                settings.locale.default_language,
            )
            self.desk_web.install(self.web)
        self._runner: web.AppRunner | None = None
        # Told of every call snapshot once it is routed (the demo and tests wait on these).
        self.observers: list[Callable[[CallSnapshot], None]] = [self.metrics.routed]
        self.http_port: int | None = None
        # AMI logins after which calls were reconciled and AstDB re-asserted: what the PBX
        # knows agrees with us again (tests and the demo wait on it after a PBX restart).
        self.pbx_syncs = 0
        self._synced = asyncio.Condition()
        # Health alerts to admins (gateway/admin/health.py): the links, failing sends and
        # dead deliveries (the outbox's outcomes), the backlog; checked in the `health` loop.
        self.incidents = HealthMonitor(
            settings.health,
            self.notices,
            probes=[self._links, lambda: incidents.backlog(settings.health)],
        )
        self.outbox.observers.append(self.incidents.outcome)

    def add_notifier(self, notifier: Notifier) -> None:
        self.notifiers[notifier.channel] = notifier

    def web_base_url(self) -> str:
        """Where the web desk's links point: web.base_url, else this gateway's own port."""
        port = self.http_port or self.settings.http.port
        return self.settings.web.base_url or f"http://127.0.0.1:{port}"

    async def _links(self) -> dict[str, str]:
        """The health probe of the links: AMI logged in, the SMSC bound (when configured)."""
        bad = {}
        if not self.ami.connected.is_set():
            s = self.settings.ami
            bad[incidents.AMI] = f"not logged in to {s.host}:{s.port}"
        sms = self.notifiers.get(Channel.SMS)
        if sms is not None and getattr(sms, "is_bound", True) is False:
            s2 = self.settings.smpp
            bad[incidents.SMPP] = f"not bound to {s2.host}:{s2.port}"
        return bad

    async def _fall_back(self, delivery: Delivery, reason: str) -> None:
        # One transaction: a crash must not leave the hop counted and its rows unwritten.
        async with in_transaction():
            await self.notices.fall_back(delivery.notification_id, reason)  # type: ignore[attr-defined]

    async def on_report(self, report: DeliveryReport) -> None:
        """A channel's delivery report (SMS receipt, MM7 DeliveryReportReq)."""
        await self.receipts.on_report(report)

    async def on_inbound(self, message: InboundMessage) -> None:
        await self.inbound.receive(message)

    def _tracked(self, snap: CallSnapshot) -> None:
        self._snapshots.put_nowait(snap)
        self.cards.see(snap)

    def on_frame(self, frame: Frame) -> None:
        event = self.translator.translate(frame)
        if event is None:  # not a call's: maybe an agent's presence on the queue
            if (member := self.translator.member_event(frame)) is not None:
                self.presence.feed(member)
            return
        self.tracker.handle(event)
        if isinstance(event, VoicemailWaiting) and event.new:
            self.voicemail.poke(event.mailbox)

    async def _on_ami_connected(self) -> None:
        if self.leader.leading:  # a standby logs in for actions only: nothing to sync
            await self._sync_with_pbx()

    async def _elected(self) -> None:
        """This gateway leads now (its predecessor died or stepped down): take the PBX's
        events and catch up with the calls, as after a login. Not connected: the login
        to come asks for events and syncs."""
        self._leads.set()
        # The calls first, then their events: none is dropped for a call not known yet.
        self.tracker.restore(await restore.unfinished_calls())
        await self._tell_leading(True)
        if not self.ami.connected.is_set():
            self.ami.want_events(True)
            return
        try:
            await self.ami.consume(True)
        except PbxUnavailable as exc:  # the link went meanwhile: its next login syncs
            log.warning("taking the PBX's events at once failed (%s): at the next login", exc)
            return
        await self._sync_with_pbx()

    async def _deposed(self) -> None:
        """Another gateway may lead now: stop taking events; its tracker has the calls."""
        self._leads.clear()
        self.ami.want_events(False)
        with contextlib.suppress(PbxUnavailable):
            await self.ami.consume(False)
        self.tracker.forget_all()
        await self._tell_leading(False)

    async def _tell_leading(self, leading: bool) -> None:
        for told in self.on_leading:
            try:
                await told(leading)
            except Exception:  # a part that cannot follow must not stop the change
                log.exception(
                    "telling a part this gateway %s failed", "leads" if leading else "stepped down"
                )

    async def _sync_with_pbx(self) -> None:
        async with self._syncing:
            await self._sync_locked()

    async def _sync_locked(self) -> None:
        try:
            # What a dead process (or leader) was following, back from the database first.
            taken = self.tracker.restore(await restore.unfinished_calls())
            if taken:
                log.info("%d unfinished call(s) taken back from the database", taken)
            await self.reconcile()
        except Exception:
            log.exception("reconciling calls with the PBX failed; they expire in time")
        try:
            await self.presence.resync()
        except PbxUnavailable as exc:
            log.warning("cannot read the queue members (%s): agents' presence kept", exc)
        except Exception:
            log.exception("bringing agents' presence in step with the PBX failed")
        await self.control.reassert_all()
        self.incidents.wake()  # the link is back: the health loop looks now
        self.pbx_syncs += 1
        async with self._synced:
            self._synced.notify_all()

    async def wait_synced(self, after: int, timeout: float) -> None:
        """Until a login later than the `after`-th one has been fully synced."""
        async with asyncio.timeout(timeout), self._synced:
            await self._synced.wait_for(lambda: self.pbx_syncs > after)

    async def reconcile(self) -> int:
        """After a login, end the tracked calls the PBX no longer has (their hangups were
        lost: a restart or crash, or a disconnect) and re-read the channels of the others.
        Returns how many calls were ended."""
        run = await self.ami.pbx_run(BOOT_WAIT)
        before = self.tracker.channel_view()
        try:
            live = await self.pbx.live_calls()
        except PbxUnavailable as exc:
            if run is None or not run.restarted:
                log.warning("AMI %s; cannot list channels (%s): calls kept", _describe(run), exc)
                return 0
            live = {}  # a restart ended every call it had, listed or not
        ends = await self._journalled_ends()
        ended = self.tracker.reconcile(live, before, {lid: end for lid, (_, end) in ends.items()})
        await self._prune_journal(ends)
        log.info(
            "AMI %s: %d call(s) tracked, %d ended as gone from the PBX (%d ends journalled)",
            _describe(run),
            len(before),
            ended,
            len(ends),
        )
        return ended

    async def _journalled_ends(self) -> dict[str, tuple[float, CallFinished]]:
        try:
            return await journal.read(self.pbx)
        except PbxUnavailable as exc:  # an AMI user without DBGetTree: ends stay unknown
            log.warning("cannot read the calls' end journal (%s)", exc)
            return {}

    async def _prune_journal(self, ends: dict[str, tuple[float, CallFinished]]) -> None:
        """Entries of calls the database has ended are done with."""
        if ends:
            await journal.prune(self.pbx, ends, await restore.ended_linkedids(ends))

    async def _tidy_journal(self) -> None:
        if self.leader.leading and self.ami.connected.is_set():
            await self._prune_journal(await self._journalled_ends())

    async def _route_forever(self) -> None:
        report = self.supervisor.report("router")
        while True:
            batch = [await self._snapshots.get()]
            while len(batch) < ROUTE_BATCH and not self._snapshots.empty():
                batch.append(self._snapshots.get_nowait())
            try:
                await self._route(batch, report)
            finally:
                for _ in batch:
                    self._snapshots.task_done()

    async def _route(self, batch: list[CallSnapshot], report: LoopReport) -> None:
        while True:
            try:
                await self.router.on_calls(batch)
            except Exception as exc:
                if database_unavailable(exc):
                    # Locked by another writer: the same batch goes through later, whole.
                    await asyncio.sleep(report.failed(exc))
                    continue
                # One bad call must not sink the batch: route the rest one by one.
                log.exception("routing a batch of %d failed; retrying one by one", len(batch))
                for snap in batch:
                    await self._route_one(snap)
            break
        report.ok()
        for snap in batch:
            for observe in self.observers:
                observe(snap)

    async def _route_one(self, snap: CallSnapshot) -> None:
        try:
            await self.router.on_calls([snap])
        except Exception:
            log.exception("routing call %s failed", snap.linkedid)

    async def _idle_poll(self) -> None:
        await asyncio.sleep(self.settings.outbox.idle_poll)

    async def _revert_due(self) -> None:
        """Timed scenarios ("closed until 18:00") return by themselves."""
        if self.ami.connected.is_set():  # else the reconnect re-asserts AstDB anyway
            await self.control.revert_due(datetime.now(UTC))

    async def _schedule_round(self) -> None:
        """Office hours switch the scenario at their boundaries (gateway/schedule)."""
        if self.ami.connected.is_set():  # else the reconnect re-asserts; switched after
            await self.schedule.round(self.schedule.clock())

    async def _expire(self) -> None:
        self.tracker.expire(max_idle=4 * 3600)

    async def recover_fallbacks(self) -> int:
        """A crash between storing a failure and creating its fallback left a notification
        with nothing alive and hops left: move it on now. Returns how many were."""
        since = datetime.now(UTC) - 2 * timedelta(seconds=self.settings.outbox.give_up_after)
        ids = set(
            await Delivery.filter(
                status__in=(DeliveryStatus.FAILED, DeliveryStatus.DEAD),
                notification_id__isnull=False,
                created_at__gte=since,
            ).values_list("notification_id", flat=True)
        )
        moved = 0
        for n in await Notification.filter(id__in=ids).only("id", "route", "next_hop"):
            if n.next_hop < len(n.route):
                async with in_transaction():
                    moved += bool(await self.notices.fall_back(n.id, "after a restart"))
        if moved:
            log.warning("%d notification(s) moved on to their next channel after a restart", moved)
        return moved

    def _when_leading(self, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """A round that one gateway of several does (reminders, escalation, the monthly
        report, health alerts): the leader's. The others wait for the lead, so that a new
        leader's first round runs at once, not a whole pause after its election."""

        async def round_() -> None:
            await self._leads.wait()
            await job()

        return round_

    def _supervise(self) -> None:
        sup, report, poll = self.supervisor, self.supervisor.report, self._idle_poll
        lead = self._when_leading
        sup.start("leader", self.leader.run)
        if self.voicemail.enabled:
            # The first scan finds what was left while we were down.
            interval = self.settings.voicemail.scan_interval
            sup.start(
                "voicemail",
                lambda: repeat(
                    report("voicemail"), lead(self.voicemail.scan), lambda: asyncio.sleep(interval)
                ),
            )
        sup.start(
            "escalate", lambda: repeat(report("escalate"), lead(self.notices.escalate_due), poll)
        )
        sup.start("revert", lambda: repeat(report("revert"), lead(self._revert_due), poll))
        sup.start("tasks", lambda: repeat(report("tasks"), lead(self.tasks.due), poll))
        sup.start(
            "schedule",
            lambda: repeat(
                report("schedule"),
                lead(self._schedule_round),
                lambda: asyncio.sleep(SCHEDULE_EVERY),
            ),
        )
        if self.settings.reminders.enabled:
            sup.start(
                "reminders",
                lambda: repeat(
                    report("reminders"),
                    lead(self.reminders.tick),
                    lambda: asyncio.sleep(ROUND_EVERY),
                ),
            )
        sup.start("router", self._route_forever)
        monitor = self.incidents
        sup.start("health", lambda: repeat(report("health"), lead(monitor.check), monitor.pause))
        if self.reports.enabled:
            sup.start(
                "reports",
                lambda: repeat(
                    report("reports"), lead(self.reports.due), lambda: asyncio.sleep(CHECK_EVERY)
                ),
            )
        sup.start(
            "journal",
            lambda: repeat(report("journal"), self._tidy_journal, lambda: asyncio.sleep(3600)),
        )
        sup.start("cards", self.cards.run)
        sup.start("presence", self.presence.run)
        sup.start("outbox", self.outbox.run)
        sup.start(
            "expire",
            lambda: repeat(report("expire"), self._expire, lambda: asyncio.sleep(EXPIRE_EVERY)),
        )

    async def start(self) -> None:
        self._runner = web.AppRunner(self.web)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http.host, self.settings.http.port)
        await site.start()
        # The port bound (the configured one, or the one the OS chose for port 0).
        addresses = self._runner.addresses
        self.http_port = addresses[0][1] if addresses else self.settings.http.port
        for notifier in self.notifiers.values():
            if isinstance(notifier, ManagedNotifier):
                await notifier.start()
        if self.voicemail.enabled:
            await self.transcriber.start()
        try:
            await self.recover_fallbacks()
        except Exception:  # the database may be busy; the next start tries again
            log.exception("recovering fallbacks after a restart failed")
        self._supervise()
        await self.mail_in.start()
        await self.ami.start()
        log.info("gateway up: http on %s:%s", self.settings.http.host, self.http_port)

    async def drain(self) -> None:
        """Wait until every call event seen so far has been routed."""
        await self._snapshots.join()

    async def stop(self) -> None:
        await self.ami.stop()
        await asyncio.wait_for(self.drain(), 10)
        # Our calls' last changes are written: a standby may lead now, at once.
        with contextlib.suppress(Exception):
            await self.leader.release()
        with contextlib.suppress(TimeoutError):  # cards being edited get their edit
            await asyncio.wait_for(self.cards.drain(), CARDS_DRAIN)
        self.outbox.stop()
        others = [name for name in self.supervisor.states() if name != "outbox"]
        await self.supervisor.stop(names=others)
        await self.supervisor.stop(cancel=False, names=["outbox"])  # it finishes its sends
        await self.mail_in.stop()
        await self.voicemail.stop()
        if self.voicemail.enabled:
            await self.transcriber.stop()
        for notifier in self.notifiers.values():
            if isinstance(notifier, ManagedNotifier):
                await notifier.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    async def health(self) -> dict[str, Any]:
        loops = self.supervisor.states()
        parser = self.ami.parsers[-1] if self.ami.parsers else None
        # AMI, the database and each configured channel's peer: one failing is a 503.
        components = await self.metrics.components()
        healthy = all(c.ok for c in components.values())
        return {
            "ok": self.ami.connected.is_set() and self.supervisor.healthy() and healthy,
            "ami_connected": self.ami.connected.is_set(),
            # This gateway takes the PBX's events (of several on one PostgreSQL, one does).
            "leader": self.leader.leading,
            "loops": loops,
            "loop_restarts": self.supervisor.restarts(),
            "calls_in_progress": len(self.tracker.calls),
            # AMI logins fully synced (reconciled and AstDB re-asserted): benchmarks wait on it.
            "pbx_syncs": self.pbx_syncs,
            "channels": sorted(self.notifiers),
            "deliveries": await self._delivery_counts(),
            "ami_frames": parser.stats.frames if parser else 0,
            "ami_malformed": parser.stats.malformed if parser else 0,
            "incidents": self.incidents.open_keys(),
            "components": {name: c.as_json() for name, c in components.items()},
        }

    async def _delivery_counts(self) -> dict[str, int] | None:
        """Rows per status; None when the database does not answer in time (locked)."""
        try:
            async with asyncio.timeout(HEALTH_DB_WAIT):
                return {
                    status.value: await Delivery.filter(status=status).count()
                    for status in DeliveryStatus
                }
        except Exception as exc:
            log.warning("health: delivery counts unavailable: %r", exc)
            return None
