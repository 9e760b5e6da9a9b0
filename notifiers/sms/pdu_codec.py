"""The SMPP 3.4 PDUs of the busy path, encoded and parsed with struct: submit_sm,
submit_sm_resp, deliver_sm (receipts and MO text), deliver_sm_resp, enquire_link(_resp),
generic_nack.

smpplib builds and parses every PDU field by field through generic descriptors (tens of
µs a PDU, over 100 for a receipt); these take a tenth of that or less. They produce and
read the very bytes smpplib does (its quirks included: tests/unit/test_sms_pdu_codec.py
compares them with Hypothesis), and whatever they are not sure of they leave to smpplib:
the parsers return None for any PDU that is not the plain common case, and the caller
hands that PDU to smpplib. `split` frames the stream, and refuses a length no PDU has.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence
HEADER_SIZE = HEADER.size
# Longer than any PDU an SMSC sends (a 64 KiB message_payload and the rest): the length
# field is garbage and the stream can no longer be framed.
MAX_PDU = 70_000

GENERIC_NACK = 0x80000000
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
RESPONSE = 0x80000000

# deliver_sm TLVs read here (smpplib's names); any other tag sends the PDU to smpplib.
_TLV_OCTETS = {0x001E: "receipted_message_id", 0x0424: "message_payload"}
_TLV_OCTETS |= {0x0423: "network_error_code"}
_TLV_BYTE = {0x0427: "message_state", 0x020E: "sar_total_segments"}
_TLV_BYTE |= {0x020F: "sar_segment_seqnum"}
_TLV_SHORT = {0x020C: "sar_msg_ref_num"}
_TLV_HEAD = struct.Struct(">HH")
_SHORT = struct.Struct(">H")


def _cstring(value: str, size: int) -> bytes:
    """smpplib's C-string: cut to size - 1 characters, Latin-1, NUL-terminated."""
    return value[: size - 1].encode("latin-1") + b"\0"


class SubmitTemplate:
    """submit_sm PDUs sharing every field but the destination, esm_class, data_coding and
    short_message (what changes per part), as smpplib's `generate()` writes them."""

    def __init__(
        self,
        *,
        source_addr_ton: int,
        source_addr_npi: int,
        source_addr: str,
        dest_addr_ton: int,
        dest_addr_npi: int,
        registered_delivery: int,
        service_type: str = "",
        protocol_id: int = 0,
        priority_flag: int = 0,
        replace_if_present_flag: int = 0,
        sm_default_msg_id: int = 0,
    ) -> None:
        self._head = b"".join(
            (
                _cstring(service_type, 6),
                bytes((source_addr_ton, source_addr_npi)),
                _cstring(source_addr, 21),
                bytes((dest_addr_ton, dest_addr_npi)),
            )
        )
        # protocol_id, priority_flag; schedule_delivery_time and validity_period (empty)
        self._middle = bytes((protocol_id, priority_flag, 0, 0))
        self._flags = bytes((registered_delivery, replace_if_present_flag))
        self._default_id = sm_default_msg_id

    def encode(
        self,
        sequence: int,
        destination_addr: str,
        esm_class: int,
        data_coding: int,
        short_message: bytes,
    ) -> bytes:
        if len(short_message) > 254:
            raise ValueError(f"short_message of {len(short_message)} octets: at most 254")
        body = b"".join(
            (
                self._head,
                _cstring(destination_addr, 21),
                bytes((esm_class,)),
                self._middle,
                self._flags,
                bytes((data_coding, self._default_id, len(short_message))),
                short_message,
            )
        )
        return HEADER.pack(HEADER_SIZE + len(body), SUBMIT_SM, 0, sequence) + body


def deliver_sm_resp(sequence: int, status: int) -> bytes:
    """Our answer to a deliver_sm; smpplib writes its empty message_id as one NUL."""
    return HEADER.pack(HEADER_SIZE + 1, DELIVER_SM_RESP, status, sequence) + b"\0"


def enquire_link_resp(sequence: int) -> bytes:
    return HEADER.pack(HEADER_SIZE, ENQUIRE_LINK_RESP, 0, sequence)


