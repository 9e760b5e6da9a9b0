"""The struct codec against smpplib itself: every PDU it writes is the one smpplib writes,
and every PDU it agrees to read, it reads as smpplib does (Hypothesis, many cases each).
The rest it must leave to smpplib (None), never guess."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import smpplib.client
import smpplib.smpp
from hypothesis import given, settings
from hypothesis import strategies as st

from notifiers.sms import pdu_codec
from notifiers.sms import text as sms_text
from sandbox.smsc import ShortMessage, encode_pdu

CLIENT = smpplib.client.Client("127.0.0.1", 2775, allow_unknown_opt_params=True)
EXAMPLES = settings(max_examples=400, deadline=None)

octet = st.integers(0, 255)
latin1 = st.text(st.characters(max_codepoint=0xFF), max_size=25)  # past every limit
digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=22)
octets = st.binary(max_size=254)


def smpplib_submit_sm(sequence: int, **fields: Any) -> bytes:
    """smpplib's own submit_sm, every field it knows (TLVs unset) walked."""
    pdu = smpplib.smpp.make_pdu("submit_sm", client=CLIENT, **fields)
    pdu.sequence = sequence
    return bytes(pdu.generate())


# -- what we write -------------------------------------------------------------------------


@EXAMPLES
@given(
    sequence=st.integers(1, 0x7FFFFFFF),
    shared=st.fixed_dictionaries(
        {
            "source_addr_ton": octet,
            "source_addr_npi": octet,
            "source_addr": latin1,
            "dest_addr_ton": octet,
            "dest_addr_npi": octet,
            "registered_delivery": octet,
            "service_type": latin1,
            "protocol_id": octet,
            "priority_flag": octet,
            "replace_if_present_flag": octet,
            "sm_default_msg_id": octet,
        }
    ),
    destination=st.one_of(digits, latin1),
    esm_class=octet,
    data_coding=octet,
    short_message=octets,
)
def test_a_submit_sm_is_byte_for_byte_smpplibs(
    sequence: int,
    shared: dict[str, Any],
    destination: str,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
) -> None:
    ours = pdu_codec.SubmitTemplate(**shared).encode(
        sequence, destination, esm_class, data_coding, short_message
    )
    theirs = smpplib_submit_sm(
        sequence,
        **shared,
        destination_addr=destination,
        esm_class=esm_class,
        data_coding=data_coding,
        short_message=short_message,
    )
    assert ours == theirs


any_text = st.text(
    st.one_of(
        st.sampled_from(sms_text.GSM_BASIC.replace("\x1b", "") + "€[]{}^~|\\\f\u2019\u2026"),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=500,
)


@EXAMPLES
@given(text=any_text, reference=st.integers(0, 255), sequence=st.integers(1, 0x7FFFFFFF))
def test_every_part_the_channel_sends_is_smpplibs_submit_sm(
    text: str, reference: int, sequence: int
) -> None:
    # Real parts: GSM, UCS-2, with and without the concatenation header.
    template = pdu_codec.SubmitTemplate(
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="Frontdesk",
        dest_addr_ton=1,
        dest_addr_npi=1,
        registered_delivery=1,
    )
    for part in sms_text.split(sms_text.cut(text, 10), reference):
        ours = template.encode(
            sequence, "306912345678", part.esm_class, part.data_coding, part.short_message
        )
        theirs = smpplib_submit_sm(
            sequence,
            source_addr_ton=5,
            source_addr_npi=0,
            source_addr="Frontdesk",
            dest_addr_ton=1,
            dest_addr_npi=1,
            registered_delivery=1,
            destination_addr="306912345678",
            esm_class=part.esm_class,
            data_coding=part.data_coding,
            short_message=part.short_message,
        )
        assert ours == theirs


def test_a_short_message_over_254_octets_is_refused() -> None:
    template = pdu_codec.SubmitTemplate(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="3069",
        dest_addr_ton=1,
        dest_addr_npi=1,
        registered_delivery=1,
    )
    with pytest.raises(ValueError, match="at most 254"):
        template.encode(1, "3069", 0, 0, bytes(255))


@EXAMPLES
@given(sequence=st.integers(1, 0x7FFFFFFF), status=st.integers(0, 0xFFFFFFFF))
def test_our_answers_are_smpplibs(sequence: int, status: int) -> None:
    resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=CLIENT, status=status)
    resp.sequence = sequence
    assert pdu_codec.deliver_sm_resp(sequence, status) == resp.generate()
    link = smpplib.smpp.make_pdu("enquire_link_resp", client=CLIENT)
    link.sequence = sequence
    assert pdu_codec.enquire_link_resp(sequence) == link.generate()


