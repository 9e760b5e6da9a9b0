"""The command desk: one grammar (gateway/control/grammar.py), every channel, the subscriber's own
lines only, every command audited.

Telegram chats are trusted once linked by their one-time code. An SMS must come from the
subscriber's registered mobile and start with its PIN; five wrong PINs lock SMS control
for a while and tell the subscriber on another channel. A number that is not a
subscriber's learns nothing about anyone. Replies go back on the channel the command came
from (Telegram: the caller replies; SMS: through the outbox).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from gateway.control import audit
from gateway.control import grammar as cmd
from gateway.control.inbound import sender_subscriber
from gateway.control.labels import SCENARIO_LABELS
from gateway.control.lines import Control, NoMobileNumber
from gateway.control.pins import PinCheck, check_pin
from gateway.delivery.attachments import inline
from gateway.delivery.notices import NewNotification, Notices
from gateway.delivery.render import caller_label, local_time
from gateway.diary import appointments as diary
from gateway.pbx.client import AmiActionError, AmiUnavailable
from locales import LANGUAGES, N_, tr
from models.db import (
    Appointment,
    Call,
    Ddi,
    InboundMessage,
    Subscriber,
    Urgency,
    User,
    Voicemail,
)
from models.phone import InvalidNumber, to_e164
from models.vocab import Scenario

log = logging.getLogger(__name__)

# charset: a text/* part without one reads as ASCII; method: what the invite is.
ICS_TYPE = "text/calendar; charset=utf-8; method=PUBLISH"
UNREACHABLE = N_("The phone system is not reachable right now; try again in a minute.")
SCENARIO_NAMES = SCENARIO_LABELS


@dataclass(frozen=True)
class Actor:
    channel: str  # telegram, sms, email
    address: str  # chat id, number, email address: as audited and answered
    subscriber: Subscriber | None
    lang: str
    # The Telegram chat a command came from; SMS and email have none, so a command that
    # acts on the chat must say what it does without one.
    chat_id: int | None = None


class CommandDesk:
    def __init__(self, control: Control, notices: Notices, region: str = "GR") -> None:
        self._control = control
        self._notices = notices
        self._region = region

    # -- entry points ----------------------------------------------------------------------

    async def from_telegram(self, chat_id: int, text: str, now: datetime) -> str:
        user = await User.get_or_none(telegram_chat_id=chat_id).select_related("subscriber")
        subscriber = user.subscriber if user else None
        lang = (user.language if user else None) or (subscriber.language if subscriber else "en")
        actor = Actor("telegram", str(chat_id), subscriber, lang, chat_id=chat_id)
        if subscriber is None:
            await audit.record("telegram", str(chat_id), None, cmd.redact(text), audit.REFUSED)
            return tr(lang, "Send the code you got from the operator: /start CODE")
        command = cmd.parse(text, lang, subscriber.timezone, now)
        return await self._run(actor, command, text, now)

    async def on_inbound(self, message: InboundMessage) -> None:
        """The gateway's inbound hook: an SMS or an email reply (already stored)."""
        if message.channel in ("sms", "email"):
            await self.from_text(message, datetime.now(UTC))

    async def from_text(self, message: InboundMessage, now: datetime) -> None:
        """Answer on the channel it came by, through the outbox. Both channels prove the
        sender the same way: the registered mobile or email, plus the PIN."""
        subscriber = await sender_subscriber(message.channel, message.sender)
        lang = subscriber.language if subscriber else "en"
        actor = Actor(message.channel, message.sender, subscriber, lang)
        reply = await self._with_pin(actor, message.text, now)
        subject = tr(lang, "Frontdesk") if message.channel == "email" else ""
        await self._notices.reply(message.channel, message.sender, reply, subscriber, subject)

    async def _with_pin(self, actor: Actor, text: str, now: datetime) -> str:
        subscriber = actor.subscriber
        if subscriber is None:
            # Nothing about any subscriber: not whether the number is known, nor whose.
            await audit.record(actor.channel, actor.address, None, cmd.redact(text), audit.REFUSED)
            if actor.channel == "email":
                return tr("en", "This email address cannot control any line.")
            return tr("en", "This number cannot control any line.")
        command = cmd.parse(text, actor.lang, subscriber.timezone, now)
        outcome = await check_pin(subscriber, command.pin, now)
        if outcome != PinCheck.OK:
            result = audit.LOCKED if outcome == PinCheck.LOCKED else audit.REFUSED
            await audit.record(
                actor.channel, actor.address, subscriber, cmd.redact(text), result, outcome
            )
            if outcome == PinCheck.LOCKED_NOW:  # this attempt locked it: tell them once
                await self._tell_locked(subscriber)
            return self._pin_answer(actor.lang, outcome)
        return await self._run(actor, command, text, now)

    @staticmethod
    def _pin_answer(lang: str, outcome: str) -> str:
        if outcome == PinCheck.LOCKED:
            return tr(lang, "SMS control is locked for a while after wrong PINs.")
        if outcome == PinCheck.UNSET:
            return tr(lang, "SMS control is not set up; ask the operator for a PIN.")
        return tr(lang, "Wrong PIN. Start the message with your PIN, e.g. 1234 closed")

    async def _tell_locked(self, subscriber: Subscriber) -> None:
        """The fifth wrong PIN: the subscriber hears of it on another channel."""
        key = f"sms_locked:{subscriber.id}:{subscriber.sms_locked_until}"
        payload = {
            "subscriber": subscriber.name,
            "at": datetime.now(UTC).isoformat(),
            "timezone": subscriber.timezone,
            "text": tr(
                subscriber.language,
                "Five wrong PINs were sent by SMS; SMS control is locked for 30 minutes.",
            ),
        }
        route_without_sms = ["telegram", "email"]
        notice = NewNotification(key, subscriber, "message", Urgency.URGENT, payload)
        await self._notices.create([notice], route=route_without_sms)

    # -- running a command -----------------------------------------------------------------

    async def _run(self, actor: Actor, command: cmd.Command, text: str, now: datetime) -> str:
        assert actor.subscriber is not None
        redacted = cmd.redact(text)
        try:
            reply, result = await self._execute(actor, actor.subscriber, command, now)
        except (AmiUnavailable, AmiActionError) as exc:
            await audit.record(
                actor.channel, actor.address, actor.subscriber, redacted, audit.FAILED, str(exc)
            )
            return tr(
                actor.lang, "The phone system is not reachable right now; try again in a minute."
            )
        await audit.record(actor.channel, actor.address, actor.subscriber, redacted, result)
        # Any command shows the subscriber is there: stop escalating what they were sent.
        await self._notices.acknowledge(subscriber_id=actor.subscriber.id)
        return reply

    async def _execute(
        self, actor: Actor, s: Subscriber, command: cmd.Command, now: datetime
    ) -> tuple[str, str]:
        lang = actor.lang
        match command:
            case cmd.SetScenario(scenario=name, until=until):
                scenario = Scenario(name)
                if scenario is Scenario.FORWARD and not s.forward_target:
                    return tr(lang, "No mobile number on file; ask the operator to add one."), (
                        audit.REFUSED
                    )
                await self._control.set_scenario(s, scenario, until)
                if scenario is Scenario.FORWARD:
                    await self._control.redirect_ringing(s)  # the call ringing now, too
                label = tr(lang, SCENARIO_NAMES[scenario])
                if until is None:
                    return tr(lang, "Calls: {scenario}.", scenario=label), audit.DONE
                when = local_time(lang, s.timezone, until)
                return tr(lang, "Calls: {scenario}, until {time}.", scenario=label, time=when), (
                    audit.DONE
                )
            case cmd.Forward(number=number):
                return await self._forward(lang, s, number)
            case cmd.Book(start=start, name=name, note=note):
                return await self._book(actor, s, start, name, note, now)
            case cmd.Diary(day=on):
                return await self._diary(lang, s, on), audit.DONE
            case cmd.Calls():
                return await self._calls(lang, s, now), audit.DONE
            case cmd.CallBack(target=target):
                return await self._call_back(lang, s, target)
            case cmd.Status():
                return self._status(lang, s), audit.DONE
            case cmd.Lang(code=code) if code in LANGUAGES:
                s.language = code
                await s.save(update_fields=["language"])
                if actor.chat_id is not None:  # the chat's own language too
                    await User.filter(subscriber=s, telegram_chat_id=actor.chat_id).update(
                        language=code
                    )
                return tr(code, "Language: English."), audit.DONE
            case cmd.Help():
                lines = [tr(lang, "You can write:"), *cmd.examples(lang)]
                return "\n".join(lines), audit.DONE
            case cmd.Unknown(suggestion=suggestion):
                return tr(lang, "Not understood. Did you mean: {command}?", command=suggestion), (
                    audit.NOT_UNDERSTOOD
                )
        return tr(lang, "Not understood. Did you mean: {command}?", command="help"), (
            audit.NOT_UNDERSTOOD
        )

    async def _forward(self, lang: str, s: Subscriber, number: str | None) -> tuple[str, str]:
        if number is None:
            await self._control.set_forward(s, None)
            return tr(lang, "Forwarding number removed."), audit.DONE
        try:
            e164 = to_e164(number, self._region)
        except InvalidNumber:
            return tr(lang, "That is not a phone number: {number}", number=number), audit.REFUSED
        await self._control.set_forward(s, e164)
        return tr(lang, "Calls will be forwarded to {number}.", number=e164), audit.DONE

    async def _book(
        self, actor: Actor, s: Subscriber, start: datetime, name: str, note: str, now: datetime
    ) -> tuple[str, str]:
        lang = actor.lang
        try:
            appointment = await diary.book(s, start, name, note, now=now)
        except diary.Overlap as exc:
            free = ", ".join(local_time(lang, s.timezone, t) for t in exc.free)
            return tr(lang, "That time is taken. Free: {slots}", slots=free or "—"), audit.REFUSED
        except diary.InThePast:
            return tr(lang, "That time has already passed."), audit.REFUSED
        except diary.DiaryError:
            return tr(lang, "Appointments go between 09:00 and 18:00, not in the past."), (
                audit.REFUSED
            )
        await self._confirm_by_email(s, appointment)
        when = local_time(lang, s.timezone, appointment.starts_at)
        return tr(lang, "Booked: {name}, {time}.", name=appointment.name, time=when), audit.DONE

    async def _confirm_by_email(self, s: Subscriber, appointment: Appointment) -> None:
        """The confirmation with an .ics invite goes by email when the subscriber has one."""
        if not s.email:
            return
        ics = diary.ics_invite(appointment, s, organizer_email=s.email)
        payload = {
            "subscriber": s.name,
            "at": appointment.starts_at.isoformat(),
            "timezone": s.timezone,
            "text": f"{appointment.name} — {appointment.note}".strip(" —"),
            "attachments": [inline("appointment.ics", ICS_TYPE, ics)],
        }
        notice = NewNotification(
            f"appointment:{appointment.uid}", s, "appointment", Urgency.NORMAL, payload
        )
        await self._notices.create([notice], route=["email"])

    async def _diary(self, lang: str, s: Subscriber, on: date) -> str:
        entries = await diary.day(s, on)
        if not entries:
            return tr(lang, "No appointments that day.")
        return "\n".join(
            f"{local_time(lang, s.timezone, a.starts_at)} {a.name} {a.note}".strip()
            for a in entries
        )

    async def _calls(self, lang: str, s: Subscriber, now: datetime) -> str:
        zone = ZoneInfo(s.timezone)
        midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        calls = await Call.filter(subscriber=s, started_at__gte=midnight).order_by("started_at")
        voicemails = await Voicemail.filter(subscriber=s, left_at__gte=midnight).count()
        lines = [
            f"{local_time(lang, s.timezone, c.started_at)} "
            f"{caller_label(lang, c.caller_number, c.caller_name, None)} {c.status.value}"
            for c in calls
        ]
        lines.append(tr(lang, "Voicemails today: {count}", count=voicemails))
        return "\n".join(lines)

    async def _call_back(self, lang: str, s: Subscriber, target: str) -> tuple[str, str]:
        if target == "last":
            call = (
                await Call.filter(subscriber=s)
                .exclude(caller_number="")
                .order_by("-started_at")
                .first()
            )
        else:
            try:
                number = to_e164(target, self._region)
            except InvalidNumber:
                return tr(lang, "That is not a phone number: {number}", number=target), (
                    audit.REFUSED
                )
            line = await Ddi.filter(subscriber=s).first()
            call = Call(caller_number=number, ddi=line.number if line else "")
        if call is None:
            return tr(lang, "No call to return yet."), audit.REFUSED
        try:
            await self._control.call_back(s, call)
        except NoMobileNumber:
            return tr(lang, "No mobile number on file; ask the operator to add one."), (
                audit.REFUSED
            )
        return tr(
            lang, "Calling your mobile now; then we connect {caller}.", caller=call.caller_number
        ), audit.DONE

    @staticmethod
    def _status(lang: str, s: Subscriber) -> str:
        """Where calls go now. A number is named only when calls are forwarded to it: the
        mobile is on file in every scenario, and calls go there only in `forward`."""
        label = tr(lang, SCENARIO_NAMES[s.scenario])
        if s.scenario_until is None:
            lines = [tr(lang, "Calls: {scenario}.", scenario=label)]
        else:
            when = local_time(lang, s.timezone, s.scenario_until)
            lines = [tr(lang, "Calls: {scenario}, until {time}.", scenario=label, time=when)]
        if s.scenario is Scenario.FORWARD:
            lines.append(_forwarding(lang, s.forward_target))
        return "\n".join(lines)


def _forwarding(lang: str, target: str | None) -> str:
    if target:
        return tr(lang, "Calls will be forwarded to {number}.", number=target)
    # AstDB gets an empty forward number: the dialplan falls back at once.
    return tr(lang, "No number to forward to, so calls are not forwarded.")
