"""The whole running service: the gateway plus the Telegram bot, on one event loop.

python-telegram-bot's Application runs beside our aiohttp server on the same loop; it
polls getUpdates (the default), or with telegram.mode = "webhook" takes the updates
Telegram posts to a route on our own app (bot/webhook.py: several instances behind one
address), and paces what it sends under Telegram's flood limits (TelegramPacer).
Updates of different chats are processed at once (one chat's in order, bot/updates.py),
so a chat waiting on a slow PBX stalls no other; an error escaping a handler is logged
and answered (bot/handlers.on_error).
"""

from __future__ import annotations

import logging
from typing import Any

from telegram.ext import Application

from bot import (
    admin,
    console,
    desk_link,
    handlers,
    policy,
    reports,
    staff,
    staff_calls,
    staff_desk,
)
from bot import campaigns as campaign_buttons
from bot.menus import publish_menus
from bot.updates import OnePerChat
from bot.webhook import TelegramWebhook
from gateway.admin.console import Console
from gateway.admin.report_desk import ReportDesk
from gateway.app import Gateway
from gateway.control.desk import CommandDesk
from models.database import close_db, open_db
from models.settings import ConfigError, Settings
from models.vocab import Channel
from notifiers.email.outbound import EmailNotifier
from notifiers.mms import reports as mm7_hook
from notifiers.mms.client import MmsNotifier
from notifiers.sms.channel import SmsNotifier
from notifiers.telegram import TelegramCards, TelegramNotifier
from notifiers.telegram_pacing import TelegramPacer

log = logging.getLogger(__name__)

# Updates processed at once (0: one by one, as python-telegram-bot does by default).
CONCURRENT_UPDATES = 64


def build_application(settings: Settings) -> Application[Any, Any, Any, Any, Any, Any]:
    t = settings.telegram
    if not t.token:
        raise ConfigError("config key telegram.token: required (or FRONTDESK__TELEGRAM__TOKEN)")
    builder = (
        Application.builder()
        .token(t.token)
        .base_url(t.base_url)
        .base_file_url(t.base_file_url)
        .rate_limiter(TelegramPacer(t.send_rate, chat_per_second=t.chat_rate))
        .concurrent_updates(OnePerChat(CONCURRENT_UPDATES) if CONCURRENT_UPDATES else False)
    )
    if t.mode == "webhook":  # no getUpdates: bot/webhook.py feeds the update queue
        builder = builder.updater(None)
    return builder.build()


def add_channels(settings: Settings, gateway: Gateway) -> None:
    """Every channel whose section is configured (smtp.host, smpp.host, mms.url)."""
    if settings.smtp.host:
        gateway.add_notifier(EmailNotifier(settings.smtp))
    if settings.smpp.host:
        gateway.add_notifier(SmsNotifier(settings.smpp, gateway.on_report, gateway.on_inbound))
    if settings.mms.url:
        gateway.add_notifier(MmsNotifier(settings.mms))
        mm7_hook.install(gateway.web, settings.mms)  # the MMSC's reports: who may post them


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.application = build_application(settings)
        self.gateway = Gateway(settings, {Channel.TELEGRAM: TelegramNotifier(self.application.bot)})
        add_channels(settings, self.gateway)
        self.webhook: TelegramWebhook | None = None
        if settings.telegram.mode == "webhook":
            self.webhook = TelegramWebhook(self.application, settings.telegram)
            self.webhook.install(self.gateway.web)  # beside /healthz, on its port
        self.gateway.cards.sender = TelegramCards(self.application.bot)  # screen-pop cards
        self.desk = CommandDesk(
            self.gateway.control, self.gateway.notices, settings.locale.default_region
        )
        self.gateway.inbound.on_text = self.desk.on_inbound
        # The staff's presence first: its buttons before the subscribers' refusing fallback.
        staff.install(self.application, self.gateway.presence)
        # Transfers and listening in: a group of their own, ahead of every other handler.
        staff_calls.install(self.application, self.gateway.transfers, self.gateway.monitor)
        # Taking messages and tasks: card, exchange and task buttons, /task, /tasks, and
        # a staff member's typed answers (offered to the desk before the command desk).
        staff_desk.install(self.application, self.gateway.conversations, self.gateway.tasks)
        # Call lists: /campaigns and their Next / Previous / outcome buttons.
        campaign_buttons.install(self.application, self.gateway.campaigns)
        # The admins' menus: /admin, its buttons, and typed answers to an open form.
        admin.install(self.application, self.gateway.admin)
        # The console of calls: /console and its buttons (directors and admins).
        self.console = Console(
            self.gateway.control,
            self.gateway.tracker.unrouted,
            settings.locale.default_timezone,
        )
        console.install(self.application, self.console)
        # The international calls report: /international [YYYY-MM] (directors and admins).
        policy.install(self.application, settings.locale.default_timezone)
        # Statistics and usage: /stats, /usage (CSV), /report (PDF) for directors and admins.
        self.reports = ReportDesk(settings.locale.default_timezone, settings.reports.font)
        reports.install(self.application, self.reports)
        # /desk: a magic link to the subscriber's web desk (when it is on).
        if self.gateway.desk_web is not None:
            desk_link.install(self.application, self.gateway.desk_web.links)
        handlers.install(self.application, self.desk)
        self.application.add_error_handler(handlers.on_error)

    async def start(self) -> None:
        await open_db(self.settings.database.url)
        await self.application.initialize()
        await self.gateway.start()
        await self.application.start()
        if self.webhook is not None:
            await self.webhook.register()
            log.info("telegram bot @%s by webhook", self.application.bot.username)
        else:
            # One getUpdates consumer per bot token: of several gateways on one PostgreSQL
            # the leader polls (webhook mode serves on all); with SQLite, this one.
            self.gateway.on_leading.append(self._poll_while_leading)
            if self.gateway.leader.leading:
                await self._poll_while_leading(True)
        await publish_menus(self.application.bot)

    async def _poll_while_leading(self, leading: bool) -> None:
        updater = self.application.updater
        assert updater is not None
        if leading and not updater.running:
            await updater.start_polling(
                timeout=int(self.settings.telegram.poll_timeout), drop_pending_updates=False
            )
            log.info("telegram bot @%s polling", self.application.bot.username)
        elif not leading and updater.running:
            await updater.stop()
            log.info(
                "telegram bot @%s: polling stopped (another gateway leads)",
                self.application.bot.username,
            )

    async def stop(self) -> None:
        # By webhook: no deleteWebhook, the other instances behind the address still serve.
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.gateway.stop()
        await self.application.shutdown()
        await close_db()
