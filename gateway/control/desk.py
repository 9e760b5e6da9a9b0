"""The command desk: one grammar (gateway/control/grammar.py), every channel, the subscriber's own
lines only, every command audited.

Telegram chats are trusted once linked by their one-time code. An SMS must come from the
subscriber's registered mobile and start with its PIN; five wrong PINs lock SMS control
for a while and tell the subscriber on another channel. A number that is not a
subscriber's learns nothing about anyone. Replies go back on the channel the command came
from (Telegram: the caller replies; SMS: through the outbox).

Typed text and pressed buttons are one path: text parses (grammar.parse) and button data
unpacks (callbacks.unpack) into the same `Command` classes, and `CommandDesk.run` carries
out every one of them: one authorisation check (only the actor's own subscriber, calls and
notifications), one audit row, one answer for a PBX that is not reachable and one for a
missing mobile number. It returns an `Outcome`: the reply, and for a button what the
message it is on should become; the Telegram adapter (bot/handlers.py) only shows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from gateway.admin.policy import OutboundRefused, refusal
from gateway.control import admin, audit, callbacks
from gateway.control import grammar as cmd
from gateway.control.inbound import sender_subscriber
from gateway.control.labels import SCENARIO_LABELS
from gateway.control.lines import Control, NoMobileNumber
from gateway.control.pins import PinCheck, check_pin
from gateway.delivery.message_render import MessagePayload
from gateway.delivery.notices import NewNotification, Notices
from gateway.delivery.render import caller_label, local_time
from gateway.diary import appointments as diary
from gateway.pbx.errors import UNREACHABLE, PbxUnavailable
from locales import LANGUAGES, N_, tr
from models.db import (
    Appointment,
    Call,
    Ddi,
    InboundMessage,
    Notification,
    Subscriber,
    Urgency,
    User,
    Voicemail,
)
from models.phone import InvalidNumber, caller_e164, to_e164
from models.vocab import Channel, Kind, Language, Scenario

log = logging.getLogger(__name__)

# charset: a text/* part without one reads as ASCII; method: what the invite is.
# The answers every path shares, written once.
NOT_FOR_YOU = N_("This button is not for you.")
NO_MOBILE = N_("No mobile number on file; ask the operator to add one.")
LINK_FIRST = N_("Send the code you got from the operator: /start CODE")
# Commands about one call: "Forward calls to me" names the call its notification was about.
CALL_COMMANDS = (cmd.CallBackCall, cmd.ForwardToMe, cmd.ShowSlots, cmd.BookSlot)


@dataclass(frozen=True)
class Actor:
    channel: str  # telegram, sms, email
    address: str  # chat id, number, email address: as audited and answered
    subscriber: Subscriber | None
    lang: str
    # The Telegram chat a command came from; SMS and email have none, so a command that
    # acts on the chat must say what it does without one.
    chat_id: int | None = None


@dataclass(frozen=True)
class Slot:
    """A free time a "Book a time" button offers: its label and its callback data."""

    label: str
    data: str


@dataclass(frozen=True)
class Outcome:
    """What a command came to. `reply` answers typed text (and is a button's toast unless
    `toast` says otherwise); the other fields say what a button's message becomes."""

    reply: str
    result: str = audit.DONE  # the audit result: done, refused, failed, ...
    toast: str | None = None  # a button's short answer, when not the reply
    confirm: bool = False  # a button: the message gets "✓ <reply>" below its text
    slots: tuple[Slot, ...] | None = None  # a button: these slots become its keyboard
    scenario: Scenario | None = None  # the scenario in force: the /scenario keyboard's tick

    @property
    def done(self) -> bool:
        return self.result == audit.DONE

    @property
    def answer(self) -> str:
        """A button's toast."""
        return self.toast or self.reply


