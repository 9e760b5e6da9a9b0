"""The SMSC sandbox: SMPP 3.4 as an SMSC speaks it, its records and its fault modes.

The client side is raw asyncio streams and struct on purpose: these tests pin the wire
protocol, not the product's client.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from sandbox import smsc as s
from sandbox.smsc import HEADER, ShortMessage, SmscServer, encode_pdu

Pdu = tuple[int, int, int, bytes]  # command_id, status, sequence, body
HANDSET = "306912345678"


class Esme:
    """A bare SMPP client: write PDUs, read PDUs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.sequence = 0

    @classmethod
    async def connect(cls, smsc: SmscServer) -> Esme:
        return cls(*await asyncio.open_connection("127.0.0.1", smsc.port))

    def send(self, command_id: int, body: bytes = b"", status: int = 0) -> int:
        self.sequence += 1
        self.writer.write(encode_pdu(command_id, status, self.sequence, body))
        return self.sequence

    async def read(self) -> Pdu:
        header = await asyncio.wait_for(self.reader.readexactly(16), 5)
        length, command_id, status, sequence = HEADER.unpack(header)
        body = await asyncio.wait_for(self.reader.readexactly(length - 16), 5)
        return command_id, status, sequence, body

    async def request(self, command_id: int, body: bytes = b"") -> Pdu:
        sequence = self.send(command_id, body)
        answer = await self.read()
        assert answer[2] == sequence
        return answer

    async def bind(
        self, command_id: int = s.BIND_TRANSCEIVER, system_id: str = "fd", password: str = "pw"
    ) -> Pdu:
        body = s.cstring(system_id) + s.cstring(password) + s.cstring("") + b"\x34\x00\x00\x00"
        return await self.request(command_id, body)

    async def submit(self, sm: ShortMessage) -> Pdu:
        return await self.request(s.SUBMIT_SM, sm.encode())

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def smsc() -> AsyncIterator[SmscServer]:
    async with SmscServer(system_id="fd", password="pw") as server:
        yield server


@pytest.fixture
async def esme(smsc: SmscServer) -> AsyncIterator[Esme]:
    client = await Esme.connect(smsc)
    yield client
    await client.close()


def submit_sm(text: bytes = b"hello", **fields: int) -> ShortMessage:
    return ShortMessage("Frontdesk", HANDSET, text, source_ton=5, source_npi=0, **fields)


def receipt_parts(pdu: Pdu) -> tuple[ShortMessage, dict[str, str]]:
    """A receipt deliver_sm and the fields of its text ("submit date" -> "submit_date")."""
    sm = ShortMessage.parse(pdu[3])
    head = sm.short_message.decode("ascii", "replace").split(" text:")[0]
    head = head.replace(" date:", "_date:")
    return sm, dict(field.split(":", 1) for field in head.split())


# -- binding -------------------------------------------------------------------------------


async def test_bind_transceiver(smsc: SmscServer, esme: Esme) -> None:
    command_id, status, _, body = await esme.bind()
    assert (command_id, status) == (s.BIND_TRANSCEIVER | s.RESPONSE, 0)
    assert body == s.cstring("SANDBOX") + s.tlv(s.TLV_SC_INTERFACE_VERSION, b"\x34")
    await smsc.wait_bound(1)
    assert smsc.binds == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("fd", "nope", s.ESME_RINVPASWD), ("other", "pw", s.ESME_RINVSYSID)],
)
async def test_a_bad_bind_is_refused(
    smsc: SmscServer, esme: Esme, system_id: str, password: str, status: int
) -> None:
    _, got, _, body = await esme.bind(system_id=system_id, password=password)
    assert (got, body) == (status, b"")
    assert smsc.bound == 0
    assert (await esme.bind())[1] == 0  # the session stays open for another try


async def test_binding_twice_is_refused(esme: Esme) -> None:
    await esme.bind()
    assert (await esme.bind(s.BIND_TRANSMITTER))[1] == s.ESME_RALYBND


async def test_submit_before_bind_is_refused(smsc: SmscServer, esme: Esme) -> None:
    assert (await esme.submit(submit_sm()))[1] == s.ESME_RINVBNDSTS
    await esme.bind(s.BIND_RECEIVER)
    assert (await esme.submit(submit_sm()))[1] == s.ESME_RINVBNDSTS  # receivers cannot
    assert smsc.submits == []