# -- what we read --------------------------------------------------------------------------

FIELDS = [f.name for f in pdu_codec.DeliverSm.__dataclass_fields__.values()]
READ_TAGS = [0x001E, 0x0427, 0x0423, 0x0424, 0x020C, 0x020E, 0x020F]
OTHER_TAGS = [0x0204, 0x0381, 0x1403, 0x0005]  # user_message_reference, ..., vendor, unknown


def assert_read_as_smpplib_does(pdu: bytes) -> pdu_codec.DeliverSm | None:
    ours = pdu_codec.parse_deliver_sm(pdu)
    if ours is not None:  # it took it: smpplib must read exactly the same
        theirs = smpplib.smpp.parse_pdu(pdu, client=CLIENT, allow_unknown_opt_params=True)
        assert theirs.command == ours.command == "deliver_sm"
        assert {f: getattr(theirs, f) for f in FIELDS} == {f: getattr(ours, f) for f in FIELDS}
    return ours


def cstring(value: bytes) -> bytes:
    return value + b"\0"


no_nul = st.binary(max_size=24).map(lambda b: b.replace(b"\0", b"x"))


@st.composite
def tlvs(draw: st.DrawFn, tags: list[int]) -> bytes:
    out = b""
    for tag in draw(st.lists(st.sampled_from(tags), max_size=5)):
        size = draw(st.sampled_from([0, 1, 2, 3, draw(st.integers(0, 70))]))
        value = draw(st.binary(min_size=size, max_size=size))
        out += struct.pack(">HH", tag, size) + value
    return out


@st.composite
def deliver_sm_bodies(draw: st.DrawFn, tags: list[int]) -> bytes:
    short_message = draw(octets)
    return b"".join(
        (
            cstring(draw(no_nul)),  # service_type
            bytes(draw(st.lists(octet, min_size=2, max_size=2))),
            cstring(draw(no_nul)),
            bytes(draw(st.lists(octet, min_size=2, max_size=2))),
            cstring(draw(no_nul)),
            bytes(draw(st.lists(octet, min_size=3, max_size=3))),
            cstring(draw(no_nul)),
            cstring(draw(no_nul)),
            bytes(draw(st.lists(octet, min_size=4, max_size=4))),
            bytes((len(short_message),)),
            short_message,
            draw(tlvs(tags)),
        )
    )


def deliver_sm(body: bytes, sequence: int = 7, status: int = 0) -> bytes:
    return pdu_codec.HEADER.pack(16 + len(body), pdu_codec.DELIVER_SM, status, sequence) + body


@EXAMPLES
@given(body=deliver_sm_bodies(READ_TAGS), sequence=st.integers(1, 0x7FFFFFFF))
def test_a_deliver_sm_is_read_as_smpplib_reads_it(body: bytes, sequence: int) -> None:
    assert_read_as_smpplib_does(deliver_sm(body, sequence))


@EXAMPLES
@given(body=deliver_sm_bodies(READ_TAGS + OTHER_TAGS), cut=st.integers(0, 400))
def test_a_deliver_sm_it_takes_is_read_as_smpplib_reads_it_whatever_the_bytes(
    body: bytes, cut: int
) -> None:
    # TLVs it does not read, odd sizes, and bodies cut short anywhere.
    assert_read_as_smpplib_does(deliver_sm(body[: len(body) - cut] if cut else body))


@EXAMPLES
@given(body=st.binary(max_size=300))
def test_a_deliver_sm_of_random_bytes_is_never_misread(body: bytes) -> None:
    assert_read_as_smpplib_does(deliver_sm(body))


@EXAMPLES
@given(
    message_id=st.text("0123456789abcdefABCDEF", min_size=1, max_size=64),
    stat=st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"]),
    tlvs=st.booleans(),
    text=st.binary(max_size=20),
)
def test_receipts_as_smscs_send_them_take_the_fast_path(
    message_id: str, stat: str, tlvs: bool, text: bytes
) -> None:
    # The sandbox SMSC's own encoder, as independent of ours as a real SMSC.
    receipt_text = f"id:{message_id} sub:001 dlvrd:001 stat:{stat} err:000 text:".encode()
    extra = {0x001E: message_id.encode() + b"\0", 0x0427: b"\x02"} if tlvs else {}
    sm = ShortMessage("306912345678", "Frontdesk", receipt_text + text, 0x04, tlvs=extra)
    pdu = encode_pdu(pdu_codec.DELIVER_SM, 0, 99, sm.encode())
    ours = assert_read_as_smpplib_does(pdu)
    assert ours is not None and ours.sequence == 99 and ours.esm_class == 0x04
    assert ours.receipted_message_id == (message_id.encode() if tlvs else None)


