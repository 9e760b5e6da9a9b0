"""A bound link read and written on the loop, against a raw peer on a socketpair: the
codec's fast path and smpplib's fallback both act, answers go back, framing problems and
an unreadable stream end the link."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import smpplib.command

from notifiers.base import TransientError
from notifiers.sms import pdu_codec
from notifiers.sms.smpp_bridge import Encoded, Link, Response, SmppClient, attach
from sandbox.smsc import ShortMessage, cstring, encode_pdu

UNBIND, UNBIND_RESP = 0x00000006, 0x80000006


@dataclass
class Peer:
    """The SMSC's end of the socket, and what the link handed to `on_deliver`."""

    sock: socket.socket
    link: Link
    delivered: list[Any] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)
    answer: int | None = 0  # what on_deliver returns
    got: asyncio.Event = field(default_factory=asyncio.Event)

    def on_deliver(self, pdu: Any, client: SmppClient, **_: Any) -> int | None:
        self.delivered.append(pdu)
        self.threads.add(threading.get_ident())
        self.got.set()
        return self.answer

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def read_pdu(self) -> tuple[int, int, int, bytes]:
        """(command_id, status, sequence, body) of the next PDU the link wrote."""
        header = await self._exactly(16)
        length, command_id, status, sequence = struct.unpack(">IIII", header)
        return command_id, status, sequence, await self._exactly(length - 16)

    async def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(self.sock, size - len(data)), 5
            )
            assert chunk, "the link closed the connection"
            data += chunk
        return data

    async def delivered_count(self, count: int) -> list[Any]:
        while len(self.delivered) < count:
            self.got.clear()
            await asyncio.wait_for(self.got.wait(), 5)
        return self.delivered


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    client = SmppClient("127.0.0.1", 0, timeout=5)
    client._socket = ours  # bound already, as after connect_and_bind
    holder: list[Peer] = []
    link = attach(client, lambda **kw: holder[0].on_deliver(**kw))
    holder.append(Peer(theirs, link))
    yield holder[0]
    await link.close(unbind_timeout=0.01)
    theirs.close()


def submit(link: Link, sequence: int) -> Encoded:
    template = pdu_codec.SubmitTemplate(
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Frontdesk",
        dest_addr_ton=1,
        dest_addr_npi=1,
        registered_delivery=1,
    )
    return Encoded("submit_sm", sequence, template.encode(sequence, "3069", 0, 0, b"hi"))


def receipt(sequence: int, message_id: str, tlvs: dict[int, bytes] | None = None) -> bytes:
    text = f"id:{message_id} sub:001 dlvrd:001 stat:DELIVRD err:000 text:".encode()
    extra = {0x001E: cstring(message_id), 0x0427: b"\x02"} if tlvs is None else tlvs
    sm = ShortMessage("3069", "Frontdesk", text, 0x04, tlvs=extra)
    return encode_pdu(pdu_codec.DELIVER_SM, 0, sequence, sm.encode())


async def test_a_response_split_across_reads_resolves_its_request(peer: Peer) -> None:
    request = asyncio.ensure_future(peer.link.request(submit(peer.link, 41), timeout=5))
    command_id, _, sequence, body = await peer.read_pdu()
    assert (command_id, sequence) == (pdu_codec.SUBMIT_SM, 41) and body.endswith(b"hi")
    answer = encode_pdu(pdu_codec.SUBMIT_SM_RESP, 0, 41, b"3e8a0001\0")
    # One write: the enquire_link and the first 7 octets are read at once. Its answer
    # shows that read is over, the half PDU kept for the next.
    await peer.send(encode_pdu(pdu_codec.ENQUIRE_LINK, 0, 1) + answer[:7])
    assert (await peer.read_pdu())[0] == pdu_codec.ENQUIRE_LINK_RESP
    assert not request.done()
    await peer.send(answer[7:])
    assert await request == Response(0, b"3e8a0001")


async def test_a_window_of_answers_in_one_read_resolves_every_request(peer: Peer) -> None:
    requests = [
        asyncio.ensure_future(peer.link.request(submit(peer.link, n), timeout=5))
        for n in range(1, 201)
    ]
    for _ in requests:
        await peer.read_pdu()
    await peer.send(
        b"".join(
            encode_pdu(pdu_codec.SUBMIT_SM_RESP, 0x58 if n % 2 else 0, n, cstring(f"{n:x}"))
            for n in range(1, 201)
        )
    )
    answers = await asyncio.gather(*requests)
    assert answers == [Response(0x58 if n % 2 else 0, f"{n:x}".encode()) for n in range(1, 201)]


