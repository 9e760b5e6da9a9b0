"""The gateway's running parts wired together: AMI in, tracker, router, outbox, web.

Start order: database, web, outbox, AMI (so nothing the PBX says is dropped for want of a
consumer); stop order is the reverse, letting the router drain what the tracker emitted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.ami import AmiActionError, AmiClient, AmiUnavailable, PbxRun
from gateway.ami_translate import AmiTranslator, live_calls
from gateway.ami_wire import Frame
from gateway.control import Control
from gateway.faxes import FaxDesk
from gateway.inbound import InboundDesk
from gateway.mail_in import MailIn
from gateway.notices import Notices
from gateway.outbox import Outbox
from gateway.receipts import Receipts
from gateway.router import Router
from gateway.tracker import CallTracker
from gateway.transcription import Transcriber
from gateway.voicemail import VoicemailDesk
from gateway.web import build_app
from models.db import Delivery, DeliveryStatus
from models.events import CallSnapshot, VoicemailWaiting
from models.settings import Settings
from notifiers.base import DeliveryReport, InboundMessage, ManagedNotifier, Notifier

log = logging.getLogger(__name__)

ROUTE_BATCH = 200  # snapshots routed per transaction when a burst arrives
BOOT_WAIT = 2.0  # how long a login waits for Asterisk's FullyBooted (it follows the login)


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
        self.tracker = CallTracker(self._snapshots.put_nowait)
        # The channels this gateway can use; routes skip the others.
        self.notifiers: dict[str, Notifier] = dict(notifiers or {})
        self.receipts = Receipts(on_failed=self._fall_back)
        self.outbox = Outbox(
            self.notifiers,
            settings.outbox,
            on_give_up=self._fall_back,
            on_parts=self.receipts.parts_sent,
        )
        self.notices = Notices(self.notifiers.keys(), settings.routing, on_new=self.outbox.wake)
        self.inbound = InboundDesk(self.notices)
        self.transcriber = Transcriber(settings.transcription)
        self.voicemail = VoicemailDesk(
            settings.voicemail, self.notices, self.transcriber, settings.locale.default_region
        )
        self.router = Router(self.notices, settings.locale.default_region)
        self.ami = AmiClient(
            settings.ami,
            self.on_frame,
            wanted_events=self.translator.event_names,
            on_connected=self._on_ami_connected,
        )
        self.control = Control(
            self.ami, ringing=lambda: self.tracker.calls.values(), on_moved=self.tracker.moved
        )
        self.faxes = FaxDesk(self.notices, settings.locale.default_region)
        self.mail_in = MailIn(settings.mail_in, self.on_inbound)
        self.web = build_app(self.health, self.on_report, settings.fax, self.faxes.on_fax)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        # Told of every call snapshot once it is routed (the demo and tests wait on these).
        self.observers: list[Callable[[CallSnapshot], None]] = []
        self.http_port: int | None = None
        # AMI logins after which calls were reconciled and AstDB re-asserted: what the PBX
        # knows agrees with us again (tests and the demo wait on it after a PBX restart).
        self.pbx_syncs = 0
        self._synced = asyncio.Condition()

    def add_notifier(self, notifier: Notifier) -> None:
        self.notifiers[notifier.channel] = notifier

    async def _fall_back(self, delivery: Delivery, reason: str) -> None:
        await self.notices.fall_back(delivery.notification_id, reason)  # type: ignore[attr-defined]

    async def on_report(self, report: DeliveryReport) -> None:
        """A channel's delivery report (SMS receipt, MM7 DeliveryReportReq)."""
        await self.receipts.on_report(report)

    async def on_inbound(self, message: InboundMessage) -> None:
        await self.inbound.receive(message)

    def on_frame(self, frame: Frame) -> None:
        event = self.translator.translate(frame)
        if event is not None:
            self.tracker.handle(event)
            if isinstance(event, VoicemailWaiting) and event.new:
                self.voicemail.poke(event.mailbox)

    async def _on_ami_connected(self) -> None:
        try:
            await self.reconcile()
        except Exception:
            log.exception("reconciling calls with the PBX failed; they expire in time")
        await self.control.reassert_all()
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
            rows = await self.ami.send_list_action({"Action": "CoreShowChannels"})
        except (AmiUnavailable, AmiActionError) as exc:
            if run is None or not run.restarted:
                log.warning("AMI %s; cannot list channels (%s): calls kept", _describe(run), exc)
                return 0
            rows = []  # a restart ended every call it had, listed or not
        ended = self.tracker.reconcile(live_calls(rows), before)
        log.info(
            "AMI %s: %d call(s) tracked, %d ended as gone from the PBX",
            _describe(run),
            len(before),
            ended,
        )
        return ended

    async def _route_forever(self) -> None:
        while True:
            batch = [await self._snapshots.get()]
            while len(batch) < ROUTE_BATCH and not self._snapshots.empty():
                batch.append(self._snapshots.get_nowait())
            try:
                await self._route(batch)
            finally:
                for _ in batch:
                    self._snapshots.task_done()

    async def _route(self, batch: list[CallSnapshot]) -> None:
        try:
            await self.router.on_calls(batch)
        except Exception:
            # One bad call must not sink the batch: route the rest one by one.
            log.exception("routing a batch of %d failed; retrying one by one", len(batch))
            for snap in batch:
                try:
                    await self.router.on_calls([snap])
                except Exception:
                    log.exception("routing call %s failed", snap.linkedid)
        for snap in batch:
            for observe in self.observers:
                observe(snap)

    async def _revert_forever(self) -> None:
        """Timed scenarios ("closed until 18:00") return by themselves."""
        while True:
            await asyncio.sleep(self.settings.outbox.idle_poll)
            if not self.ami.connected.is_set():
                continue  # AstDB cannot be told; the reconnect re-asserts the database anyway
            try:
                await self.control.revert_due(datetime.now(UTC))
            except Exception:
                log.exception("scenario revert round failed; next round retries")

    async def _escalate_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.outbox.idle_poll)
            try:
                await self.notices.escalate_due()
            except Exception:
                log.exception("escalation round failed; next round retries")

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(300)
            self.tracker.expire(max_idle=4 * 3600)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.web)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http.host, self.settings.http.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else self.settings.http.port
        for notifier in self.notifiers.values():
            if isinstance(notifier, ManagedNotifier):
                await notifier.start()
        if self.voicemail.enabled:
            await self.transcriber.start()
            # The first scan finds what was left while we were down.
            self._tasks.append(asyncio.create_task(self.voicemail.run(), name="voicemail"))
        self._tasks += [
            asyncio.create_task(self._escalate_forever(), name="escalate"),
            asyncio.create_task(self._revert_forever(), name="revert"),
            asyncio.create_task(self._route_forever(), name="router"),
            asyncio.create_task(self.outbox.run(), name="outbox"),
            asyncio.create_task(self._expire_forever(), name="expire"),
        ]
        await self.mail_in.start()
        await self.ami.start()
        log.info("gateway up: http on %s:%s", self.settings.http.host, self.http_port)

    async def drain(self) -> None:
        """Wait until every call event seen so far has been routed."""
        await self._snapshots.join()

    async def stop(self) -> None:
        await self.ami.stop()
        await asyncio.wait_for(self.drain(), 10)
        self.outbox.stop()
        for task in self._tasks:
            if task.get_name() != "outbox":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
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
        counts = {
            status.value: await Delivery.filter(status=status).count() for status in DeliveryStatus
        }
        parser = self.ami.parsers[-1] if self.ami.parsers else None
        return {
            "ok": self.ami.connected.is_set(),
            "ami_connected": self.ami.connected.is_set(),
            "calls_in_progress": len(self.tracker.calls),
            "channels": sorted(self.notifiers),
            "deliveries": counts,
            "ami_frames": parser.stats.frames if parser else 0,
            "ami_malformed": parser.stats.malformed if parser else 0,
        }
