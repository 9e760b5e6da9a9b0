"""The email channel end to end: the real EmailNotifier into the SMTP sink, on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest

from models.settings import ConfigError, SmtpSettings, load_settings
from notifiers.base import Attachment, OutgoingMessage, PermanentError, TransientError
from notifiers.email.outbound import EmailNotifier
from sandbox.smtp_sink import SmtpSink

FROM = "Frontdesk <frontdesk@frontdesk.test>"
TO = "maria@example.gr"
USER, PASSWORD = "frontdesk", "s3cret-Ω-pass"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(reversed(range(256))) * 128
GREEK_SUBJECT = "Αναπάντητη κλήση από Μαρία Παπαδοπούλου (+30 210 1234567)"
GREEK_TEXT = "Καλησπέρα σας,\nσας αναζήτησε η κ. Παπαδοπούλου στις 14:32.\nΤηλ.: +30 210 1234567"
GREEK_HTML = "<p>Καλησπέρα σας,</p><p>σας αναζήτησε η <b>κ. Παπαδοπούλου</b>.</p>"


def settings_for(sink: SmtpSink, **changes: Any) -> SmtpSettings:
    base = SmtpSettings(
        host=sink.host, port=sink.port, security="none", from_address=FROM, timeout=5.0
    )
    return replace(base, **changes)


@asynccontextmanager
async def running(settings: SmtpSettings) -> AsyncIterator[EmailNotifier]:
    notifier = EmailNotifier(settings)
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()


def note(text: str = "Αναπάντητη κλήση", address: str = TO, **fields: Any) -> OutgoingMessage:
    return OutgoingMessage(address=address, text=text, **fields)


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as plain_sink:
        yield plain_sink


# -- what arrives ----------------------------------------------------------------------------


async def test_greek_message_with_html_pdf_and_mp3_arrives_intact(sink: SmtpSink) -> None:
    attachments = (
        Attachment("Κλήση 2025-01-20.pdf", "application/pdf", PDF),
        Attachment("voicemail.mp3", "audio/mpeg", MP3),
    )
    outgoing = note(
        GREEK_TEXT,
        subject=GREEK_SUBJECT,
        html=GREEK_HTML,
        attachments=attachments,
        reference="delivery-4711",
    )
    settings = settings_for(sink, reply_to="replies@frontdesk.test")
    async with running(settings) as notifier:
        receipt = await notifier.send(outgoing)

    [received] = await sink.wait_messages(1)
    message = received.message
    assert received.mail_from == "frontdesk@frontdesk.test"
    assert received.rcpt_tos == (TO,)
    assert received.raw.isascii()  # 7-bit on the wire: no 8BITMIME or SMTPUTF8 needed
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 Subject
    assert message["Subject"] == GREEK_SUBJECT
    assert message["From"] == FROM
    assert message["To"] == TO
    assert message["Date"] is not None
    assert message["Reply-To"] == "replies@frontdesk.test"
    assert message["X-Frontdesk-Reference"] == "delivery-4711"
    assert receipt.message_id == message["Message-ID"]
    assert receipt.message_id.startswith("<") and receipt.message_id.endswith("@frontdesk.test>")
    assert message.get_content_type() == "multipart/mixed"
    assert body(message, "plain") == GREEK_TEXT + "\n"
    assert body(message, "html") == GREEK_HTML + "\n"
    got = [
        (a.get_filename(), a.get_content_type(), a.get_content())
        for a in message.iter_attachments()
    ]
    assert got == [(a.filename, a.content_type, a.data) for a in attachments]


async def test_plain_text_is_one_part_without_optional_headers(sink: SmtpSink) -> None:
    text = "Пропущенный звонок от Ивана.\n李先生来电，请回电。"
    async with running(settings_for(sink)) as notifier:
        await notifier.send(note(text, subject="Звонок 来电"))
    [received] = await sink.wait_messages(1)
    assert received.message.get_content_type() == "text/plain"
    assert body(received.message, "plain") == text + "\n"
    assert received.message["Subject"] == "Звонок 来电"
    assert received.message["Reply-To"] is None
    assert received.message["X-Frontdesk-Reference"] is None


async def test_internationalised_domain_is_sent_as_punycode(sink: SmtpSink) -> None:
    async with running(settings_for(sink)) as notifier:
        await notifier.send(note(address="maria@παράδειγμα.ελ"))
    [received] = await sink.wait_messages(1)
    assert received.rcpt_tos == ("maria@" + "παράδειγμα.ελ".encode("idna").decode(),)


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "",
        "a@b@c.gr",
        "maria@exa mple.gr",
        "maria@-bad.gr",
        "μαρία@example.gr",
        "maria@example.gr\r\nBcc: spy@example.com",
        "maria@example..gr",
    ],
)
async def test_not_an_address_fails_for_good_before_connecting(
    sink: SmtpSink, address: str
) -> None:
    async with running(settings_for(sink)) as notifier:
        with pytest.raises(PermanentError, match="not an email address"):
            await notifier.send(note(address=address))
    assert sink.connections == 0


# -- security --------------------------------------------------------------------------------


async def test_starttls_with_auth_against_the_sinks_ca(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="notifiers")
    caplog.set_level(logging.DEBUG, logger="aiosmtplib")
    async with SmtpSink(tls="starttls", username=USER, password=PASSWORD) as tls_sink:
        assert tls_sink.ca_pem_path is not None
        settings = settings_for(
            tls_sink,
            security="starttls",
            ca_file=tls_sink.ca_pem_path,
            username=USER,
            password=PASSWORD,
        )
        async with running(settings) as notifier:
            await notifier.send(note())
        [received] = await tls_sink.wait_messages(1)
    assert received.encrypted
    assert received.login == USER
    assert len(tls_sink.auth_attempts) == 1
    assert PASSWORD not in caplog.text


async def test_implicit_tls_with_auth() -> None:
    async with SmtpSink(tls="tls", username=USER, password=PASSWORD) as tls_sink:
        assert tls_sink.ca_pem_path is not None
        settings = settings_for(
            tls_sink, security="tls", ca_file=tls_sink.ca_pem_path, username=USER, password=PASSWORD
        )
        async with running(settings) as notifier:
            await notifier.send(note())
        [received] = await tls_sink.wait_messages(1)
    assert received.encrypted
    assert received.login == USER


@pytest.mark.parametrize("host", ["mail.example.org", "192.0.2.25", "2001:db8::25", "10.0.0.1"])
def test_no_security_with_a_login_to_a_remote_relay_is_refused(host: str) -> None:
    environ = {
        "FRONTDESK__SMTP__HOST": host,
        "FRONTDESK__SMTP__SECURITY": "none",
        "FRONTDESK__SMTP__USERNAME": USER,
        "FRONTDESK__SMTP__PASSWORD": PASSWORD,
    }
    with pytest.raises(ConfigError, match=r"smtp\.security: 'none' would send smtp\.password"):
        load_settings(None, environ=environ)
    remote = SmtpSettings(host=host, security="none", username=USER, password=PASSWORD)
    with pytest.raises(ConfigError, match="in clear"):
        EmailNotifier(remote)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_no_security_with_a_login_is_allowed_on_loopback_and_without_login(host: str) -> None:
    local = SmtpSettings(host=host, security="none", username=USER, password=PASSWORD)
    EmailNotifier(local)
    EmailNotifier(SmtpSettings(host="mail.example.org", security="none"))  # nothing to leak
    environ = {"FRONTDESK__SMTP__HOST": host, "FRONTDESK__SMTP__SECURITY": "none"}
    load_settings(None, environ={**environ, "FRONTDESK__SMTP__USERNAME": USER})


async def test_starttls_not_offered_refuses_to_send_credentials() -> None:
    # A relay offering AUTH in clear and no STARTTLS: transient (fix the relay or the
    # settings, then the outbox's retry goes through), and nothing secret leaves.
    async with SmtpSink(tls="none", username=USER, password=PASSWORD) as bare_sink:
        settings = settings_for(bare_sink, security="starttls", username=USER, password=PASSWORD)
        async with running(settings) as notifier:
            with pytest.raises(TransientError, match="does not offer STARTTLS"):
                await notifier.send(note())
    assert bare_sink.connections == 1
    assert bare_sink.auth_attempts == []
    assert bare_sink.messages == []


async def test_untrusted_certificate_is_refused_before_auth() -> None:
    async with SmtpSink(tls="starttls", username=USER, password=PASSWORD) as tls_sink:
        settings = settings_for(tls_sink, security="starttls", username=USER, password=PASSWORD)
        async with running(settings) as notifier:  # no ca_file: the sink's CA is unknown
            with pytest.raises(TransientError, match=r"(?i)certificate"):
                await notifier.send(note())
    assert tls_sink.auth_attempts == []
    assert tls_sink.messages == []


async def test_wrong_password_is_transient_and_not_echoed() -> None:
    async with SmtpSink(tls="starttls", username=USER, password=PASSWORD) as tls_sink:
        assert tls_sink.ca_pem_path is not None
        wrong = "wrong-" + PASSWORD
        settings = settings_for(
            tls_sink,
            security="starttls",
            ca_file=tls_sink.ca_pem_path,
            username=USER,
            password=wrong,
        )
        async with running(settings) as notifier:
            with pytest.raises(TransientError, match="535") as failure:
                await notifier.send(note())
    assert wrong not in str(failure.value)
    assert "smtp.password" in str(failure.value)


async def test_relay_wanting_a_login_we_lack_is_transient() -> None:
    # 530 is a 5xx, but about our settings, not this message: the retry after a fix works.
    async with SmtpSink(tls="tls", username=USER, password=PASSWORD) as tls_sink:
        assert tls_sink.ca_pem_path is not None
        settings = settings_for(tls_sink, security="tls", ca_file=tls_sink.ca_pem_path)
        async with running(settings) as notifier:
            with pytest.raises(TransientError, match="530"):
                await notifier.send(note())
    assert tls_sink.messages == []


async def test_unreadable_ca_file_stops_start_up() -> None:
    settings = SmtpSettings(host="127.0.0.1", security="tls", ca_file="/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match=r"smtp\.ca_file"):
        await EmailNotifier(settings).start()


# -- refusals and failures -------------------------------------------------------------------


async def test_refused_recipient_is_permanent_and_the_session_carries_on(sink: SmtpSink) -> None:
    sink.reject_recipient("gone@example.gr")
    async with running(settings_for(sink)) as notifier:
        with pytest.raises(PermanentError, match="550") as failure:
            await notifier.send(note(address="gone@example.gr"))
        await notifier.send(note())
    assert "User unknown" in str(failure.value)
    assert [m.rcpt_tos for m in sink.messages] == [(TO,)]
    assert sink.connections == 1


async def test_temporary_failure_is_transient(sink: SmtpSink) -> None:
    sink.fail_next(1)
    async with running(settings_for(sink)) as notifier:
        with pytest.raises(TransientError, match="451"):
            await notifier.send(note("first"))
        await notifier.send(note("second"))
    [received] = await sink.wait_messages(1)
    assert body(received.message, "plain") == "second\n"
    assert sink.connections == 1


async def test_connection_refused_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5.0)
    async with running(settings) as notifier:
        with pytest.raises(TransientError):
            await notifier.send(note())


async def test_unanswered_data_times_out_as_transient_then_reconnects(sink: SmtpSink) -> None:
    sink.stall_after_data(1)
    async with running(settings_for(sink, timeout=0.3)) as notifier:
        with pytest.raises(TransientError, match="timed out"):
            await notifier.send(note("hung"))
        await notifier.send(note("after"))
    assert [body(m.message, "plain") for m in sink.messages] == ["after\n"]
    assert sink.connections == 2


async def test_connection_closed_after_data_is_transient_and_not_resent(sink: SmtpSink) -> None:
    # The relay kept the message but its answer was lost: resending at once would duplicate it.
    sink.drop_after_data(1, keep=True)
    async with running(settings_for(sink)) as notifier:
        with pytest.raises(TransientError, match="after DATA"):
            await notifier.send(note("unanswered"))
        assert len(sink.messages) == 1
        await notifier.send(note("next"))
    assert [body(m.message, "plain") for m in sink.messages] == ["unanswered\n", "next\n"]
    assert sink.connections == 2


# -- the session -----------------------------------------------------------------------------


async def test_sends_reuse_one_connection_and_stop_says_quit(sink: SmtpSink) -> None:
    async with running(settings_for(sink)) as notifier:
        together = await asyncio.gather(*(notifier.send(note(f"call {i}")) for i in range(5)))
        one_by_one = [await notifier.send(note(f"call {i}")) for i in range(5, 8)]
    receipts = together + one_by_one
    assert sink.connections == 1
    assert sink.quits == 1
    assert len({r.message_id for r in receipts}) == 8
    await sink.wait_until(lambda: sink.open_connections == 0)
    sent = sorted(str(m.message["Message-ID"]) for m in sink.messages)
    assert sent == sorted(r.message_id for r in receipts)


@pytest.mark.parametrize(
    ("wait", "reply"),
    [
        (True, None),  # dropped a while ago
        (False, None),  # dropped as the next send starts: the client still thinks it open
        (False, "421 4.4.2 localhost Error: timeout exceeded"),  # an idle timeout, announced
    ],
    ids=["dropped", "crossing", "idle-421"],
)
async def test_dropped_session_is_reopened_within_the_send(
    sink: SmtpSink, wait: bool, reply: str | None
) -> None:
    async with running(settings_for(sink)) as notifier:
        await notifier.send(note("before"))
        if wait:
            await sink.drop_connections(reply)
        else:
            sink.close_connections(reply)
        await notifier.send(note("after"))
    assert [body(m.message, "plain") for m in sink.messages] == ["before\n", "after\n"]
    assert sink.connections == 2