def split(buffer: bytes | bytearray) -> tuple[list[bytes], int]:
    """The whole PDUs at the start of `buffer` and how many octets they take; ValueError
    when a command_length cannot be a PDU's (the stream cannot be framed any more)."""
    pdus: list[bytes] = []
    pos, end = 0, len(buffer)
    while end - pos >= 4:
        length = int.from_bytes(buffer[pos : pos + 4], "big")
        if not HEADER_SIZE <= length <= MAX_PDU:
            raise ValueError(f"command_length {length}")
        if end - pos < length:
            break
        pdus.append(bytes(buffer[pos : pos + length]))
        pos += length
    return pdus, pos


def submit_sm_resp_id(pdu: bytes) -> tuple[bool, bytes | None]:
    """(True, message_id) of a submit_sm_resp as smpplib reads it (None without a body);
    (False, None) when it is not the plain case."""
    if len(pdu) == HEADER_SIZE:
        return True, None
    nul = pdu.find(b"\0", HEADER_SIZE)
    if nul != len(pdu) - 1:  # no NUL, or octets after it (TLVs): smpplib's business
        return False, None
    return True, pdu[HEADER_SIZE:nul]


@dataclass(slots=True, eq=False)
class DeliverSm:
    """A deliver_sm with the attributes smpplib's DeliverSM would have after parsing it
    (the mandatory fields, and the TLVs this module reads; the others stay None)."""

    command: ClassVar[str] = "deliver_sm"

    sequence: int
    status: int
    service_type: bytes
    source_addr_ton: int
    source_addr_npi: int
    source_addr: bytes
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: bytes
    esm_class: int
    protocol_id: int
    priority_flag: int
    schedule_delivery_time: bytes
    validity_period: bytes
    registered_delivery: int
    replace_if_present_flag: int
    data_coding: int
    sm_default_msg_id: int
    sm_length: int
    short_message: bytes | None
    receipted_message_id: bytes | None = None
    message_state: int | None = None
    network_error_code: bytes | None = None
    message_payload: bytes | None = None
    sar_msg_ref_num: int | None = None
    sar_total_segments: int | None = None
    sar_segment_seqnum: int | None = None


def parse_deliver_sm(pdu: bytes) -> DeliverSm | None:
    """The deliver_sm as smpplib would parse it; None when anything is unusual (a field
    missing, a string without its NUL, an octet count past the end, a TLV not read here or
    of an odd size), for smpplib to deal with as it always has."""
    _, _, status, sequence = HEADER.unpack_from(pdu)
    end = len(pdu)
    strings: list[bytes] = []
    octets: list[int] = []
    pos = HEADER_SIZE
    # service_type; ton npi source_addr; ton npi destination_addr; esm_class protocol_id
    # priority_flag schedule_delivery_time; validity_period; 5 octets then short_message
    for ints_before in (0, 2, 2, 3, 0):
        if pos + ints_before > end:
            return None
        octets += pdu[pos : pos + ints_before]
        pos += ints_before
        nul = pdu.find(b"\0", pos)
        if nul < 0:
            return None
        strings.append(pdu[pos:nul])
        pos = nul + 1
    if pos + 5 > end:
        return None
    octets += pdu[pos : pos + 5]
    pos += 5
    sm_length = octets[-1]
    short_message: bytes | None = None
    if pos < end:  # smpplib leaves it None when the body stops at sm_length
        if pos + sm_length > end:
            return None
        short_message = pdu[pos : pos + sm_length]
        pos += sm_length
    deliver = DeliverSm(
        sequence,
        status,
        strings[0],
        octets[0],
        octets[1],
        strings[1],
        octets[2],
        octets[3],
        strings[2],
        octets[4],
        octets[5],
        octets[6],
        strings[3],
        strings[4],
        octets[7],
        octets[8],
        octets[9],
        octets[10],
        sm_length,
        short_message,
    )
    while pos < end:
        if pos + 4 > end:
            return None
        tag, size = _TLV_HEAD.unpack_from(pdu, pos)
        pos += 4
        if pos + size > end:
            return None
        if tag in _TLV_OCTETS:
            if tag == 0x001E:  # a C-string: smpplib drops the last octet, NUL or not
                if size == 0:
                    return None
                value = pdu[pos : pos + size - 1]
            else:
                value = pdu[pos : pos + size]
            setattr(deliver, _TLV_OCTETS[tag], value)
        elif tag in _TLV_BYTE and size == 1:
            setattr(deliver, _TLV_BYTE[tag], pdu[pos])
        elif tag in _TLV_SHORT and size == 2:
            setattr(deliver, _TLV_SHORT[tag], _SHORT.unpack_from(pdu, pos)[0])
        else:
            return None
        pos += size
    return deliver
