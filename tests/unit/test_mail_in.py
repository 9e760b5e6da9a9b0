"""The SMTP listener for email replies (notifiers/email/inbound.py), with a real aiosmtplib client
on loopback: commands by email are answered, and whatever fails on our side, the sender's
server hears a generic temporary error, never our exception's text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib
import pytest

from gateway.control import admin, pins
from gateway.control.desk import CommandDesk
from gateway.control.inbound import InboundDesk
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from locales import tr
from models.db import Delivery, InboundMessage, Subscriber
from models.settings import MailInSettings, RoutingSettings
from notifiers.base import InboundMessage as Inbound
from notifiers.email.inbound import MailIn

EMAIL = "office@example.org"
PIN = "4821"
SECRET_DETAIL = "connection to /var/lib/frontdesk.sqlite3 failed"


def reply(text: str, sender: str = EMAIL) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Office <{sender}>"
    message["To"] = "replies@frontdesk.example"
    message["Subject"] = "Re: Frontdesk"
    message.set_content(f"{text}\n\n> what we sent ...\n")
    return message


async def listening(sink: Callable[[Inbound], Awaitable[None]]) -> MailIn:
    mail_in = MailIn(MailInSettings(host="127.0.0.1", port=0), sink)
    await mail_in.start()
    return mail_in


async def send(mail_in: MailIn, message: EmailMessage) -> tuple[int, str]:
    """The server's answer to the message: (code, text)."""
    assert mail_in.port is not None
    try:
        _, answer = await aiosmtplib.send(message, hostname="127.0.0.1", port=mail_in.port)
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    return 250, answer


async def test_a_failure_behind_the_listener_is_a_generic_temporary_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(message: Inbound) -> None:
        raise RuntimeError(SECRET_DETAIL)

    mail_in = await listening(broken)
    try:
        code, text = await send(mail_in, reply(f"{PIN} status"))
    finally:
        await mail_in.stop()
    assert code == 451 and text.startswith("4.3.0")
    assert "RuntimeError" not in text and SECRET_DETAIL not in text
    assert SECRET_DETAIL in caplog.text  # the operator still learns what happened


class AcceptingAmi:
    async def send_action(self, action: dict[str, str], timeout: float = 5.0) -> dict[str, str]:
        return {"Response": "Success"}


@pytest.fixture
async def wired(db: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MailIn]:
    """The listener, the inbound desk and the command desk, as the runtime wires them."""
    monkeypatch.setattr(pins, "ITERATIONS", 1_000)  # PIN hashing at full strength is slow
    created = await admin.add_subscriber(
        name="Office", ddis=["2100001"], language="en", timezone="Europe/Athens"
    )
    await admin.set_contact_points(created.subscriber.id, email=EMAIL, pin=PIN)
    notices = Notices({"email"}, RoutingSettings())
    inbound = InboundDesk(notices)
    inbound.on_text = CommandDesk(Control(AcceptingAmi()), notices).on_inbound

    async def receive(message: Inbound) -> None:
        await inbound.receive(message)

    mail_in = await listening(receive)
    yield mail_in
    await mail_in.stop()


async def test_lang_by_email_is_carried_out_and_answered(wired: MailIn) -> None:
    assert (await send(wired, reply(f"{PIN} lang el")))[0] == 250
    [stored] = await InboundMessage.filter(channel="email")
    assert stored.sender == EMAIL
    [answer] = await Delivery.filter(kind="reply", channel="email")
    assert (answer.address, answer.text) == (EMAIL, tr("el", "Language: English."))
    assert (await Subscriber.get(email=EMAIL)).language == "el"


async def test_a_stranger_by_email_is_answered_and_learns_nothing(wired: MailIn) -> None:
    assert (await send(wired, reply("lang el", sender="someone@example.net")))[0] == 250
    [answer] = await Delivery.filter(kind="reply", channel="email")
    assert answer.text == "This email address cannot control any line."