def test_a_concatenated_mo_part_with_sar_tlvs_takes_the_fast_path() -> None:
    sar = {0x020C: b"\x01\x02", 0x020E: b"\x03", 0x020F: b"\x02"}
    sm = ShortMessage("306912345678", "Frontdesk", "Καλη".encode("utf-16-be"), 0, 8, tlvs=sar)
    ours = assert_read_as_smpplib_does(encode_pdu(pdu_codec.DELIVER_SM, 0, 5, sm.encode()))
    assert ours is not None
    assert (ours.sar_msg_ref_num, ours.sar_total_segments, ours.sar_segment_seqnum) == (
        0x0102,
        3,
        2,
    )
    assert ours.short_message == "Καλη".encode("utf-16-be") and ours.data_coding == 8


@pytest.mark.parametrize(
    "tail",
    [
        struct.pack(">HH", 0x0204, 2) + b"\0\1",  # a TLV it does not read
        struct.pack(">HH", 0x0427, 2) + b"\0\2",  # message_state of an odd size
        struct.pack(">HH", 0x001E, 0),  # an empty receipted_message_id
        struct.pack(">H", 0x0427),  # half a TLV header
        struct.pack(">HH", 0x0424, 9) + b"abc",  # a value past the end
    ],
)
def test_anything_unusual_is_left_to_smpplib(tail: bytes) -> None:
    body = ShortMessage("3069", "Frontdesk", b"hi").encode() + tail
    assert pdu_codec.parse_deliver_sm(deliver_sm(body)) is None


def test_a_body_ending_at_sm_length_leaves_short_message_none_as_smpplib_does() -> None:
    body = ShortMessage("3069", "Frontdesk", b"").encode()
    ours = assert_read_as_smpplib_does(deliver_sm(body))
    assert ours is not None and ours.short_message is None and ours.sm_length == 0


@EXAMPLES
@given(
    message_id=st.one_of(st.none(), st.binary(max_size=64)),
    status=st.integers(0, 0xFFFFFFFF),
    sequence=st.integers(1, 0x7FFFFFFF),
)
def test_a_submit_sm_resp_is_read_as_smpplib_reads_it(
    message_id: bytes | None, status: int, sequence: int
) -> None:
    body = b"" if message_id is None else message_id + b"\0"
    pdu = encode_pdu(pdu_codec.SUBMIT_SM_RESP, status, sequence, body)
    plain, ours = pdu_codec.submit_sm_resp_id(pdu)
    if plain:
        theirs = smpplib.smpp.parse_pdu(pdu, client=CLIENT, allow_unknown_opt_params=True)
        assert (theirs.message_id, theirs.status, theirs.sequence) == (ours, status, sequence)
    else:  # a NUL inside the id: octets after the first one would be TLVs to smpplib
        assert message_id is not None and b"\0" in message_id


def test_a_submit_sm_resp_with_a_tlv_is_left_to_smpplib() -> None:
    tail = struct.pack(">HH", 0x0425, 1) + b"\1"  # delivery_failure_reason
    pdu = encode_pdu(pdu_codec.SUBMIT_SM_RESP, 0, 3, b"abc\0" + tail)
    assert pdu_codec.submit_sm_resp_id(pdu) == (False, None)


# -- framing -------------------------------------------------------------------------------


@EXAMPLES
@given(
    bodies=st.lists(st.binary(max_size=40), max_size=6),
    cut=st.integers(0, 300),
)
def test_whole_pdus_are_cut_from_the_stream_and_the_rest_kept(
    bodies: list[bytes], cut: int
) -> None:
    pdus = [encode_pdu(pdu_codec.ENQUIRE_LINK, 0, n, b) for n, b in enumerate(bodies)]
    stream = b"".join(pdus)
    head = stream[: max(0, len(stream) - cut)]
    found, used = pdu_codec.split(bytearray(head))
    assert head.startswith(b"".join(found)) and used == sum(map(len, found))
    assert found == pdus[: len(found)]
    assert len(head) - used < (len(pdus[len(found)]) if len(found) < len(pdus) else 1)


@pytest.mark.parametrize("length", [0, 15, pdu_codec.MAX_PDU + 1, 0xFFFFFFFF])
def test_a_length_no_pdu_can_have_means_the_stream_is_lost(length: int) -> None:
    with pytest.raises(ValueError, match="command_length"):
        pdu_codec.split(bytearray(struct.pack(">IIII", length, 0x15, 0, 1)))