async def test_enquire_link_and_unbind(smsc: SmscServer, esme: Esme) -> None:
    assert (await esme.request(s.ENQUIRE_LINK))[:2] == (s.ENQUIRE_LINK | s.RESPONSE, 0)
    await esme.bind()
    assert (await esme.request(s.ENQUIRE_LINK))[:2] == (s.ENQUIRE_LINK | s.RESPONSE, 0)
    assert (await esme.request(s.UNBIND))[:2] == (s.UNBIND | s.RESPONSE, 0)
    assert await esme.closed()
    await smsc.wait_unbinds(1)
    assert (smsc.enquire_links, smsc.bound) == (2, 0)


# -- garbage -------------------------------------------------------------------------------


async def test_an_unknown_command_gets_generic_nack(esme: Esme) -> None:
    await esme.bind()
    assert (await esme.request(0x00000103, b"\0" * 8))[:2] == (s.GENERIC_NACK, s.ESME_RINVCMDID)
    assert (await esme.request(s.ENQUIRE_LINK))[1] == 0  # still talking


async def test_a_malformed_body_gets_generic_nack(esme: Esme) -> None:
    await esme.bind()
    assert (await esme.request(s.SUBMIT_SM, b"no NUL anywhere"))[:2] == (
        s.GENERIC_NACK,
        s.ESME_RINVCMDLEN,
    )
    assert (await esme.submit(submit_sm()))[1] == 0


@pytest.mark.parametrize("length", [8, 15, 1 << 20])
async def test_a_bad_command_length_gets_generic_nack_and_a_hang_up(
    smsc: SmscServer, esme: Esme, length: int
) -> None:
    esme.writer.write(struct.pack(">IIII", length, s.SUBMIT_SM, 0, 9))
    assert (await esme.read())[:3] == (s.GENERIC_NACK, s.ESME_RINVCMDLEN, 9)
    assert await esme.closed()
    other = await Esme.connect(smsc)  # the server itself is fine
    assert (await other.bind())[1] == 0
    await other.close()


async def test_random_garbage_does_not_hurt_the_server(smsc: SmscServer) -> None:
    for junk in (b"\xff" * 40, b"GET / HTTP/1.1\r\n\r\n", b"\x00\x00\x00\x10" + b"\x01" * 3):
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        writer.write(junk)
        writer.write_eof()
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
    other = await Esme.connect(smsc)
    assert (await other.bind())[1] == 0
    await other.close()


# -- submits -------------------------------------------------------------------------------


async def test_submit_sm_gets_a_fresh_message_id_and_is_recorded(
    smsc: SmscServer, esme: Esme
) -> None:
    await esme.bind()
    first = await esme.submit(submit_sm(b"Hello \x1b\x65"))  # "Hello €" in GSM septets
    second = await esme.submit(submit_sm(b"again"))
    assert first[:2] == (s.SUBMIT_SM | s.RESPONSE, 0)
    ids = [first[3].rstrip(b"\0").decode(), second[3].rstrip(b"\0").decode()]
    assert ids[0] != ids[1] and all(int(i, 16) for i in ids)
    assert [m.text for m in smsc.messages] == ["Hello €", "again"]
    assert smsc.messages[0].part_ids == (ids[0],)
    assert smsc.submits[0].sm.source == "Frontdesk" and smsc.submits[0].message_id == ids[0]