class CommandDesk:
    def __init__(self, control: Control, notices: Notices, region: str = "GR") -> None:
        self._control = control
        self._notices = notices
        self._region = region

    # -- entry points ----------------------------------------------------------------------

    async def telegram_actor(self, chat_id: int | None, telegram_lang: str | None = None) -> Actor:
        """Who a Telegram chat is: its subscriber if linked, and its language (the chat's,
        else its subscriber's, else what Telegram said, else English)."""
        user = None
        if chat_id is not None:
            user = await User.get_or_none(telegram_chat_id=chat_id).select_related("subscriber")
        subscriber = user.subscriber if user else None
        lang = (
            (user.language if user else None)
            or (subscriber.language if subscriber else None)
            or telegram_lang
            or Language.EN
        )
        address = str(chat_id) if chat_id is not None else "?"
        return Actor(Channel.TELEGRAM, address, subscriber, lang, chat_id=chat_id)

    async def link_chat(
        self, chat_id: int, code: str | None, name: str, telegram_lang: str | None
    ) -> str:
        """/start <code>: link the chat to the code's subscriber; the answer."""
        lang = telegram_lang or Language.EN
        if not code:
            return tr(lang, LINK_FIRST)
        try:
            # Only a language Telegram told us is the chat's: else the subscriber's applies.
            subscriber = await admin.link_chat(code, chat_id, name, telegram_lang)
        except admin.AdminError:
            return tr(lang, "This code is not valid or has expired.")
        log.info("chat linked to subscriber %s", subscriber.id)
        return tr(
            telegram_lang or subscriber.language,
            "Linked to {subscriber}. Missed calls will be reported here.",
            subscriber=subscriber.name,
        )

    async def scenario_menu(self, actor: Actor) -> Outcome:
        """/scenario: the question above the keyboard, and the scenario to tick on it
        (None: the chat is not linked). Reads only, so not audited."""
        if actor.subscriber is None:
            return Outcome(tr(actor.lang, LINK_FIRST), audit.REFUSED)
        return Outcome(
            tr(actor.lang, "How should calls be answered?"), scenario=actor.subscriber.scenario
        )

    async def from_telegram(
        self, chat_id: int, text: str, now: datetime, telegram_lang: str | None = None
    ) -> str:
        """Typed text in a chat: the reply."""
        actor = await self.telegram_actor(chat_id, telegram_lang)
        if actor.subscriber is None:
            await audit.record(
                Channel.TELEGRAM, actor.address, None, cmd.redact(text), audit.REFUSED
            )
            return tr(actor.lang, LINK_FIRST)
        command = cmd.parse(text, actor.lang, actor.subscriber.timezone, now)
        return (await self.run(actor, command, cmd.redact(text), now)).reply

    async def on_inbound(self, message: InboundMessage) -> None:
        """The gateway's inbound hook: an SMS or an email reply (already stored)."""
        if message.channel in (Channel.SMS, Channel.EMAIL):
            await self.from_text(message, datetime.now(UTC))

    async def from_text(self, message: InboundMessage, now: datetime) -> None:
        """Answer on the channel it came by, through the outbox. Both channels prove the
        sender the same way: the registered mobile or email, plus the PIN."""
        subscriber = await sender_subscriber(message.channel, message.sender)
        lang = subscriber.language if subscriber else Language.EN
        actor = Actor(message.channel, message.sender, subscriber, lang)
        reply = await self._with_pin(actor, message.text, now)
        subject = tr(lang, "Frontdesk") if message.channel == Channel.EMAIL else ""
        await self._notices.reply(message.channel, message.sender, reply, subscriber, subject)

    async def _with_pin(self, actor: Actor, text: str, now: datetime) -> str:
        subscriber = actor.subscriber
        if subscriber is None:
            # Nothing about any subscriber: not whether the number is known, nor whose.
            await audit.record(actor.channel, actor.address, None, cmd.redact(text), audit.REFUSED)
            if actor.channel == Channel.EMAIL:
                return tr(Language.EN, "This email address cannot control any line.")
            return tr(Language.EN, "This number cannot control any line.")
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
        return (await self.run(actor, command, cmd.redact(text), now)).reply

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
        payload = MessagePayload(
            subscriber=subscriber.name,
            at=datetime.now(UTC),
            timezone=subscriber.timezone,
            text=tr(
                subscriber.language,
                "Five wrong PINs were sent by SMS; SMS control is locked for 30 minutes.",
            ),
        )
        route_without_sms = [Channel.TELEGRAM, Channel.EMAIL]
        notice = NewNotification(key, subscriber, Kind.MESSAGE, Urgency.URGENT, payload.to_json())
        await self._notices.create([notice], route=route_without_sms)

    # -- running a command -----------------------------------------------------------------

    async def run(
        self,
        actor: Actor,
        command: cmd.Command | None,
        said: str,
        now: datetime | None = None,
    ) -> Outcome:
        """Carry out a command for an actor, typed or pressed; `said` is what is audited
        (text with any PIN masked, or the button's data). None is button data we would not
        have written: refused like another subscriber's button."""
        now = now or datetime.now(UTC)
        s, lang = actor.subscriber, actor.lang
        why = await self._refusal(s, command)
        if why is not None or s is None or command is None:
            await audit.record(actor.channel, actor.address, s, said, audit.REFUSED, why or "")
            return Outcome(tr(lang, NOT_FOR_YOU), audit.REFUSED)
        detail = ""
        try:
            outcome = await self._execute(actor, s, command, now)
        except PbxUnavailable as exc:
            outcome, detail = Outcome(tr(lang, UNREACHABLE), audit.FAILED), str(exc)
            log.warning("%s via %s: %s", type(command).__name__, actor.channel, exc)
        except NoMobileNumber:
            outcome = Outcome(tr(lang, NO_MOBILE), audit.REFUSED)
        except OutboundRefused as exc:  # the subscriber's outbound policy: audited with why
            outcome, detail = Outcome(refusal(lang, exc), audit.REFUSED), exc.number_class.value
        # Any command shows the subscriber is there: stop escalating what they were sent
        # (a button, just the notification or call it is about).
        await self._acknowledge(s, command)
        await audit.record(actor.channel, actor.address, s, said, outcome.result, detail)
        return outcome

    async def _refusal(self, s: Subscriber | None, command: cmd.Command | None) -> str | None:
        """Why the actor may not run this command (None: it may). Commands act only on the
        actor's own subscriber, and on its own calls and notifications."""
        if command is None:
            return "forged or unknown button data"
        if s is None:
            return "not linked"
        if isinstance(command, cmd.Acknowledge):
            if not await Notification.exists(id=command.notification_id, subscriber_id=s.id):
                return "not this subscriber's notification"
        if isinstance(command, CALL_COMMANDS):
            if not await Call.exists(id=command.call_id, subscriber_id=s.id):
                return "not this subscriber's call"
        return None

    async def _acknowledge(self, s: Subscriber, command: cmd.Command) -> None:
        if isinstance(command, cmd.Acknowledge):
            await self._notices.acknowledge(notification_id=command.notification_id)
        elif isinstance(command, CALL_COMMANDS):
            await self._notices.acknowledge(call_id=command.call_id)
        else:
            await self._notices.acknowledge(subscriber_id=s.id)

    async def _execute(
        self, actor: Actor, s: Subscriber, command: cmd.Command, now: datetime
    ) -> Outcome:
        lang = actor.lang
        match command:
            case cmd.SetScenario(scenario=name, until=until):
                return await self._set_scenario(lang, s, Scenario(name), until)
            case cmd.Forward(number=number):
                return await self._forward(lang, s, number)
            case cmd.Book(start=start, name=name, note=note, phone=phone):
                return await self._book(actor, s, start, name, note, now, phone)
            case cmd.Diary(day=on):
                return Outcome(await self._diary(lang, s, on))
            case cmd.Calls():
                return Outcome(await self._calls(lang, s, now))
            case cmd.CallBack(target=target):
                return await self._call_back(lang, s, target)
            case cmd.Status():
                return Outcome(self._status(lang, s))
            case cmd.Lang(code=code) if code in LANGUAGES:
                s.language = code
                await s.save(update_fields=["language"])
                if actor.chat_id is not None:  # the chat's own language too
                    await User.filter(subscriber=s, telegram_chat_id=actor.chat_id).update(
                        language=code
                    )
                return Outcome(tr(code, "Language: English."))
            case cmd.Help():
                return Outcome("\n".join([tr(lang, "You can write:"), *cmd.examples(lang)]))
            case cmd.Acknowledge():  # acknowledging is what every command does (run)
                return Outcome(tr(lang, "Noted."), confirm=True)
            case cmd.CallBackCall(call_id=call_id):
                return await self._ring_back(lang, s, await Call.get(id=call_id))
            case cmd.ForwardToMe():
                moved = await self._control.forward_to_mobile(s)
                return Outcome(tr(lang, "Calls now go to {number}.", number=moved), confirm=True)
            case cmd.ShowSlots(call_id=call_id):
                return await self._show_slots(lang, s, call_id, now)
            case cmd.BookSlot(call_id=call_id, start=start):
                call = await Call.get(id=call_id)
                name = call.caller_name or call.caller_number or "?"
                number = call.caller_number
                return await self._book(actor, s, start, name, number, now, number)
            case cmd.Unknown(suggestion=suggestion):
                return Outcome(
                    tr(lang, "Not understood. Did you mean: {command}?", command=suggestion),
                    audit.NOT_UNDERSTOOD,
                )
        return Outcome(
            tr(lang, "Not understood. Did you mean: {command}?", command="help"),
            audit.NOT_UNDERSTOOD,
        )

    async def _set_scenario(
        self, lang: str, s: Subscriber, scenario: Scenario, until: datetime | None
    ) -> Outcome:
        if scenario is Scenario.FORWARD and not s.forward_target:
            raise NoMobileNumber(s.name)
        await self._control.set_scenario(s, scenario, until)
        if scenario is Scenario.FORWARD:
            await self._control.redirect_ringing(s)  # the call ringing now, too
        label = tr(lang, SCENARIO_LABELS[scenario])
        if until is None:
            reply = tr(lang, "Calls: {scenario}.", scenario=label)
        else:
            when = local_time(lang, s.timezone, until)
            reply = tr(lang, "Calls: {scenario}, until {time}.", scenario=label, time=when)
        return Outcome(reply, toast=label, scenario=scenario)

    async def _forward(self, lang: str, s: Subscriber, number: str | None) -> Outcome:
        if number is None:
            await self._control.set_forward(s, None)
            return Outcome(tr(lang, "Forwarding number removed."))
        try:
            e164 = to_e164(number, self._region)
        except InvalidNumber:
            return Outcome(
                tr(lang, "That is not a phone number: {number}", number=number), audit.REFUSED
            )
        await self._control.set_forward(s, e164)
        return Outcome(tr(lang, "Calls will be forwarded to {number}.", number=e164))

    async def _book(
        self,
        actor: Actor,
        s: Subscriber,
        start: datetime,
        name: str,
        note: str,
        now: datetime,
        phone: str = "",
    ) -> Outcome:
        lang = actor.lang
        mobile = (caller_e164(phone, self._region) or "") if phone else ""
        if phone and not mobile:
            reply = tr(lang, "That is not a phone number: {number}", number=phone)
            return Outcome(reply, audit.REFUSED)
        try:
            appointment = await diary.book(s, start, name, note, now=now, phone=mobile)
        except diary.Overlap as exc:
            free = ", ".join(local_time(lang, s.timezone, t) for t in exc.free)
            return Outcome(
                tr(lang, "That time is taken. Free: {slots}", slots=free or "—"), audit.REFUSED
            )
        except diary.InThePast:
            return Outcome(tr(lang, "That time has already passed."), audit.REFUSED)
        except diary.DiaryError:  # outside the schedule's agent hours (09:00-18:00 without)
            return Outcome(tr(lang, "That time is outside office hours."), audit.REFUSED)
        await self._confirm_by_email(s, appointment)
        when = local_time(lang, s.timezone, appointment.starts_at)
        reply = tr(lang, "Booked: {name}, {time}.", name=appointment.name, time=when)
        return Outcome(reply, confirm=True)

    async def _show_slots(self, lang: str, s: Subscriber, call_id: int, now: datetime) -> Outcome:
        """ "Book a time": the nearest free slots, each a button that books the caller."""
        free = await diary.free_slots(s, now, now=now)
        slots = tuple(
            Slot(local_time(lang, s.timezone, t), callbacks.book_slot(call_id, t)) for t in free
        )
        return Outcome(tr(lang, "Book a time"), slots=slots)

    async def _confirm_by_email(self, s: Subscriber, appointment: Appointment) -> None:
        """The confirmation with an .ics invite goes by email when the subscriber has one."""
        if not s.email:
            return
        await self._notices.create([diary.confirmation(appointment, s)], route=[Channel.EMAIL])

    async def _diary(self, lang: str, s: Subscriber, on: date) -> str:
        entries = await diary.day(s, on)
        if not entries:
            return tr(lang, "No appointments that day.")
        return "\n".join(
            f"{local_time(lang, s.timezone, a.starts_at)} {a.name} {a.note}".strip()
            for a in entries
        )

    async def _calls(self, lang: str, s: Subscriber, now: datetime) -> str:
        """Today's calls, then how many voicemails and faxes came today."""
        zone = ZoneInfo(s.timezone)
        midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        calls = await Call.filter(subscriber=s, started_at__gte=midnight).order_by("started_at")
        voicemails = await Voicemail.filter(subscriber=s, left_at__gte=midnight).count()
        faxes = await Notification.filter(
            subscriber=s, kind=Kind.FAX, created_at__gte=midnight
        ).count()
        lines = [
            f"{local_time(lang, s.timezone, c.started_at)} "
            f"{caller_label(lang, c.caller_number, c.caller_name, None)} {c.status.value}"
            for c in calls
        ]
        lines.append(tr(lang, "Voicemails today: {count}", count=voicemails))
        lines.append(tr(lang, "Faxes today: {count}", count=faxes))
        return "\n".join(lines)

    async def _call_back(self, lang: str, s: Subscriber, target: str) -> Outcome:
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
                return Outcome(
                    tr(lang, "That is not a phone number: {number}", number=target), audit.REFUSED
                )
            line = await Ddi.filter(subscriber=s).first()
            call = Call(caller_number=number, ddi=line.number if line else "")
        if call is None:
            return Outcome(tr(lang, "No call to return yet."), audit.REFUSED)
        return await self._ring_back(lang, s, call)

    async def _ring_back(self, lang: str, s: Subscriber, call: Call) -> Outcome:
        await self._control.call_back(s, call)
        reply = tr(
            lang, "Calling your mobile now; then we connect {caller}.", caller=call.caller_number
        )
        return Outcome(reply, confirm=True)

    @staticmethod
    def _status(lang: str, s: Subscriber) -> str:
        """Where calls go now. A number is named only when calls are forwarded to it: the
        mobile is on file in every scenario, and calls go there only in `forward`."""
        label = tr(lang, SCENARIO_LABELS[s.scenario])
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
