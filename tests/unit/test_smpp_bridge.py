"""The bridge between smpplib and the event loop, piece by piece (reads: test_sms_reader.py;
the whole of it runs against the sandbox SMSC in tests/e2e/test_sms.py)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from notifiers.base import TransientError
from notifiers.sms.smpp_bridge import Link, LoopWriter, Response


async def next_turn() -> None:
    """Until the callbacks already scheduled on the loop have run (FIFO order)."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


class Sock:
    """A socket that takes at most `room` bytes a send(), recording each."""

    def __init__(self, fd: int, room: int) -> None:
        self.fd, self.room = fd, room
        self.sends: list[bytes] = []
        self.received = bytearray()
        self.want = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fileno(self) -> int:
        return self.fd

    def send(self, data: bytes, flags: int = 0) -> int:
        taken = bytes(data[: self.room])
        self.sends.append(taken)
        self.received += taken
        if len(self.received) >= self.want and not self.done.done():
            self.done.set_result(None)
        return len(taken)


@pytest.fixture
def pair() -> Iterator[socket.socket]:
    a, b = socket.socketpair()
    yield a  # writable at once: add_writer fires on the next turn
    a.close()
    b.close()


async def test_writes_of_one_turn_leave_in_one_send(pair: socket.socket) -> None:
    sock = Sock(pair.fileno(), room=1 << 16)
    sock.want = 6
    writer = LoopWriter(asyncio.get_running_loop(), sock, threading.Lock(), lambda: None)
    for pdu in (b"ab", b"cd", b"ef"):
        writer.write(pdu)
    assert sock.sends == []  # nothing leaves before the turn is over
    await asyncio.wait_for(sock.done, 1.0)
    assert sock.sends == [b"abcdef"]


async def test_what_the_socket_cannot_take_waits_until_it_is_writable(
    pair: socket.socket,
) -> None:
    sock = Sock(pair.fileno(), room=2)
    sock.want = 6
    writer = LoopWriter(asyncio.get_running_loop(), sock, threading.Lock(), lambda: None)
    writer.write(b"abcdef")
    await asyncio.wait_for(sock.done, 1.0)
    assert sock.sends == [b"ab", b"cd", b"ef"] and bytes(sock.received) == b"abcdef"
    writer.close()
    writer.write(b"gh")  # closed: dropped, never written to a reused fd
    await next_turn()
    assert len(sock.sends) == 3


class Client:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_pdu(self, pdu: Any) -> bool:
        self.sent.append(pdu)
        return True


def pdu(sequence: int, command: str = "submit_sm") -> Any:
    return SimpleNamespace(sequence=sequence, command=command)


async def test_a_response_resolves_its_request_by_sequence_number() -> None:
    client = Client()
    link = Link(client)
    request = asyncio.ensure_future(link.request(pdu(7), timeout=5.0))
    await next_turn()
    assert client.sent and 7 in link.pending  # registered before it could be answered
    link.resolve(8, 0, b"other")  # not ours: ignored
    link.resolve(7, 0, b"00AB12")
    assert await request == Response(0, b"00AB12")
    assert link.pending == {}


async def test_an_unanswered_request_is_transient() -> None:
    link = Link(Client())
    with pytest.raises(TransientError, match=r"no enquire_link_resp within 0\.01s"):
        await link.request(pdu(1, "enquire_link"), timeout=0.01)
    assert link.pending == {}


async def test_a_lost_link_fails_what_is_in_flight_and_refuses_more() -> None:
    link = Link(Client())
    request = asyncio.ensure_future(link.request(pdu(3), timeout=5.0))
    await next_turn()
    link.fail("link to the SMSC lost")
    with pytest.raises(TransientError, match="link to the SMSC lost"):
        await request
    with pytest.raises(TransientError, match="lost"):
        await link.request(pdu(4), timeout=5.0)