@pytest.mark.parametrize("concat", ["udh8", "udh16", "sar"])
async def test_concatenated_parts_are_reassembled_in_any_order(
    smsc: SmscServer, esme: Esme, concat: str
) -> None:
    await esme.bind()
    text = "Καλημέρα " * 20
    encoded = text.encode("utf-16-be")
    chunks = [encoded[i : i + 132] for i in range(0, len(encoded), 132)]
    total = len(chunks)
    for number in [2, 1, *range(3, total + 1)]:
        chunk = chunks[number - 1]
        if concat == "sar":
            tlvs = {
                s.TLV_SAR_MSG_REF_NUM: b"\x01\x02",
                s.TLV_SAR_TOTAL_SEGMENTS: bytes((total,)),
                s.TLV_SAR_SEGMENT_SEQNUM: bytes((number,)),
            }
            sm = ShortMessage("Frontdesk", HANDSET, chunk, data_coding=s.UCS2, tlvs=tlvs)
        else:
            udh = (
                bytes((5, 0, 3, 77, total, number))
                if concat == "udh8"
                else bytes((6, 8, 4, 1, 2, total, number))
            )
            sm = ShortMessage(
                "Frontdesk", HANDSET, udh + chunk, esm_class=s.ESM_UDHI, data_coding=s.UCS2
            )
        assert (await esme.submit(sm))[1] == 0
    [message] = await smsc.wait_messages(1)
    assert (message.text, message.parts, message.data_coding) == (text, total, s.UCS2)
    assert len(set(message.part_ids)) == total
    assert len(smsc.submits) == total


# -- receipts ------------------------------------------------------------------------------


async def test_a_receipt_follows_the_response_when_asked_for(esme: Esme) -> None:
    await esme.bind()
    response = await esme.submit(submit_sm(b"Missed call", registered_delivery=1))
    message_id = response[3].rstrip(b"\0").decode()
    deliver = await esme.read()
    assert deliver[0] == s.DELIVER_SM
    sm, fields = receipt_parts(deliver)
    assert sm.esm_class == s.ESM_DELIVERY_RECEIPT
    assert (sm.source, sm.destination) == (HANDSET, "Frontdesk")
    assert fields["id"] == message_id and fields["stat"] == "DELIVRD"
    assert (fields["sub"], fields["dlvrd"], fields["err"]) == ("001", "001", "000")
    assert len(fields["submit_date"]) == len(fields["done_date"]) == 10
    assert sm.short_message.endswith(b"text:Missed call")
    assert sm.tlvs[s.TLV_RECEIPTED_MESSAGE_ID] == s.cstring(message_id)
    assert sm.tlvs[s.TLV_MESSAGE_STATE] == b"\x02"
    esme.writer.write(encode_pdu(s.DELIVER_SM | s.RESPONSE, 0, deliver[2], b"\0"))


async def test_no_receipt_unless_asked(smsc: SmscServer, esme: Esme) -> None:
    await esme.bind()
    await esme.submit(submit_sm())
    await esme.submit(submit_sm(registered_delivery=2))  # failures only; this one succeeds
    assert (await esme.request(s.ENQUIRE_LINK))[0] == s.ENQUIRE_LINK | s.RESPONSE
    assert smsc.receipts_sent == 0


async def test_receipts_can_fail_per_destination(smsc: SmscServer, esme: Esme) -> None:
    smsc.fail_receipts(HANDSET, "UNDELIV")
    await esme.bind()
    await esme.submit(submit_sm(registered_delivery=2))
    sm, fields = receipt_parts(await esme.read())
    assert (fields["stat"], fields["dlvrd"]) == ("UNDELIV", "000")
    assert sm.tlvs[s.TLV_MESSAGE_STATE] == bytes((s.MESSAGE_STATES["UNDELIV"],))


async def test_a_receipt_waits_for_a_receiver(smsc: SmscServer, esme: Esme) -> None:
    smsc.receipt_delay = 0.01
    await esme.bind(s.BIND_TRANSMITTER)
    await esme.submit(submit_sm(registered_delivery=1))
    await smsc.wait_until(lambda: smsc.receipts_sent == 1)
    receiver = await Esme.connect(smsc)
    await receiver.bind(s.BIND_RECEIVER)
    assert (await receiver.read())[0] == s.DELIVER_SM
    await receiver.close()


async def test_receipts_without_tlvs(smsc: SmscServer, esme: Esme) -> None:
    smsc.receipt_tlvs = False
    await esme.bind()
    await esme.submit(submit_sm(registered_delivery=1))
    sm, fields = receipt_parts(await esme.read())
    assert sm.tlvs == {} and fields["stat"] == "DELIVRD"


# -- faults --------------------------------------------------------------------------------