async def test_a_generic_nack_answers_its_request_with_its_status(peer: Peer) -> None:
    request = asyncio.ensure_future(peer.link.request(submit(peer.link, 9), timeout=5))
    await peer.read_pdu()
    await peer.send(encode_pdu(pdu_codec.GENERIC_NACK, 0x03, 9))
    assert await request == Response(0x03, None)


async def test_a_receipt_is_handed_over_on_the_loop_and_answered(peer: Peer) -> None:
    await peer.send(receipt(77, "3e8a0001"))
    (pdu,) = await peer.delivered_count(1)
    assert isinstance(pdu, pdu_codec.DeliverSm)  # the fast path
    assert (pdu.receipted_message_id, pdu.message_state, pdu.esm_class) == (b"3e8a0001", 2, 4)
    assert peer.threads == {threading.get_ident()}  # no thread, no hand-over
    assert await peer.read_pdu() == (pdu_codec.DELIVER_SM_RESP, 0, 77, b"\0")


async def test_a_deliver_sm_answered_later_is_answered_once_with_that_status(
    peer: Peer,
) -> None:
    peer.answer = None
    await peer.send(receipt(5, "ab"))
    (pdu,) = await peer.delivered_count(1)
    peer.link.client.answer_deliver(pdu.sequence, 0x64)
    assert await peer.read_pdu() == (pdu_codec.DELIVER_SM_RESP, 0x64, 5, b"\0")


async def test_a_deliver_sm_the_codec_does_not_read_goes_through_smpplib(peer: Peer) -> None:
    # user_message_reference: a TLV the codec leaves to smpplib.
    await peer.send(receipt(6, "cd", {0x0204: b"\x00\x07", 0x001E: cstring("cd")}))
    (pdu,) = await peer.delivered_count(1)
    assert isinstance(pdu, smpplib.command.DeliverSM)
    assert (pdu.user_message_reference, pdu.receipted_message_id) == (7, b"cd")
    assert await peer.read_pdu() == (pdu_codec.DELIVER_SM_RESP, 0, 6, b"\0")


async def test_enquire_link_and_unbind_from_the_smsc_are_answered(peer: Peer) -> None:
    await peer.send(encode_pdu(pdu_codec.ENQUIRE_LINK, 0, 31))
    assert await peer.read_pdu() == (pdu_codec.ENQUIRE_LINK_RESP, 0, 31, b"")
    await peer.send(encode_pdu(UNBIND, 0, 32))  # smpplib's path: we answer it
    assert await peer.read_pdu() == (UNBIND_RESP, 0, 32, b"")


async def test_an_enquire_link_we_send_is_answered(peer: Peer) -> None:
    asking = asyncio.ensure_future(peer.link.enquire_link(timeout=5))
    command_id, _, sequence, _ = await peer.read_pdu()
    assert command_id == pdu_codec.ENQUIRE_LINK
    await peer.send(encode_pdu(pdu_codec.ENQUIRE_LINK_RESP, 0, sequence))
    await asking


async def test_pdus_smpplib_cannot_read_are_skipped_until_five_in_a_row(peer: Peer) -> None:
    unknown = encode_pdu(0x00000099, 0, 1)  # no such command
    await peer.send(unknown * 4 + receipt(8, "ef") + unknown * 4)
    await peer.delivered_count(1)  # a good PDU in between: the count starts again
    assert not peer.link.lost.is_set()
    await peer.send(unknown)
    await asyncio.wait_for(peer.link.lost.wait(), 5)
    with pytest.raises(TransientError, match="lost"):
        await peer.link.request(submit(peer.link, 2), timeout=5)


async def test_a_length_no_pdu_can_have_drops_the_link_and_fails_what_is_in_flight(
    peer: Peer,
) -> None:
    request = asyncio.ensure_future(peer.link.request(submit(peer.link, 3), timeout=5))
    await peer.read_pdu()
    await peer.send(struct.pack(">IIII", 8, pdu_codec.SUBMIT_SM_RESP, 0, 3))
    with pytest.raises(TransientError, match="SMSC stream unreadable"):
        await request


async def test_the_smsc_closing_the_connection_fails_what_is_in_flight(peer: Peer) -> None:
    request = asyncio.ensure_future(peer.link.request(submit(peer.link, 4), timeout=5))
    await peer.read_pdu()
    peer.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(TransientError, match="link to the SMSC lost"):
        await request
