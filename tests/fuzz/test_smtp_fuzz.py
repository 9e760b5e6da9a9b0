"""The inbound SMTP listener (notifiers/email/inbound.py) over real SMTP sessions on
loopback: random and malformed messages (any headers, charsets, MIME structures, nesting,
encodings, raw bytes), messages past mail_in.max_bytes (552), and random command lines.
Every command gets an SMTP reply, nothing fails inside a session (which would answer 451),
a message is handed on exactly when it is accepted, and the listener keeps serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiosmtplib
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from models.settings import MailInSettings
from notifiers.base import InboundMessage
from notifiers.email.inbound import MailIn
from tests.fuzz.budget import budget

HOST = "127.0.0.1"
MAX_BYTES = 100_000
ANSWER_TIMEOUT = 30.0  # a bound on a hung session, not a pace
ASCII_LINE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
ANY_LINE = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=60
)
CHARSETS = ["utf-8", "iso-8859-7", "koi8-r", "gb2312", "x-nope", "utf-7", "base64", ""]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus"]


@dataclass
class Listener:
    mail_in: MailIn
    received: list[InboundMessage] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.mail_in.port is not None
        return self.mail_in.port


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    received: list[InboundMessage] = []

    async def sink(message: InboundMessage) -> None:
        received.append(message)

    mail_in = MailIn(MailInSettings(host=HOST, port=0, max_bytes=MAX_BYTES), sink)
    await mail_in.start()
    try:
        yield Listener(mail_in, received)
    finally:
        await mail_in.stop()


def nested(depth: int) -> bytes:
    """A multipart `depth` levels deep: the email parser recurses once per level."""
    head = b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    return head + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (n, n + 1)
        for n in range(depth)
    )


@st.composite
def parts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["text/plain", "text/html", "application/pdf", "multipart/x"]))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    body = "\r\n".join(draw(st.lists(ANY_LINE, max_size=5)))
    params = f"; charset={charset}" if charset else ""
    return f"Content-Type: {kind}{params}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{body}"


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["mime", "mime", "raw", "nested", "oversized"]))
    if shape == "raw":
        return draw(st.binary(max_size=3000))
    if shape == "nested":
        return nested(draw(st.integers(1, 1500)))
    names = st.sampled_from(["From", "To", "Subject", "Content-Type", "MIME-Version", "X-Y"])
    headers = draw(st.lists(st.tuples(names | ASCII_LINE, ANY_LINE), max_size=6))
    lines = [f"{name}: {value}" for name, value in headers]
    if draw(st.booleans()):
        lines.append(f"From: {draw(ANY_LINE)} <{draw(ASCII_LINE)}>")
    boundary = draw(st.sampled_from(["b", "=_x", "", '"']))
    lines.append(f"Content-Type: multipart/alternative; boundary={boundary}")
    chunks = [f"--{boundary}\r\n{part}\r\n" for part in draw(st.lists(parts(), max_size=3))]
    closed = f"--{boundary}--\r\n" if draw(st.booleans()) else ""
    text = "\r\n".join(lines) + "\r\n\r\n" + "".join(chunks) + closed
    raw = text.encode("utf-8", "surrogateescape")
    if shape == "oversized":
        raw += b"x" * 70 + b"\r\n" * (MAX_BYTES // 72 + 10)
    return raw


async def deliver(port: int, raw: bytes) -> int:
    """The code the listener answered the message's DATA (or an earlier step) with."""
    smtp = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=ANSWER_TIMEOUT)
    await smtp.connect()
    try:
        await smtp.ehlo()
        await smtp.mail("sender@example.org")
        await smtp.rcpt("replies@frontdesk.example")
        code, _ = await smtp.data(raw)
        return code
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code
    finally:
        smtp.close()


async def still_serving(port: int) -> None:
    async with aiosmtplib.SMTP(hostname=HOST, port=port, timeout=ANSWER_TIMEOUT) as smtp:
        code, _ = await smtp.noop()
        assert code == 250


@budget(40)
@given(raw=messages())
@example(raw=nested(1200))  # the email parser's recursion: refused with 550
@example(raw=b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * (MAX_BYTES // 2))
@example(raw=b"From: a@example.org\r\nContent-Type: text/plain; charset=x-nope\r\n\r\nhi\r\n")
async def test_any_message_gets_an_smtp_answer_and_the_listener_keeps_serving(
    listener: Listener, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    before = len(listener.received)
    with caplog.at_level(logging.ERROR, logger="notifiers.email.inbound"):
        code = await deliver(listener.port, raw)
    event(f"answered {code}")
    assert code in (250, 500, 550, 552), code  # 451 would mean our code failed
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert len(listener.received) == before + (code == 250)
    if len(raw) > MAX_BYTES + 1000:
        assert code == 552
    await still_serving(listener.port)


VERBS = ["HELO", "EHLO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "VRFY", "EXPN"]
VERBS += ["HELP", "AUTH", "STARTTLS", "BDAT", "QUIT", "mail from:<a@b> SIZE=99999999999"]
COMMANDS = st.tuples(st.sampled_from(VERBS) | ASCII_LINE, ANY_LINE | st.binary(max_size=80)).map(
    lambda t: (
        (t[0].encode() + b" " + (t[1] if isinstance(t[1], bytes) else t[1].encode()))
        .replace(b"\r", b"")
        .replace(b"\n", b"")
    )
)


async def reply(reader: asyncio.StreamReader) -> int:
    """One (possibly multi-line) SMTP reply's code."""
    while True:
        line = await reader.readline()
        assert line, "the listener closed the connection without a reply"
        assert line[:3].isdigit() and line[3:4] in (b" ", b"-", b"\r"), line
        if line[3:4] != b"-":
            return int(line[:3])


@budget(30)
@given(commands=st.lists(COMMANDS | st.just(b"x" * 2000), max_size=12))
async def test_random_command_lines_each_get_a_reply(
    listener: Listener, commands: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection(HOST, listener.port)
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            assert await reply(reader) == 220
            for command in commands:
                writer.write(command + b"\r\n")
                code = await reply(reader)
                event(f"{command.split(b' ')[0][:10]!r} {code}")
                if code == 354:  # DATA accepted: end the (empty) message
                    writer.write(b".\r\n")
                    code = await reply(reader)
                elif code == 334:  # an AUTH challenge: cancel it
                    writer.write(b"*\r\n")
                    code = await reply(reader)
                assert code != 451 and 200 <= code < 600, code
                if code == 221:
                    break
    finally:
        writer.close()
        await writer.wait_closed()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await still_serving(listener.port)