async def test_reject_throttle_and_no_response_take_the_next_submits(
    smsc: SmscServer, esme: Esme
) -> None:
    await esme.bind()
    smsc.reject(s.ESME_RINVDSTADR)
    smsc.throttle(2)
    assert [(await esme.submit(submit_sm()))[1] for _ in range(4)] == [0x0B, 0x58, 0x58, 0]
    smsc.no_response(1)
    esme.send(s.SUBMIT_SM, submit_sm().encode())
    assert (await esme.request(s.ENQUIRE_LINK))[0] == s.ENQUIRE_LINK | s.RESPONSE
    assert [r.status for r in smsc.submits] == [0x0B, 0x58, 0x58, 0, None]
    assert len(smsc.messages) == 1  # only the accepted one


async def test_held_responses_pile_up_in_flight(smsc: SmscServer, esme: Esme) -> None:
    await esme.bind()
    smsc.hold_responses()
    sequences = [
        esme.send(s.SUBMIT_SM, submit_sm(registered_delivery=1).encode()) for _ in range(3)
    ]
    await smsc.wait_in_flight(3)
    smsc.release_responses()
    answers = [await esme.read() for _ in range(6)]
    responses = [a for a in answers if a[0] == s.SUBMIT_SM | s.RESPONSE]
    assert [a[2] for a in responses] == sequences
    assert answers[0][0] == s.SUBMIT_SM | s.RESPONSE  # receipts only after responses
    assert smsc.max_in_flight == 3 and smsc.in_flight == 0


async def test_submit_latency_delays_the_response(esme: Esme, smsc: SmscServer) -> None:
    smsc.submit_latency = 0.05
    await esme.bind()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await esme.submit(submit_sm()))[1] == 0
    assert loop.time() - started >= 0.05


async def test_drop_link_and_an_outage_on_the_same_port(smsc: SmscServer, esme: Esme) -> None:
    await esme.bind()
    await smsc.drop_link()
    assert await esme.closed()
    port = smsc.port
    await smsc.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await smsc.start()
    assert smsc.port == port
    again = await Esme.connect(smsc)
    assert (await again.bind())[1] == 0
    await again.close()


# -- MO ------------------------------------------------------------------------------------


async def test_inject_mo_delivers_concatenated_text(smsc: SmscServer, esme: Esme) -> None:
    await esme.bind()
    text = "Παρακαλώ καλέστε με αύριο το πρωί, μετά τις δέκα. Ευχαριστώ πολύ! " * 3
    assert 134 < len(text) <= 201  # three parts of 67
    injected = asyncio.create_task(smsc.inject_mo(HANDSET, "Frontdesk", text))
    parts = []
    for _ in range(3):
        pdu = await esme.read()
        assert pdu[0] == s.DELIVER_SM
        parts.append(ShortMessage.parse(pdu[3]))
        esme.writer.write(encode_pdu(s.DELIVER_SM | s.RESPONSE, 0, pdu[2], b"\0"))
    assert await injected == [0, 0, 0]
    assert {p.esm_class for p in parts} == {s.ESM_UDHI} and {p.data_coding for p in parts} == {
        s.UCS2
    }
    headers = [s.parse_udh(p.short_message) for p in parts]
    assert [h[0][1:] for h in headers if h[0]] == [(3, 1), (3, 2), (3, 3)]
    assert b"".join(h[1] for h in headers).decode("utf-16-be") == text
    assert all(len(p.short_message) <= 140 for p in parts)


async def test_inject_mo_needs_a_receiver(smsc: SmscServer, esme: Esme) -> None:
    await esme.bind(s.BIND_TRANSMITTER)
    with pytest.raises(RuntimeError):
        await smsc.inject_mo(HANDSET, "Frontdesk", "hi")


def test_mo_text_splits_keep_pairs_whole() -> None:
    coding, payloads = s.split_text("a" * 152 + "€" + "b" * 10)
    assert coding == s.GSM and [len(p) for p in payloads] == [152, 12]
    coding, payloads = s.split_text("α" * 66 + "😀" + "β" * 10)
    assert coding == s.UCS2 and [len(p) for p in payloads] == [132, 24]
    assert s.gsm_decode(s.gsm_encode("{€}") or b"") == "{€}"
